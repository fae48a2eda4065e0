"""Streamlit pieces shared by the pages: error boundaries and small formatting helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from core.errors import WorkbenchError
from core.store.failures import storage_failure


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a user's mistake, or storage that is unavailable right now, as a short error box
    instead of a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        st.error(exc.message, icon=":material/error:")
    except Exception as exc:
        failure = storage_failure(exc)
        if failure is None:
            raise
        st.error(failure.message, icon=":material/error:")


def empty_state(message: str, links: list[tuple[str, str]] | None = None) -> None:
    """What to do next on an empty page: a short message, then links to the pages that do it
    (`links`: (page file, label) pairs)."""
    from app.ui.links import page_link

    st.info(message, icon=":material/info:")
    for page, label in links or []:
        page_link(page, label)


def pick_dataset(datasets: list[Any], label: str = "Dataset") -> Any:
    """A dataset selectbox that remembers the last choice across pages (session state)."""
    labels = {d.id: f"{d.id}: {d.name} ({d.n_rows}×{d.n_cols})" for d in datasets}
    ids = list(labels)
    current = st.session_state.get("dataset_id", ids[0])
    chosen = st.selectbox(label, ids, index=ids.index(current) if current in ids else 0,
                          format_func=labels.__getitem__)
    st.session_state["dataset_id"] = chosen
    return next(d for d in datasets if d.id == chosen)
