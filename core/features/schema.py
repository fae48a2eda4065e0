"""Aligning incoming rows to a model's input schema, with sklearn-style difference messages.

The one wording of a column mismatch: the columns a model needs that the input lacks, and in
the same message the input's columns the model does not know (often the missing ones under
another name), so a caller fixes both in one try."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.enums import ColumnKind
from core.errors import SchemaMismatchError
from core.features.kinds import scored_as_number
from core.store.shapes import SchemaColumn

MAX_NAMED = 20  # columns named in one message; the rest are counted
LABEL_KINDS = frozenset({ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN, ColumnKind.TEXT,
                         ColumnKind.ID})  # passed on as Python objects (dates stay as sent)
ADD_THEM = "Add them (empty values are allowed) and try again."


def column_differences(expected: Iterable[Any], given: Iterable[Any]
                       ) -> tuple[list[Any], list[Any]]:
    """(expected columns the input lacks, in the model's order; input columns the model does
    not know, in the input's order)."""
    expected, given = list(expected), list(given)
    known, present = set(expected), set(given)
    return ([c for c in expected if c not in present],
            [c for c in given if c not in known])


def named(columns: Sequence[Any]) -> str:
    """`'a', 'b' and 3 more`: column names as a message shows them."""
    shown = ", ".join(repr(c) for c in columns[:MAX_NAMED])
    return shown + (f" and {len(columns) - MAX_NAMED} more" if len(columns) > MAX_NAMED else "")


def unexpected_note(unexpected: Sequence[Any]) -> str:
    """The sentence naming the input's unknown columns ('' when there are none)."""
    if not unexpected:
        return ""
    return (f" The input has columns the model was not trained on: {named(unexpected)} (if "
            "one of them is a missing column under another name, rename it).")


def check_columns(expected: Iterable[Any], given: Iterable[Any], *,
                  lead: str = "Columns the model was trained on are missing from the input",
                  fix: str = ADD_THEM, known: Iterable[Any] | None = None) -> None:
    """Refuse an input lacking any of `expected`, naming the missing columns and the
    unexpected ones (those outside `known`, default `expected`). Extra columns alone are
    fine: they are ignored."""
    given = list(given)
    missing, _ = column_differences(expected, given)
    if missing:
        _, unexpected = column_differences(expected if known is None else known, given)
        raise SchemaMismatchError(f"{lead}: {named(missing)}. {fix}"
                                  + unexpected_note(unexpected))


def align_to_schema(frame: pd.DataFrame, schema: list[SchemaColumn]) -> pd.DataFrame:
    """Reorder to the schema, ignore extra columns, coerce types; refuse missing columns
    (naming the unexpected ones too) and values that cannot be read as the type the model was
    trained on."""
    expected = [c["name"] for c in schema]
    check_columns(expected, frame.columns)
    out = frame.loc[:, expected].copy()
    for col in schema:
        name, kind = col["name"], col["kind"]
        if scored_as_number(col):
            out[name] = _to_float(out[name], name)
        elif kind in LABEL_KINDS:
            out[name] = out[name].astype(object)
    return out


def _to_float(s: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    try:
        converted = pd.to_numeric(s.replace({True: 1, False: 0}), errors="coerce")
        finite = converted.astype("float64")
    except OverflowError:  # an integer beyond what a float holds (e.g. 10**400 in JSON)
        raise SchemaMismatchError(
            f"Column {name!r} holds a number too large for a 64-bit float. Send finite "
            "numbers (or empty values) in that column.") from None
    bad = s.notna() & converted.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in s[bad].astype(str).unique()[:3])
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad.to_numpy())[:5])
        raise SchemaMismatchError(
            f"Column {name!r} must be numeric, but rows {rows} hold {examples}. "
            "Send numbers (or empty values) in that column.")
    converted = finite
    if np.isinf(converted.to_numpy()).any():
        raise SchemaMismatchError(f"Column {name!r} holds infinite values. Send finite numbers "
                                  "or empty values.")
    return converted
