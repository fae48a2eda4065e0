"""Choices a user makes on one page and expects the next to remember (issue 14, defect 11):
the target picked on Data, how to use a table's dates, and the Train form's settings when
the dataset changes.

Widget values under a `key` are dropped when the widget is not drawn (a page switch), so the
choices live under plain session-state keys, per dataset id, and the page's widgets are
initialised from them. Deep links carry the same two choices as query parameters
(`?dataset=3&target=cultivar`), read once and then dropped from the address."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from core.automl.dates import DateUse, date_columns, default_date_use

TARGETS = "chosen_targets"      # {dataset id: target column}
DATE_USES = "chosen_date_uses"  # {dataset id: DateUse value}


def remember_target(dataset_id: int, column: str) -> None:
    st.session_state.setdefault(TARGETS, {})[dataset_id] = column


def remembered_target(dataset_id: int, columns: list[str]) -> str:
    """The target chosen for this dataset on any page, else its last column (the usual
    place of a label)."""
    chosen = st.session_state.get(TARGETS, {}).get(dataset_id)
    return chosen if chosen in columns else columns[-1]


def remember_date_use(dataset_id: int, use: str) -> None:
    st.session_state.setdefault(DATE_USES, {})[dataset_id] = str(use)


def remembered_date_use(dataset_id: int, columns: Iterable[Mapping[str, Any]]) -> DateUse:
    """The choice made for this dataset's dates, else the safe default
    (core.automl.dates.default_date_use)."""
    chosen = st.session_state.get(DATE_USES, {}).get(dataset_id)
    return DateUse(chosen) if chosen in tuple(DateUse) else default_date_use(columns)


def take_link_choices() -> None:
    """`?dataset=ID&target=COLUMN` (the Data page's link to Train): remember them, select the
    dataset, and drop them from the address so they do not override later choices."""
    params = st.query_params
    wanted = params.get("dataset", "")
    if wanted.isdigit():
        st.session_state["dataset_id"] = int(wanted)
        if params.get("target"):
            remember_target(int(wanted), params["target"])
    for key in ("dataset", "target"):
        if key in params:
            del params[key]


def keep_compatible(ds: Any, *, prefix: str = "train_") -> None:
    """Before the Train form is drawn: keep every setting the new dataset allows, reset only
    those it cannot take (a target or time column it lacks), and move the model name along
    with the dataset unless the user typed one. A target chosen for the new table (on the
    Data page, or here before) wins over the one kept from the previous table."""
    state = st.session_state
    columns = [c["name"] for c in ds.columns]
    switched = state.get(prefix + "dataset") != ds.id
    chosen = state.get(TARGETS, {}).get(ds.id)  # picked for this table on Data or here
    current = state.get(prefix + "target")
    if switched and chosen in columns:
        state[prefix + "target"] = chosen
    elif current not in columns:
        state[prefix + "target"] = remembered_target(ds.id, columns)
    for key in ("time", "ticker"):
        if state.get(prefix + key, "—") not in ["—", *columns]:
            state[prefix + key] = "—"
    name = state.get(prefix + "name")
    if name is None or (switched and name == state.get(prefix + "default_name")):
        state[prefix + "name"] = ds.name
    state[prefix + "default_name"] = ds.name
    if switched or state.get(prefix + "dates") not in tuple(DateUse):
        state[prefix + "dates"] = remembered_date_use(ds.id, ds.columns).value
    state[prefix + "dataset"] = ds.id


__all__ = ["date_columns", "keep_compatible", "remember_date_use", "remember_target",
           "remembered_date_use", "remembered_target", "take_link_choices"]
