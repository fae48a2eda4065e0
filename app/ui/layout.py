"""Layout that holds from a desktop to a phone.

`st.columns` keeps its columns side by side down to a 640 px wide *window*, so at tablet width
(820 px, the sidebar open) two charts share ~480 px and shrink to slivers, and metric labels
are cut with "…". `responsive_columns` uses `st.grid` instead, which measures its *container*
and drops to fewer columns when a cell would get narrower than `min_width`; `apply_layout`
adds the few CSS rules Streamlit has no option for (whole metric labels, room for a table's
toolbar on touch screens). Measured in chromium at 1280, 820 and 390 px (tests/e2e/test_layout.py).
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

# Cell widths below which a grid drops a column (px, the container's, not the window's).
CHART_WIDTH = 300  # an Altair chart with its axis titles and legend stays readable
CARD_WIDTH = 170  # a metric card's label of a few words, on at most two lines
FIELD_WIDTH = 200  # a form field with its label

# Streamlit 1.67's test ids; only what no parameter offers.
LAYOUT_CSS = """
<style>
/* Metric labels: wrap onto a second line instead of ending in "…". */
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"],
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] * {
  white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; overflow-wrap: anywhere;
}
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * {
  white-space: normal !important; overflow-wrap: anywhere;
}
/* A table's toolbar (search, download, fullscreen) floats above its top edge and is always
   shown on touch screens, where it covered the heading above the table: give it room. */
@media (hover: none), (max-width: 640px) {
  [data-testid="stElementContainer"]:has(> [data-testid="stDataFrame"]),
  [data-testid="stElementContainer"]:has(> div > [data-testid="stDataFrame"]) {
    margin-top: 2.25rem;
  }
}
</style>
"""


def apply_layout() -> None:
    """Inject the layout CSS: first thing on every page (a style-only `st.html` goes to the
    event container and takes no space). Not from the entry point: in Streamlit 1.67 what
    `streamlit_app.py` draws is dropped when a page other than the default one is opened by
    its address (`/registry`), checked in chromium. For the same reason the sign-in check
    (the form and a stop when it fails) and who is signed in are drawn here."""
    from app.ui.identity import current_principal
    from app.ui.signin import signed_in_sidebar

    signed_in_sidebar(current_principal())
    st.html(LAYOUT_CSS)


def responsive_columns(count: int, *, min_width: int = CHART_WIDTH,
                       key: str | None = None) -> list[DeltaGenerator]:
    """Like `st.columns(count)`, but the cells wrap onto new rows when the space for one
    falls below `min_width` pixels (a tablet, a phone, a narrow window with the sidebar
    open). Each returned cell works like a column (`with cell:` or `cell.metric(...)`).

    Equal widths only: the uneven splits the pages use ([1, 2] for a choice beside a text
    field) hold at tablet width, and `st.columns` stacks them on a phone."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count!r}")
    grid = st.grid(count, min_column_width=min_width, key=key)
    return [grid.cell() for _ in range(count)]
