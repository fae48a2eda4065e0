"""JSON output shared by the CLI (--json) and the REST API: NumPy scalars and dates made plain,
NaN and infinity (which JSON does not have) sent as null."""

from __future__ import annotations

import json
import math
from typing import Any


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def clean(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, dict | list | tuple | str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def dumps(doc: Any) -> str:
    """Strict JSON; only when a NaN/inf is present is the document walked to null them."""
    try:
        return json.dumps(doc, allow_nan=False, default=_default)
    except ValueError:
        return json.dumps(clean(doc), allow_nan=False, default=_default)
