"""Deleting a dataset from the Data page: a confirmation with Cancel, and the refusal (with
who uses it) when a model version or job was trained on it."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui.common import user_errors
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.permissions import act
from core.data.datasets import dataset_users, delete_dataset

PENDING = "dataset_delete_pending"  # the dataset id awaiting confirmation
DONE = "dataset_deleted"            # the message shown after the rerun


def delete_box(ds: Any) -> None:
    """A Delete button; nothing is deleted until "Confirm delete" (Cancel backs out). A
    dataset other versions or jobs name is shown as kept, with the reason, and no button."""
    if DONE in st.session_state:
        st.success(st.session_state.pop(DONE))
    with session() as s:
        users = dataset_users(ds.id, session=s)
    if users:
        st.caption(f"Kept: {users.describe()} name this dataset as their training data, so "
                   "deleting it would lose their lineage.")
        return
    if st.session_state.get(PENDING) != ds.id:
        if act(st.button, f"Delete dataset {ds.id} ({ds.name})", key="dataset_delete",
               icon=":material/delete:"):
            st.session_state[PENDING] = ds.id
            st.rerun()
        return
    st.warning(f"Delete dataset {ds.id} ({ds.name}, {ds.n_rows} rows) and its stored file? "
               "This cannot be undone.", icon=":material/warning:")
    c1, c2 = st.columns(2)
    if act(c1.button, "Confirm delete", key="dataset_delete_confirm", type="primary"):
        st.session_state.pop(PENDING, None)
        with user_errors(), session() as s:
            gone = delete_dataset(ds.id, session=s, actor=current_actor())
            st.session_state.pop("dataset_id", None)
            st.session_state[DONE] = f"Deleted dataset {gone.id} ({gone.name})."
            st.rerun()
    if c2.button("Cancel", key="dataset_delete_cancel"):
        st.session_state.pop(PENDING, None)
        st.rerun()
