"""Audit: every change with who made it, when, why and its details, newest first; filter by
entity, action, person and period. Read-only: the log is append-only."""

import streamlit as st

from app.ui import audit as ui
from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.layout import apply_layout
from core.store.audit_log import actors, list_audit

apply_layout()
st.title("Audit log")
st.caption("Every change to datasets, models, versions, jobs, schedules, deployments and alerts: "
           "who made it (a person, an API key, or a component such as the scheduler), when "
           "(UTC), why, and the details recorded. Entries are never edited or deleted.")
with session() as s:
    everyone = actors(session=s)
query = ui.filter_bar(everyone)
page_no = int(st.number_input("Page", min_value=1, value=1, step=1, key="audit_page"))
page = None
with user_errors(), session() as s:
    page = list_audit(session=s, entity=query.entity, action=query.action, actor=query.actor,
                      since=query.since, limit=ui.PAGE_SIZE, offset=(page_no - 1) * ui.PAGE_SIZE)
if page is None:
    st.stop()
if not page.entries:
    if any((query.entity, query.action, query.actor, query.since)):
        empty_state("No entries match these filters: widen them (any action, anyone, all "
                    "time) to see more.")
    else:
        empty_state("The audit log is empty: nothing has changed yet. Every upload, training, "
                    "deployment and alias move will be listed here.",
                    links=[("pages/data.py", "Upload a dataset"),
                           ("pages/train.py", "Train a model")])
    st.stop()
first = page.offset + 1
st.caption(f"Entries {first}–{page.offset + len(page.entries)} of {page.total}, newest first"
           + (f"; {page.total - page.offset - len(page.entries)} older on the next pages."
              if page.offset + len(page.entries) < page.total else "."))
picked = st.dataframe(ui.audit_frame(page.entries), hide_index=True, width="stretch",
                      key="audit_table", on_select="rerun", selection_mode="single-row",
                      column_config={"action": None, "entity": None})
rows = picked.selection.rows if picked else []
if rows:
    ui.entry_panel(page.entries[rows[0]])
else:
    st.caption("Select a row to see the entry in full.")
