"""Layout in a real browser (issue 14.9), measured, not eyeballed: at tablet width (820 px,
sidebar open) the Leaderboard's charts get a usable width and no metric label ends in "…";
on a phone a table's toolbar leaves the heading above it uncovered."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e
WAIT = 60_000
TABLET, PHONE = {"width": 820, "height": 1180}, {"width": 390, "height": 844}


@pytest.fixture
def trained_url(searched_app: str) -> str:
    """The app on a home with two finished searches (a leaderboard with charts and score
    cards; the registry's tables): the session's `searched_app`, shared with test_runs.py
    (one server, one first run), which these tests only read."""
    return searched_app


def _open(page: Page, url: str, heading: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=WAIT)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=WAIT)


def _widths(page: Page, selector: str) -> list[float]:
    return page.locator(selector).evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width)")


def test_tablet_charts_are_wide_and_metric_labels_whole(browser: Browser, trained_url: str,
                                                        shot_dir: Path) -> None:
    page = browser.new_page(viewport=TABLET)
    _open(page, f"{trained_url}/leaderboard", "Leaderboard")
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    # best-so-far, speed, confusion (importance too, unless a busy machine left no time for it)
    expect(charts.nth(2)).to_be_visible(timeout=WAIT)
    main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    assert main is not None
    widths = _widths(page, '[data-testid="stVegaLiteChart"]')
    # side by side they got ~200 px each (plots of ~80 px); one per row they fill the page
    assert min(widths) >= 0.8 * (main["width"] - 64), (widths, main["width"])
    cut = page.locator('[data-testid="stMetricLabel"]').evaluate_all(
        "els => els.filter(l => [l, ...l.querySelectorAll('*')]"
        "  .some(d => d.scrollWidth > d.clientWidth + 1)).map(l => l.textContent)")
    assert page.locator('[data-testid="stMetricLabel"]').count() >= 3
    assert cut == [], f"metric labels cut with an ellipsis: {cut}"
    page.screenshot(path=str(shot_dir / "layout-leaderboard-tablet.png"), full_page=True)
    page.close()


def test_desktop_keeps_charts_side_by_side(browser: Browser, trained_url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _open(page, f"{trained_url}/leaderboard", "Leaderboard")
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    expect(charts.nth(1)).to_be_visible(timeout=WAIT)
    # once drawn (a chart grows to its width after it appears), the first two share a row
    page.wait_for_function("""() => {
        const [a, b] = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
            .map(e => e.getBoundingClientRect());
        return a && b && a.width > 250 && Math.abs(a.y - b.y) < 2 && b.x >= a.x + a.width - 1;
    }""", timeout=WAIT)
    page.close()


def test_phone_table_toolbars_leave_the_element_above_uncovered(
        browser: Browser, trained_url: str, shot_dir: Path) -> None:
    """On a touch screen the toolbar is always shown, floating above the table's top edge:
    it covered the selectbox and the heading above the Registry's tables."""
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    _open(page, f"{trained_url}/registry", "Model registry")
    expect(page.get_by_role("heading", name="Alias history")).to_be_visible(timeout=WAIT)
    toolbars = page.locator('[data-testid="stElementToolbar"]')
    expect(toolbars.first).to_be_visible(timeout=WAIT)
    overlaps = toolbars.evaluate_all("""bars => bars.map(t => {
        const box = t.getBoundingClientRect();
        const above = t.closest('[data-testid="stElementContainer"]').previousElementSibling;
        return box.height > 0 && above ? above.getBoundingClientRect().bottom - box.top : -1;
    })""")
    assert overlaps and max(overlaps) <= 1, f"px covered by each toolbar: {overlaps}"
    page.screenshot(path=str(shot_dir / "layout-registry-phone.png"), full_page=True)
    context.close()


@pytest.fixture
def shot_dir() -> Path:
    from tests.e2e.conftest import SHOTS

    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
