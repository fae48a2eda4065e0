"""Signing in, in a real browser: a viewer sees the deploy buttons disabled with the role
needed, signs out; an editor deploys a candidate; signing out returns to the form. The form
also fits a phone and a tablet. Screenshots: signin-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.steps import (
    FIRST_RUN,
    SIZES,
    WAIT,
    choose,
    heading,
    loaded,
    no_errors,
    open_page,
    screenshot,
    settled,
)
from tests.factories import at_home, register, running_app, store_session

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
FORM = "Sign in to ML Workbench"


@pytest.fixture(scope="module")
def team_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """churn 1 in production, churn 2 registered; vera (viewer) and eddie (editor)."""
    from core.deploy import deployments as dep
    from core.identity.users import add_user

    home = tmp_path_factory.mktemp("e2e_signin") / "home"
    with at_home(home):
        register()
        register(seed=1)
        with store_session() as s:
            dep.deploy("churn", 1, session=s)
            add_user("vera", PASSWORD, role="viewer", session=s)
            add_user("eddie", PASSWORD, role="editor", session=s)
    with running_app(home) as url:
        yield url


def _sign_in(page: Page, url: str, name: str) -> None:
    page.goto(url)
    expect(heading(page, FORM)).to_be_visible(timeout=FIRST_RUN)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # nothing but the form
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible(timeout=WAIT)


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(heading(page, FORM)).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Signed out.")).to_be_visible()


def test_viewer_sees_deploy_disabled_editor_deploys(browser: Browser, team_app: str) -> None:
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    try:
        _sign_in(page, team_app, "vera")
        open_page(page, "Deployments", "Deployments")
        settled(page)
        deploy = page.get_by_role("button", name="Deploy", exact=True)
        expect(deploy).to_be_disabled()
        loaded(page)
        deploy.hover(force=True)  # the tooltip names the role needed
        expect(page.get_by_text("Needs the editor role — you are a viewer")).to_be_visible()
        no_errors(page)
        screenshot(page, "signin-01-viewer-deployments")
        _sign_out(page)

        _sign_in(page, team_app, "eddie")
        open_page(page, "Deployments", "Deployments")
        choose(page, "Version", "2")
        deploy = page.get_by_role("button", name="Deploy", exact=True)
        expect(deploy).to_be_enabled()
        deploy.click()
        # the cards in order: stable, candidate, candidate traffic, mode
        values = page.get_by_test_id("stMetricValue")
        expect(values.nth(1)).to_have_text("2", timeout=3 * WAIT)
        expect(values.nth(2)).to_have_text("10%")
        settled(page)
        no_errors(page)
        screenshot(page, "signin-02-editor-deployed")
        _sign_out(page)
        screenshot(page, "signin-03-signed-out")
    finally:
        context.close()


def test_the_form_fits_a_phone(browser: Browser, team_app: str) -> None:
    context = browser.new_context(viewport=SIZES["phone"])
    page = context.new_page()
    try:
        page.goto(team_app)
        expect(heading(page, FORM)).to_be_visible(timeout=FIRST_RUN)
        button = page.get_by_role("button", name="Sign in")
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.get_by_role("textbox", name="User name").fill("nobody")
        page.get_by_role("textbox", name="Password").fill("wrong password here")
        button.click()
        expect(page.get_by_text("Wrong user name or password.")).to_be_visible(timeout=WAIT)
        screenshot(page, "signin-04-phone-form")
    finally:
        context.close()


def test_a_tablet_signs_in_and_out(browser: Browser, team_app: str) -> None:
    """Between the two: the form fits a tablet held upright, signing in reaches the app (the
    sidebar may fold away at this width) and signing out returns to the form."""
    width = SIZES["tablet"]["width"]
    context = browser.new_context(viewport=SIZES["tablet"])
    page = context.new_page()
    try:
        page.goto(team_app)
        expect(heading(page, FORM)).to_be_visible(timeout=FIRST_RUN)
        for control in (page.get_by_role("button", name="Sign in"),
                        page.get_by_role("textbox", name="User name"),
                        page.get_by_role("textbox", name="Password")):
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        screenshot(page, "signin-05-tablet-form")
        _sign_in(page, team_app, "vera")
        settled(page)
        no_errors(page)
        screenshot(page, "signin-06-tablet-signed-in")
        _sign_out(page)
    finally:
        context.close()


def test_a_deep_link_while_signed_out_shows_only_the_form(page: Page, team_app: str) -> None:
    page.goto(team_app + "/deployments")
    expect(heading(page, FORM)).to_be_visible(timeout=FIRST_RUN)
    expect(heading(page, "Deployments")).to_have_count(0)
