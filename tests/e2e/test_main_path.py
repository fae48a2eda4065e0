"""The main path in a real browser: upload → train → leaderboard → production alias → train
again → deploy the new version at 10 % → simulate traffic → roll back. A screenshot of every
page lands in tests/e2e/screenshots/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import DATA

pytestmark = pytest.mark.e2e
WAIT = 30_000


def no_errors(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    expect(page.locator('[data-testid="stAlertContentError"]')).to_have_count(0)


def open_page(page: Page, label: str, heading: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label).click()
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=WAIT)


def train(page: Page, job: int) -> None:
    open_page(page, "Train", "Train")
    slider = page.get_by_role("slider")
    slider.focus()
    for _ in range(5):  # 60 s → 10 s
        slider.press("ArrowLeft")
    expect(slider).to_have_value("10")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(f"Job {job}: wine_upload")).to_be_visible(timeout=WAIT)
    # unique to this job: Streamlit keeps the previous run's elements on screen while it reruns
    expect(page.get_by_text(f"registered version {job} of")).to_be_visible(timeout=120_000)


def test_upload_train_deploy_simulate_rollback(page: Page, app_url: str, shot,
                                               tmp_path: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(app_url)
    expect(page.get_by_role("heading", name="ML Workbench")).to_be_visible(timeout=WAIT)
    shot("01-home-empty")

    open_page(page, "Data", "Data")
    upload = tmp_path / "wine_upload.csv"
    shutil.copy(DATA / "wine.csv", upload)
    page.locator('input[type="file"]').set_input_files(str(upload))
    expect(page.get_by_text("Stored wine_upload")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Detected multiclass")).to_be_visible(timeout=WAIT)
    no_errors(page)
    shot("02-data")

    train(page, 1)
    expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible()
    no_errors(page)
    shot("03-train")

    open_page(page, "Leaderboard", "Leaderboard")
    expect(page.locator('[data-testid="stVegaLiteChart"]').nth(3)).to_be_visible(timeout=WAIT)
    page.get_by_role("button", name="Point production at version 1").click()
    expect(page.get_by_text("wine_upload@production → version 1")).to_be_visible(timeout=WAIT)
    no_errors(page)
    shot("04-leaderboard")

    train(page, 2)

    open_page(page, "Deployments", "Deployments")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_text("rollout steps 10%, 50%, 100%")).to_be_visible(timeout=WAIT)
    no_errors(page)
    shot("05-deployed-canary")

    page.get_by_role("button", name="Run simulator").click()
    expect(page.get_by_text("candidate share")).to_be_visible(timeout=60_000)
    no_errors(page)
    shot("06-simulator")

    page.get_by_role("button", name="Rollback").click()
    page.get_by_role("button", name="Confirm rollback").click()
    expect(page.get_by_text("rollout steps")).to_have_count(0, timeout=WAIT)
    history = page.locator('[data-testid="glide-cell-0-0"]').filter(has_text="deployment.rollback")
    expect(history).to_have_count(1, timeout=WAIT)  # newest event first
    no_errors(page)
    shot("07-rolled-back")

    for label, heading, name in [("Registry", "Model registry", "08-registry"),
                                 ("Jobs", "Jobs", "09-jobs"), ("Home", "ML Workbench",
                                                               "10-home")]:
        open_page(page, label, heading)
        no_errors(page)
        shot(name)


def test_phone_width_renders_without_errors(page: Page, app_url: str, shot) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(app_url)
    expect(page.get_by_role("heading", name="ML Workbench")).to_be_visible(timeout=WAIT)
    no_errors(page)
    shot("11-home-phone")
