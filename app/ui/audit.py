"""The Audit page's pieces: the filter bar, the log as a readable table (times in UTC, actions
as phrases, entities as people name them, details as "key value" text), and one entry in full.

The page reads through `core.store.audit_log.list_audit`, the query behind `GET /v1/audit` and
`workbench audit`, so the three always agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from app.ui.layout import FIELD_WIDTH, responsive_columns
from app.ui.times import when
from core.store.audit import AuditAction
from core.store.audit_log import AuditEntry, action_text, detail_text, entity_text

ANY = "any"
PERIODS = {"last hour": timedelta(hours=1), "last 24 hours": timedelta(days=1),
           "last 7 days": timedelta(days=7), "last 30 days": timedelta(days=30), "all time": None}
PAGE_SIZE = 100


@dataclass(frozen=True)
class AuditQuery:
    entity: str | None
    action: str | None
    actor: str | None
    since: datetime | None


def _action_choice(value: str) -> str:
    if value == ANY:
        return "any action"
    if "." not in value:
        return f"{value} (all)"
    return f"{value}: {action_text(value)}"


def filter_bar(actors: list[str]) -> AuditQuery:
    """Entity, action (a family or one action), who, and since when; a deep link
    `?entity=model:churn` fills the entity."""
    families = sorted({a.family for a in AuditAction})
    actions = [ANY, *[x for f in families for x in (f, *sorted(
        a.value for a in AuditAction if a.family == f))]]
    c1, c2, c3, c4 = responsive_columns(4, min_width=FIELD_WIDTH)
    entity = c1.text_input("Entity", value=st.query_params.get("entity", ""), key="audit_entity",
                           placeholder="model:churn, dataset:3, job:7",
                           help="An entity and everything under it: model:churn also shows "
                                "its versions (model:churn:3).").strip()
    action = c2.selectbox("Action", actions, format_func=_action_choice, key="audit_action")
    actor = c3.selectbox("Who", [ANY, *actors], key="audit_actor",
                         format_func=lambda a: "anyone" if a == ANY else a)
    period = c4.selectbox("When", list(PERIODS), index=list(PERIODS).index("all time"),
                          key="audit_period")
    delta = PERIODS[period]
    return AuditQuery(entity=entity or None, action=None if action == ANY else action,
                      actor=None if actor == ANY else actor,
                      since=datetime.now(UTC) - delta if delta else None)


def audit_frame(entries: list[AuditEntry]) -> pd.DataFrame:
    """One row per change, newest first, every column plain text a person reads."""
    return pd.DataFrame([{"when": when(e.at, seconds=True), "who": e.actor,
                          "did": action_text(e.action), "what": entity_text(e.entity),
                          "why": e.reason, "details": detail_text(e.detail),
                          "action": e.action, "entity": e.entity} for e in entries],
                        columns=["when", "who", "did", "what", "why", "details", "action",
                                 "entity"])


def entry_panel(entry: AuditEntry) -> None:
    """One entry in full: the sentence, then every detail as recorded."""
    st.markdown(f"**{entry.actor}** {action_text(entry.action)} — {entity_text(entry.entity)}, "
                f"{when(entry.at, seconds=True)}")
    if entry.reason:
        st.markdown(f"Why: {entry.reason}")
    st.caption(f"Entry {entry.id} · action `{entry.action}` · entity `{entry.entity}`")
    if entry.detail:
        st.json(entry.detail, expanded=True)
