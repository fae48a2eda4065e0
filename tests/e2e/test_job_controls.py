"""The Jobs page's controls follow the job while the page stays open: a job that finishes
elsewhere (here: cancelled from the CLI) disables Cancel and shows its new state without a
click or a reload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from typer.testing import CliRunner

from app.cli import app
from tests.e2e.steps import FIRST_RUN
from tests.factories import DATA, at_home, running_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An app with a home of its own: the main-path test counts jobs and datasets from 1."""
    home = tmp_path_factory.mktemp("e2e_jobs") / "home"
    with running_app(home) as url:
        yield url, home


def _cli(home: Path, *args: str) -> dict:
    """`workbench ARGS --json` on the app's home, in this process (as test_runs.py): not a
    `python -m app` process importing the stack (~9 s of CPU) per call. The worker `submit`
    starts is still a process of its own, as a user's would be."""
    with at_home(home):
        done = CliRunner().invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_job_controls_follow_the_job_without_a_reload(page: Page, own_app: tuple[str, Path]
                                                      ) -> None:
    app_url, app_home = own_app
    job = _cli(app_home, "submit", str(DATA / "wine.csv"), "--target", "cultivar",
               "--budget", "120", "--name", "controls")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(app_url)
    # the app's own navigation replaces the pages/ folder's once the first run finishes; the
    # first run imports the stack while the job's worker is starting (FIRST_RUN, as the walk)
    expect(page.get_by_role("heading", name="ML Workbench")).to_be_visible(timeout=FIRST_RUN)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs").first).to_be_visible(timeout=30_000)
    cancel = page.get_by_role("button", name="Cancel", exact=True)
    expect(cancel).to_be_enabled(timeout=30_000)

    _cli(app_home, "cancel", str(job["job_id"]))
    expect(cancel).to_be_disabled(timeout=30_000)  # the fragment re-read the job
    caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="CANCELLED")
    expect(caption.first).to_be_visible()  # the chosen job's caption, re-read too
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
