"""The whole no-code walk in a real browser, on the session's trained app (`trained`: a table
uploaded on Data, two searches started from Train):

- at desktop width, every journey: open the older search from the Leaderboard's picker and a
  deep link (?job=N) to each search → set an alias from each → predict an uploaded CSV and
  download the predictions → raise a drift alert from the Monitor page and acknowledge it →
  deploy a canary → run the traffic simulator → roll back (screenshots walk-NN-step.png);
- at desktop (1280×900), tablet (820×1180) and phone (390×844), a tour of every page by its
  address (the phone's sidebar is folded), each drawn to its end with no error element
  (screenshots SIZE-NN-page.png).

Every screenshot lands in tests/e2e/screenshots/ (CI keeps them as artifacts)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.steps import (
    SIZES,
    WAIT,
    Trained,
    choose,
    goto,
    heading,
    loaded,
    no_errors,
    open_page,
    screenshot,
    settled,
    upload,
)
from tests.factories import ROOT

# the session's training (two 10 s searches) is set up inside the first test: room for a
# loaded machine
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
CLASSES = {"class_0", "class_1", "class_2"}


def _text(page: Page, text: str | re.Pattern[str]) -> Locator:
    return page.get_by_text(text).first


def _open_alerts_on_first_check(home: Path, model: str) -> None:
    """The model's monitor opens an alert on the first bad check instead of the third (what
    `PUT /models/{name}/monitor {"consecutive": 1}` does), so a drift check from the Monitor
    page opens one at once."""
    from core.monitor.alerts import set_config
    from core.store import Database

    db = Database(f"sqlite:///{home / 'workbench.db'}")
    try:
        with db.session() as s:
            set_config(model, session=s, actor="test", consecutive=1)
    finally:
        db.dispose()


def _alert_states(home: Path, model: str) -> list[tuple[str, str | None]]:
    from core.monitor.alerts import list_alerts
    from core.store import Database

    db = Database(f"sqlite:///{home / 'workbench.db'}")
    try:
        with db.session() as s:
            return [(a.state, a.feature) for a in list_alerts(model, session=s)]
    finally:
        db.dispose()


def test_walk_leaderboard_alias_predict_alert_deploy_simulate_rollback(
        page: Page, trained: Trained, tmp_path: Path) -> None:
    url, model = trained.url, trained.model
    older, newer = trained.jobs
    page.set_viewport_size(SIZES["desktop"])

    # the older search, from the Leaderboard's picker (the newest is the default)
    goto(page, url, "ML Workbench")
    open_page(page, "Leaderboard", "Leaderboard")
    expect(_text(page, "Registered version 2")).to_be_visible(timeout=WAIT)
    choose(page, "Search", f"job {older}: {model}")
    expect(_text(page, "Registered version 1")).to_be_visible(timeout=WAIT)
    expect(page).to_have_url(re.compile(rf"[?&]job={older}(&|$)"))  # the address follows
    # best so far, speed, confusion matrix, importance
    expect(page.get_by_test_id("stVegaLiteChart").nth(3)).to_be_visible(timeout=WAIT)
    no_errors(page)
    screenshot(page, "walk-04-leaderboard-older")

    # a deep link to each search, and an alias set from each (staging first: the button
    # follows the chosen alias, defect 14.2)
    for job, version, alias in ((newer, 2, "staging"), (older, 1, "production")):
        goto(page, f"{url}/leaderboard?job={job}", "Leaderboard")
        expect(_text(page, f"Registered version {version}")).to_be_visible(timeout=WAIT)
        no_errors(page)
        choose(page, "Set alias", alias)
        page.get_by_role("button", name=f"Point {alias} at version {version}").click()
        expect(_text(page, f"{model}@{alias} → version {version}")).to_be_visible(
            timeout=WAIT)
        no_errors(page)
    screenshot(page, "walk-05-leaderboard-alias")

    # predict an uploaded CSV with production (version 1) and download the predictions
    rows = tmp_path / "new_rows.csv"
    inputs = pd.read_csv(trained.data).drop(columns=["cultivar"]).head(25)
    inputs.to_csv(rows, index=False)
    open_page(page, "Predict", "Predict")
    choose(page, "Model", model)
    expect(_text(page, f"Scoring with {model}:1")).to_be_visible(timeout=WAIT)
    upload(page, rows)
    expect(_text(page, f"25 rows scored by {model}:1")).to_be_visible(timeout=WAIT)
    with page.expect_download(timeout=WAIT) as info:
        page.get_by_role("button").filter(has_text="Download predictions (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"new_rows-predictions-{model}-v1.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    got = pd.read_csv(saved)
    assert len(got) == 25, "one prediction per uploaded row"
    assert set(got["prediction"]) <= CLASSES
    proba = [f"proba_{c}" for c in sorted(CLASSES)]
    assert np.allclose(got[proba].sum(axis=1), 1.0)
    assert np.allclose(got[inputs.columns].to_numpy(), inputs.to_numpy()), "beside its input"
    no_errors(page)
    screenshot(page, "walk-06-predict")

    # a drifted batch, checked on the Monitor page with "raise alerts", then acknowledged.
    # Before any deployment: the workers' monitor pass checks deployed models' live traffic
    # every 30 s, and live rows that do not drift resolve the same (model, version, DRIFT,
    # feature) alert, which would race the click on Acknowledge.
    drifted = tmp_path / f"{model}_drifted.csv"
    batch = pd.read_csv(trained.data)
    batch["alcohol"] = batch["alcohol"] + 5  # one feature far from what the model saw
    batch.to_csv(drifted, index=False)
    open_page(page, "Data", "Data")
    upload(page, drifted)
    expect(_text(page, f"Stored {model}_drifted")).to_be_visible(timeout=WAIT)
    _open_alerts_on_first_check(trained.home, model)
    open_page(page, "Monitor", "Monitor")
    choose(page, "Model", model)
    choose(page, "Batch", f"{model}_drifted")
    page.get_by_test_id("stCheckbox").filter(has_text="Raise DRIFT alerts").click()
    page.get_by_role("button", name="Check drift").click()
    expect(_text(page, re.compile(r"^1 of \d+ features drifted"))).to_be_visible(
        timeout=WAIT)
    no_errors(page)
    screenshot(page, "walk-07-drift")

    page.reload()  # the alerts section above was drawn before the check raised the alert
    expect(heading(page, "Monitor")).to_be_visible(timeout=WAIT)
    choose(page, "Model", model)
    acknowledge = page.get_by_role("button", name="Acknowledge", exact=True)
    expect(acknowledge).to_be_visible(timeout=WAIT)
    assert _alert_states(trained.home, model) == [("open", "alcohol")]
    no_errors(page)
    screenshot(page, "walk-08-alert-open")
    acknowledge.click()
    expect(acknowledge).to_have_count(0, timeout=WAIT)  # no open alert is left to acknowledge
    assert _alert_states(trained.home, model) == [("acknowledged", "alcohol")]
    no_errors(page)
    screenshot(page, "walk-09-alert-acknowledged")

    # deploy version 2 as a canary beside production (version 1), simulate, roll back
    open_page(page, "Deployments", "Deployments")
    choose(page, "Model", model)
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(_text(page, "rollout steps 10%, 50%, 100%")).to_be_visible(timeout=WAIT)
    no_errors(page)
    screenshot(page, "walk-10-canary")

    page.get_by_role("button", name="Run simulator").click()
    expect(_text(page, "candidate share")).to_be_visible(timeout=60_000)
    no_errors(page)
    screenshot(page, "walk-11-simulator")

    page.get_by_role("button", name="Rollback").click()
    page.get_by_role("button", name="Confirm rollback").click()
    expect(page.get_by_text("rollout steps")).to_have_count(0, timeout=WAIT)
    # newest event first, in words: column 1 of the history is the change
    history = page.get_by_test_id("glide-cell-1-0").filter(has_text="rolled back")
    expect(history).to_have_count(1, timeout=WAIT)
    no_errors(page)
    screenshot(page, "walk-12-rolled-back")


def _tour(trained: Trained) -> list[tuple[str, str, str | None, str | None, str | None]]:
    """(page, address, title, role, name): each page of the navigation and what it draws last.
    A page added to the navigation later is visited too, by its url_path, and checked for a
    heading and no error once its script run has ended."""
    older, newer = trained.jobs
    m = trained.model
    known = {
        "home": [("home", "", "ML Workbench", "heading", "Recent jobs")],
        "data": [("data", "data", "Data", "link", re.compile("^Train a model to predict"))],
        "train": [("train", f"train?job={newer}", "Train", "link",
                   f"Compare the trials of job {newer} on the Leaderboard")],
        "leaderboard": [("leaderboard-older", f"leaderboard?job={older}", "Leaderboard",
                         "button", "Point production at version 1"),
                        ("leaderboard-newer", f"leaderboard?job={newer}", "Leaderboard",
                         "button", "Point production at version 2")],
        "registry": [("registry", "registry", "Model registry", "heading", "Alias history")],
        "predict": [("predict", "predict", "Predict", "button", "Predict this row")],
        "version": [("version", f"version?model={m}&version=1", "Model version", "button",
                     "Set alias")],
        "deployments": [("deployments", "deployments", "Deployments", "heading", "History")],
        "monitor": [("monitor", "monitor", "Monitor", "button", "Check drift")],
        "jobs": [("jobs", "jobs", "Jobs", "button", "Add schedule")],
    }
    nav = (ROOT / "streamlit_app.py").read_text()
    tour = []
    for stem, args in re.findall(r'st\.Page\(\s*"pages/(\w+)\.py"([^)]*)\)', nav):
        path = re.search(r'url_path="([\w-]+)"', args)
        tour += known.get(stem, [(stem, path.group(1) if path else stem, None, None, None)])
    assert len(tour) >= 11, nav
    return tour


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_draws_without_errors_at(size: str, browser: Browser,
                                            trained: Trained) -> None:
    context = browser.new_context(viewport=SIZES[size])
    page = context.new_page()
    try:
        for n, (name, address, title, role, last) in enumerate(_tour(trained), start=1):
            goto(page, f"{trained.url}/{address}", title)
            if role:
                expect(page.get_by_role(role, name=last).first).to_be_visible(timeout=WAIT)
            settled(page)
            loaded(page)
            no_errors(page)
            screenshot(page, f"{size}-{n:02d}-{name}")
    finally:
        context.close()
