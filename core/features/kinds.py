"""Column kinds: the one place that says what a column holds and how a model reads it.

The kinds themselves are `core.enums.ColumnKind`. Two questions are answered here, each once:
- Of stored values (a pandas column or dtype): does it hold numbers, booleans, dates or text?
  Booleans are *not* numbers here, although pandas counts them as numeric.
- Of an input-schema column (a model's `{"name", "kind", "dtype"}`, from
  core.data.profile): is it scored as a number, encoded as a category, split into date parts,
  or left out? A boolean column is scored as a number when its stored type is numeric or
  boolean (True/False, 0/1), and as a category when it held text ("yes"/"no").

Preprocessing (core.features.preprocess), aligning requests (core.features.schema), serving
and the what-if form read these rules, so a column is treated the same way at fit time and at
predict time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

import pandas as pd

from core.enums import ColumnKind

DROPPED_KINDS: dict[str, str] = {
    ColumnKind.ID: "an identifier: near-unique values carry no pattern and would not "
                   "generalise",
    ColumnKind.TEXT: "free text: not used by this version of the workbench",
}


class Encoding(StrEnum):
    """How preprocessing turns a used column into model input."""

    NUMBER = "numeric"
    CATEGORY = "categorical"
    DATE_PARTS = "datetime"


# -- stored values --------------------------------------------------------------------------
def holds_numbers(values: pd.Series | Any) -> bool:
    """A column (or dtype) of numbers: integers or floats, nullable or not; not booleans."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def holds_booleans(values: pd.Series | Any) -> bool:
    return pd.api.types.is_bool_dtype(values)


def holds_datetimes(values: pd.Series | Any) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values)


def holds_text(values: pd.Series | Any) -> bool:
    """Python objects or a pandas string dtype: where labels, free text and unparsed dates
    live."""
    return pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)


# -- input-schema columns -------------------------------------------------------------------
NUMBER_DTYPE_PREFIXES = ("int", "uint", "float", "bool", "Int", "UInt", "Float")


def dtype_name_is_number(dtype: str) -> bool:
    """A stored dtype name (`int64`, `Float64`, `bool`, `boolean`, …) whose values a model can
    read as numbers; text (`object`, `str`, `string`), `category` and dates are not."""
    return str(dtype).startswith(NUMBER_DTYPE_PREFIXES)


def scored_as_number(column: Mapping[str, Any]) -> bool:
    """Numeric columns, and boolean columns stored as numbers or booleans."""
    kind = column["kind"]
    return kind == ColumnKind.NUMERIC or (
        kind == ColumnKind.BOOLEAN and dtype_name_is_number(column.get("dtype", "")))


def encoding_of(column: Mapping[str, Any]) -> Encoding | None:
    """How preprocessing reads a schema column; None for a dropped one (ids, free text)."""
    kind = column["kind"]
    if kind in DROPPED_KINDS:
        return None
    if scored_as_number(column):
        return Encoding.NUMBER
    if kind == ColumnKind.DATETIME:
        return Encoding.DATE_PARTS
    return Encoding.CATEGORY


def date_columns(columns: Iterable[Mapping[str, Any]]) -> list[str]:
    """The names of the date/time columns of a profile or input schema, in table order."""
    return [str(c["name"]) for c in columns if c.get("kind") == ColumnKind.DATETIME]


__all__ = ["DROPPED_KINDS", "NUMBER_DTYPE_PREFIXES", "Encoding", "date_columns",
           "dtype_name_is_number", "encoding_of", "holds_booleans", "holds_datetimes",
           "holds_numbers", "holds_text", "scored_as_number"]
