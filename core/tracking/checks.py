"""What a logged name or value must look like; one message per rule, naming the field, the
value received and what is allowed."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from core.errors import InputError


class BadInput(InputError):
    """A bad name, value, filter or page in a tracking call: 422, like a body the API's
    validation refuses (the message names the field)."""

    code = "invalid_request"
    http_status = 422


KEY_MAX = 250
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 5000
STEP_MAX = 2_147_483_647
NAME_MAX = 200
# one call's batch (a REST body, a Python call): bounds what one request can make the store
# hold or the server parse (MLflow's log-batch has like bounds)
PARAMS_PER_CALL = 1000
TAGS_PER_CALL = 1000
METRICS_PER_CALL = 10_000
FILTERS_MAX = 20
# letters, digits and _ - . / space (MLflow's rule): never an operator of the filter syntax
_KEY = re.compile(r"[A-Za-z0-9_\-./ ]+")


def check_key(key: Any, field: str) -> str:
    if not isinstance(key, str) or not key or len(key) > KEY_MAX or not _KEY.fullmatch(key) \
            or key != key.strip():
        raise BadInput(
            f"{field}: {key!r} is not a valid name; use 1–{KEY_MAX} letters, digits, "
            "underscores, dashes, dots, slashes or inner spaces (e.g. 'max_depth', "
            "'val/loss').")
    return key


def check_name(name: Any, field: str = "experiment") -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX \
            or any(ord(c) < 32 or c in "/\\" for c in name):
        # no slashes: GET /v1/experiments/{name}/runs must be able to name every experiment
        raise BadInput(f"{field}: {name!r} is not a valid name; give 1–{NAME_MAX} "
                       "printable characters without '/' or '\\'.")
    return name.strip()


def check_batch(field: str, given: Any, most: int) -> None:
    """BadInput when one call logs more than `most` items of `field`."""
    if len(given) > most:
        raise BadInput(f"{field}: {len(given)} given in one call; at most {most} are taken. "
                       "Log them in several calls.")


def _no_nul(field: str, text: str) -> str:
    # PostgreSQL's text cannot hold NUL: refused here on every backend, as a 422 naming it
    if "\x00" in text:
        raise BadInput(f"{field}: the value holds a NUL character (\\x00); remove it.")
    return text


def param_text(key: str, value: Any) -> str:
    return _value_text(f"params.{key}", value, PARAM_VALUE_MAX,
                       " Log a shorter value or an artifact.")


def tag_text(key: str, value: Any) -> str:
    return _value_text(f"tags.{key}", value, TAG_VALUE_MAX)


def _value_text(field: str, value: Any, most: int, hint: str = "") -> str:
    """A param or tag value as stored text, refused (naming `field`) when it cannot be kept."""
    text = _no_nul(field, value if isinstance(value, str) else as_text(value))
    if len(text) > most:
        raise BadInput(f"{field}: the value has {len(text)} characters; at most {most} are "
                       f"kept.{hint}")
    return text


def as_text(value: Any) -> str:
    """A param or tag value as text: strings as they are, numbers as Python writes them (NumPy
    scalars as their plain value), anything else as JSON."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()  # np.float64(0.1) → 0.1, not "np.float64(0.1)"
        except (TypeError, ValueError):
            pass
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(int(value))
    try:
        return json.dumps(value, sort_keys=True, default=_plain)
    except (TypeError, ValueError):
        return str(value)


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def as_number(text: str) -> float | None:
    """The number a parameter's text reads as (None for words, NaN and infinities)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy scalars, Decimal
        except (TypeError, ValueError):
            raise BadInput(f"metrics.{key}: {value!r} is not a number.") from None
    value = float(value)
    if not math.isfinite(value):
        raise BadInput(f"metrics.{key}: {value!r} is not a finite number; NaN and "
                       "infinities cannot be compared or charted, so they are refused.")
    return value


def metric_step(key: str, step: Any) -> int:
    if hasattr(step, "item") and not isinstance(step, bool):
        step = step.item()  # a NumPy integer, e.g. from a training loop's counter
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= STEP_MAX:
        raise BadInput(f"metrics.{key}.step: {step!r} is not a whole number in "
                       f"[0, {STEP_MAX}].")
    return step


def aware(at: datetime | None, field: str = "timestamp") -> datetime:
    """`at` in UTC (naive: read as UTC; None: now); BadInput when UTC cannot hold it (year 1
    with a positive offset is before year 1 in UTC) — a storable instant, never a 500."""
    if at is None:
        return datetime.now(UTC)
    if not isinstance(at, datetime):
        raise BadInput(f"{field}: {at!r} is not a date and time.")
    try:
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise BadInput(f"{field}: {at.isoformat()} is outside the years 1–9999 in UTC; give "
                       "a time within them (e.g. 2026-01-31T12:00:00Z).") from None
