"""Start the real app (`streamlit run`) on a free loopback port with its own WORKBENCH_HOME,
point pytest-playwright at Debian's chromium (never a downloaded browser), and train in it
once per session through the browser (`trained`): the slow part of every walk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from app.cli import app
from tests.e2e.steps import (
    FIRST_RUN,
    SHOTS,
    SIZES,
    WAIT,
    Trained,
    goto,
    no_errors,
    open_page,
    screenshot,
    upload,
)
from tests.factories import CANCER, CHROMIUM, WINE, built_home, running_app

__all__ = ["SHOTS", "Trained"]
MODEL = "walk_wine"  # a name of its own: other browser tests share the app


@pytest.fixture(scope="session")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e") / "home"


@pytest.fixture(scope="session")
def app_url(app_home: Path) -> Iterator[str]:
    with running_app(app_home) as url:
        yield url


SEARCHES = (("runs_wine", WINE, "cultivar"), ("runs_cancer", CANCER, "diagnosis"))


def _search(name: str, data: Path, target: str) -> dict:
    """`workbench automl` in this process (the current home's store): the stack is imported
    once, not once per search."""
    done = CliRunner().invoke(app, ["automl", str(data), "--target", target, "--budget", "4",
                                    "--estimators", "linear,knn", "--no-ensemble",
                                    "--name", name, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def searched_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An app with a home of its own holding two finished searches of two models (wine, then
    breast_cancer), from the CLI. Read-only for its users (test_runs.py, test_layout.py):
    one server and one first run for both files."""
    with built_home(tmp_path_factory, "e2e_runs") as home:
        for name, data, target in SEARCHES:
            assert _search(name, data, target)["model"] == name
    with running_app(home) as url:
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync"]}


@pytest.fixture
def shot(page: Page):
    """`shot("NN-name")`: a full-page screenshot of the test's page into
    tests/e2e/screenshots/NN-name.png."""
    return lambda name: screenshot(page, name)


def _train(page: Page, previous: int | None) -> int:
    """Start a 10 s search on the Train page; the job's id once its version is registered."""
    open_page(page, "Train", "Train")
    slider = page.get_by_role("slider")
    slider.focus()
    for _ in range(5):  # 60 s → 10 s, the smallest budget
        slider.press("ArrowLeft")
    expect(slider).to_have_value("10")
    page.get_by_role("button", name="Start training").click()
    other = "" if previous is None else rf"(?!{previous}(&|$))"
    expect(page).to_have_url(re.compile(rf"[?&]job={other}\d+(&|$)"), timeout=WAIT)
    job = int(re.search(r"[?&]job=(\d+)", page.url).group(1))
    expect(page.get_by_text(f"Job {job}: {MODEL}")).to_be_visible(timeout=WAIT)
    # the finished job's own link: Streamlit keeps a previous run's elements on screen while
    # it reruns, so a text shared by both jobs could be the older job's
    expect(page.locator(f'a[href*="job={job}"]').filter(has_text="Leaderboard")
           ).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile(rf"registered version \d+ of {MODEL}"))
           ).to_be_visible()
    return job


@pytest.fixture(scope="session")
def trained(browser: Browser, app_url: str, app_home: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """Upload a table on the Data page and train on it twice from the Train page (two
    searches, versions 1 and 2), in a desktop browser; screenshots 01–03 of the walk."""
    data = tmp_path_factory.mktemp("walk_data") / f"{MODEL}.csv"
    # rows in an order of their own: a table nobody else uploaded (uploads are de-duplicated
    # by content, and a duplicate keeps its first name)
    pd.read_csv(WINE).sample(frac=1.0, random_state=14).to_csv(data, index=False)
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    try:
        goto(page, app_url, "ML Workbench", timeout=FIRST_RUN)
        no_errors(page)
        screenshot(page, "walk-01-home-empty")

        open_page(page, "Data", "Data")
        upload(page, data)
        expect(page.get_by_text(f"Stored {MODEL}")).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("Detected multiclass")).to_be_visible(timeout=WAIT)
        no_errors(page)
        screenshot(page, "walk-02-data")

        older = _train(page, None)
        expect(page.get_by_text("registered version 1 of")).to_be_visible()
        newer = _train(page, older)
        expect(page.get_by_text("registered version 2 of")).to_be_visible()
        expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()  # best so far
        no_errors(page)
        screenshot(page, "walk-03-train")
    finally:
        context.close()
    yield Trained(app_url, app_home, MODEL, (older, newer), data)
