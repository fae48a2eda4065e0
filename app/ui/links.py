"""Links between pages that survive a page being run on its own."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError


def page_link(page: str, label: str, *, query_params: dict[str, str] | None = None,
              icon: str | None = None) -> None:
    """`st.page_link`, or the label as plain text when the page is run as its own script
    (`AppTest.from_file("pages/x.py")`), where no navigation knows the other pages."""
    try:
        st.page_link(page, label=label, query_params=query_params, icon=icon)
    except StreamlitPageNotFoundError:
        st.caption(label)
