"""What a person does in the browser, as small steps the browser tests share: open a page,
pick from a selectbox, upload, wait for a page to finish drawing, check it shows no error,
take a screenshot. Locators are headings, labels and button names, never layout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.factories import ROOT

WAIT = 30_000
FIRST_RUN = 120_000  # a fresh server's first run imports the ML stack
SHOTS = ROOT / "tests" / "e2e" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 900}, "tablet": {"width": 820, "height": 1180},
         "phone": {"width": 390, "height": 844}}


def no_errors(page: Page) -> None:
    """No traceback and no error box anywhere on the page."""
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    expect(page.locator('[data-testid="stAlertContentError"]')).to_have_count(0)


def heading(page: Page, name: str | re.Pattern[str]) -> Locator:
    return page.get_by_role("heading", name=name).first


def open_page(page: Page, label: str, title: str) -> None:
    """Through the sidebar, as a person on a wide screen does (the session is kept)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label,
                                                              exact=True).click()
    expect(heading(page, title)).to_be_visible(timeout=WAIT)


def goto(page: Page, url: str, title: str | None, timeout: float = WAIT) -> None:
    """By address, as a bookmark, a shared deep link or a phone (whose sidebar is folded) does:
    a new session. `title`: the page's heading (None: any top-level heading)."""
    page.goto(url)
    expect(heading(page, title) if title else page.get_by_role("heading", level=1).first
           ).to_be_visible(timeout=timeout)


def settled(page: Page) -> None:
    """The app's script run has ended (a polling fragment may start another later)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state",
                                                           "notRunning", timeout=WAIT)


def loaded(page: Page) -> None:
    """No element is still a placeholder: a new browser session fetches each element type's
    code on first use and shows a skeleton until then (an error inside it would go unseen)."""
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=WAIT)


def choose(page: Page, label: str, option: str) -> None:
    """Pick the option containing `option` from the selectbox labelled `label` (a combobox
    whose value is the chosen option's text). Once the page's run has ended: a rerun redraws
    the list under the pointer. A list that closed under a late redraw is opened again."""
    combo = page.get_by_role("combobox", name=label, exact=True)
    expect(combo).to_have_count(1, timeout=WAIT)
    settled(page)
    wanted = re.compile(re.escape(option))
    if wanted.search(combo.input_value()):
        return
    for attempt in range(3):
        combo.click()
        try:
            page.get_by_role("option").filter(has_text=option).first.click(timeout=WAIT / 3)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            settled(page)
    expect(combo).to_have_value(wanted, timeout=WAIT)


def upload(page: Page, path: Path, nth: int = 0) -> None:
    page.locator('input[type="file"]').nth(nth).set_input_files(str(path))


def drawn(page: Page) -> None:
    """Every chart on the page has drawn (for screenshots that show them)."""
    charts = page.get_by_test_id("stVegaLiteChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator("canvas, svg").first).to_be_attached(timeout=WAIT)


def screenshot(page: Page, name: str) -> Path:
    """The whole page into tests/e2e/screenshots/NAME.png. Streamlit scrolls its main area
    inside a fixed-height view, so a "full page" screenshot would stop at the viewport: the
    viewport is stretched to the main area's height for the shot, then restored."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(...['stMain', 'stAppViewContainer', 'stApp']
        .map(id => document.querySelector(`[data-testid="${id}"]`))
        .filter(Boolean).map(e => e.scrollHeight))""")
    tall = min(max(int(height), size["height"]), 12_000)
    if tall > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": tall})
    try:
        drawn(page)
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return path


@dataclass(frozen=True)
class Trained:
    """What the session's training left in the app: one model, two searches."""

    url: str
    home: Path
    model: str
    jobs: tuple[int, int]  # older, newer; version 1 came from the older, 2 from the newer
    data: Path             # the uploaded table (with its target column)
