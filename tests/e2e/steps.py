"""What a person does in the browser, as small steps the browser tests share: open a page,
pick from a selectbox, upload, wait for a page to finish drawing, check it shows no error,
take a screenshot. Locators are headings, labels and button names, never layout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.factories import ROOT

WAIT = 30_000
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


def goto(page: Page, url: str, title: str) -> None:
    """By address, as a bookmark, a shared deep link or a phone (whose sidebar is folded) does:
    a new session."""
    page.goto(url)
    expect(heading(page, title)).to_be_visible(timeout=WAIT)


def choose(page: Page, label: str, option: str) -> None:
    """Pick the option containing `option` from the selectbox labelled `label`."""
    box = page.get_by_test_id("stSelectbox").filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))
    expect(box).to_have_count(1, timeout=WAIT)
    box.locator("input").click()
    page.get_by_role("option").filter(has_text=option).first.click()
    expect(box).to_contain_text(option, timeout=WAIT)


def upload(page: Page, path: Path, nth: int = 0) -> None:
    page.locator('input[type="file"]').nth(nth).set_input_files(str(path))


def drawn(page: Page) -> None:
    """Every chart on the page has drawn (for screenshots that show them)."""
    charts = page.get_by_test_id("stVegaLiteChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator("canvas, svg").first).to_be_attached(timeout=WAIT)


def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    drawn(page)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass(frozen=True)
class Trained:
    """What the session's training left in the app: one model, two searches."""

    url: str
    home: Path
    model: str
    jobs: tuple[int, int]  # older, newer; version 1 came from the older, 2 from the newer
    data: Path             # the uploaded table (with its target column)
