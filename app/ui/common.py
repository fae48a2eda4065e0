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
    """A dataset selectbox that remembers the last choice across pages (session state).

    Keyed, with its value put in session state before it is drawn: an unkeyed selectbox
    whose `index` follows the last pick becomes a new widget whenever that index changes (the
    index is part of its identity), and the pick made on the old one is dropped."""
    labels = {d.id: f"{d.id}: {d.name} ({d.n_rows}×{d.n_cols})" for d in datasets}
    ids = list(labels)
    key = f"pick_dataset:{label}"
    if st.session_state.get("dataset_id") not in ids:
        st.session_state["dataset_id"] = ids[0]
    st.session_state[key] = st.session_state["dataset_id"]  # an upload or another page's pick
    chosen = st.selectbox(label, ids, key=key, format_func=labels.__getitem__,
                          on_change=_remember_dataset, args=(key,))
    return next(d for d in datasets if d.id == chosen)


def _remember_dataset(key: str) -> None:
    st.session_state["dataset_id"] = st.session_state[key]
