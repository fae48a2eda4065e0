"""The Runs page compares two searches of different models: two real searches (wine and
breast_cancer, from the CLI into the app's own store), both picked on the Runs page, their
metrics and params side by side, a metric-history chart per run and the parallel-coordinates
chart, in chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.steps import (
    SIZES,
    WAIT,
    choose,
    goto,
    loaded,
    no_errors,
    open_page,
    screenshot,
    settled,
)

pytestmark = pytest.mark.e2e
ROW_PX = 35  # Streamlit's table rows (and header) are 35 px high


def _pick(page: Page, label: str, option: str) -> None:
    """Add `option` to the multiselect labelled `label`."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    page.get_by_role("option").filter(has_text=option).first.click(timeout=WAIT)
    page.keyboard.press("Escape")


def test_the_runs_page_compares_two_searches_of_different_models(page: Page,
                                                                   searched_app: str) -> None:
    page.set_viewport_size(SIZES["desktop"])
    goto(page, searched_app, "ML Workbench", timeout=120_000)
    open_page(page, "Runs", "Runs")
    expect(page.get_by_text("Runs 1–2 of 2")).to_be_visible(timeout=WAIT)  # two job runs
    expect(page.get_by_text("Choose two or more runs to compare")).to_be_visible()

    # tick the newest run's row (runs_cancer) in the table, pick the other one by name
    grid = page.get_by_test_id("stDataFrame").first
    settled(page)  # a tick during a script run can be lost: click the finished page's grid
    loaded(page)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + ROW_PX * 1.5)  # the first row's checkbox
    picked = page.get_by_test_id("stMultiSelect").filter(has_text="Compare runs")
    expect(picked).to_contain_text("runs_cancer · job 2", timeout=WAIT)
    settled(page)
    _pick(page, "Compare runs", "runs_wine")
    expect(picked).to_contain_text("runs_wine · job 1", timeout=WAIT)
    expect(page.get_by_role("heading", name="Metric history")).to_be_visible(timeout=WAIT)
    # the side-by-side tables, one column per run (cells are mirrored for assistive tech)
    tables = page.get_by_test_id("stDataFrame")
    expect(tables).to_have_count(3, timeout=WAIT)
    for run in ("runs_wine · job 1", "runs_cancer · job 2"):
        expect(tables.nth(1).locator("th").filter(has_text=run)).to_have_count(1)
    for key in ("log_loss", "roc_auc"):
        expect(tables.nth(1).locator('[data-testid^="glide-cell-"]').filter(has_text=key)
               ).to_have_count(1)
    # the two runs as lines across the params that differ (metric, target, task), coloured
    # by a score both logged; a search's trials may be too few for one (budget 4 s)
    choose(page, "Runs drawn", "the compared runs")
    choose(page, "Score", "accuracy")
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(3, timeout=WAIT)  # a history per run + parallel coordinates
    for title in ("runs_wine · job 1: log_loss by step", "runs_cancer · job 2: roc_auc by step"):
        expect(charts.filter(has_text=title)).to_have_count(1)
    expect(charts.nth(2)).to_contain_text("accuracy", timeout=WAIT)  # coloured by the score
    settled(page)
    loaded(page)
    no_errors(page)
    screenshot(page, "runs-01-compare")
