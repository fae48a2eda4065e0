"""Streamlit pieces shared by the pages: error boundaries and small formatting helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import WorkbenchError


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a user's mistake as a short error box instead of a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        st.error(exc.message, icon=":material/error:")


def empty_state(message: str) -> None:
    st.info(message, icon=":material/info:")
