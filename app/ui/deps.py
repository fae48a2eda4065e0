"""The Streamlit app's composition root: one store per server process, sessions per page run.

Pages never build engines or parse settings themselves: they ask here. The engine lives in
`st.cache_resource` (shared by every browser session of this server, keyed by the database
URL so a changed WORKBENCH_HOME in tests gets its own); short listings may be cached by
pages with `st.cache_data(ttl=...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlmodel import Session

from app.ui.identity import current_principal
from core.settings import get_settings
from core.store.db import Database
from core.store.scope import scope


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Database:
    return Database(url)


def whole_store() -> Database:
    """The store across workspaces: only for deciding who is signed in (app.ui.signin)."""
    return _database(get_settings().db_url)


def database() -> Database:
    """The store this app serves (migrated to head on first use), as the signed-in
    principal's workspace sees it."""
    return whole_store().in_workspace(current_principal().workspace)


@contextmanager
def session() -> Iterator[Session]:
    """A session for one page run's reads and the use cases it calls (they commit)."""
    with Session(database().engine, expire_on_commit=False) as s:
        scope(s, current_principal().workspace)  # every query: this workspace only
        yield s
