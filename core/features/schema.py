"""Aligning incoming rows to a model's input schema, with sklearn-style difference messages."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.errors import SchemaMismatchError


def align_to_schema(frame: pd.DataFrame, schema: list[dict[str, Any]]) -> pd.DataFrame:
    """Reorder to the schema, ignore extra columns, coerce types; refuse missing columns and
    values that cannot be read as the type the model was trained on."""
    expected = [c["name"] for c in schema]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            "Columns the model was trained on are missing from the input: "
            + ", ".join(repr(c) for c in missing)
            + ". Add them (empty values are allowed) and try again.")
    out = frame.loc[:, expected].copy()
    for col in schema:
        name, kind = col["name"], col["kind"]
        if kind == "numeric" or (kind == "boolean" and _is_numeric_dtype_name(col["dtype"])):
            out[name] = _to_float(out[name], name)
        elif kind in ("categorical", "boolean", "text", "id"):
            out[name] = out[name].astype(object)
    return out


def _is_numeric_dtype_name(dtype: str) -> bool:
    return dtype.startswith(("int", "float", "uint", "bool", "Int", "Float", "UInt", "boolean"))


def _to_float(s: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    converted = pd.to_numeric(s.replace({True: 1, False: 0}), errors="coerce")
    bad = s.notna() & converted.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in s[bad].astype(str).unique()[:3])
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad.to_numpy())[:5])
        raise SchemaMismatchError(
            f"Column {name!r} must be numeric, but rows {rows} hold {examples}. "
            "Send numbers (or empty values) in that column.")
    converted = converted.astype("float64")
    if np.isinf(converted.to_numpy()).any():
        raise SchemaMismatchError(f"Column {name!r} holds infinite values. Send finite numbers "
                                  "or empty values.")
    return converted
