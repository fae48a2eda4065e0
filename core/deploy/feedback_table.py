"""Feedback as a table: one row per answered request with its true value, the way someone
without a shell sends labels (the Monitor page's upload), and the table of recent requests
to fill in.

Each row goes through the same rule as `POST /v1/models/{name}/feedback`
(`core.deploy.feedback._check` / `_store`): an unknown request id is not stored, a request
that scored N records needs N values (a JSON list in the cell), and a label sent again
replaces the earlier one. Within one table the last row of a request id wins, as a second
POST would. The whole table is one transaction.
"""

from __future__ import annotations

import json
import re
from collections import Counter as Tally
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlmodel import Session, select

from core.deploy.columns import stored_records
from core.deploy.deployments import InvalidRequestError
from core.deploy.feedback import _check, _store
from core.errors import InvalidDataError, NotFoundError
from core.registry import resolve
from core.store import PredictionLog, RequestInput
from core.store.db import lock_for_write

REQUEST_ID = "request_id"
ACTUAL = "actual"
EXAMPLES = 5  # ids named in a message; the rest are counted
CHUNK = 500  # request ids per IN (...) query


class FeedbackTableResult(BaseModel):
    """What a labelled table did: every row is accounted for in exactly one count
    (`recorded` + `relabelled`… are requests, the others rows)."""

    rows: int
    recorded: int  # requests whose true values were stored now
    relabelled: int  # of `recorded`: had a label already, replaced (as a second POST does)
    values: int  # true values stored (a request that scored N records takes N)
    by_version: dict[int, int]  # requests labelled per version
    blank: int  # rows without an actual value: skipped
    duplicates: int  # rows whose request id comes again further down: the last one counts
    unknown: int  # request ids with no prediction of this model
    unknown_ids: list[str]
    mismatched: int  # requests sent the wrong number of values
    mismatched_ids: list[str]
    actual_column: str


def _key(column: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(column).strip().lower())


def _columns(frame: pd.DataFrame, target: str) -> tuple[str, str]:
    """The request-id and actual-value columns (`request_id` / `X-Request-Id`; `actual` or
    the model's target), or an error naming what is missing."""
    keys = {_key(c): c for c in frame.columns}
    rid = keys.get(REQUEST_ID) or keys.get("x_request_id")
    actual = keys.get(ACTUAL) or keys.get(_key(target))
    missing = [n for n, c in ((REQUEST_ID, rid), (f"{ACTUAL} (or {target})", actual))
               if c is None]
    if missing:
        has = ", ".join(map(str, frame.columns[:10])) or "none"
        raise InvalidDataError(
            f"The table lacks the column{'s' if len(missing) > 1 else ''} "
            f"{' and '.join(missing)} (its columns: {has}). Send one row per answered "
            f"request: its {REQUEST_ID} (the predict response's X-Request-Id) and the true "
            f"value in a column named {ACTUAL} or {target}.")
    return rid, actual


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (
        isinstance(value, str) and not value.strip())


def _typed(value: Any, like: Any) -> Any:
    """A cell as the type of the prediction it labels: a CSV holds text, and `1` and `"1"`
    are one class to the scores but not to label drift or retraining."""
    if hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if isinstance(like, bool):
            return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), text)
        if isinstance(like, int):
            number = float(text)
            return int(number) if number.is_integer() else number
        if isinstance(like, float):
            return float(text)
    except ValueError:
        return text
    return text


def _values(cell: Any, predictions: list[Any]) -> Any:
    """One value, or a JSON list in the cell for a request that scored several records."""
    if isinstance(cell, str) and cell.strip().startswith("["):
        try:
            parsed = json.loads(cell)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [_typed(v, predictions[i] if i < len(predictions) else None)
                    for i, v in enumerate(parsed)]
    return _typed(cell, predictions[0] if predictions else None)


def record_feedback_table(name: str, frame: pd.DataFrame, *, session: Session
                          ) -> FeedbackTableResult:
    """Store the true values a table of (request id, actual) rows gives for `name`'s
    answered requests; see the module docstring for the rules."""
    _, mv = resolve(name, session=session)
    rid_col, actual_col = _columns(frame, mv.target or ACTUAL)
    table = pd.DataFrame({"rid": frame[rid_col], "actual": frame[actual_col]})
    blank = table["actual"].map(_blank) | table["rid"].map(_blank)
    table = table[~blank]
    table["rid"] = table["rid"].map(lambda v: str(v.item() if hasattr(v, "item") else v)
                                    .strip())
    last = table.drop_duplicates("rid", keep="last")
    lock_for_write(session)
    logs: dict[str, PredictionLog] = {}
    ids = last["rid"].tolist()
    for start in range(0, len(ids), CHUNK):
        logs.update((r.request_id, r) for r in session.exec(select(PredictionLog).where(
            PredictionLog.model_name == name,
            PredictionLog.request_id.in_(ids[start:start + CHUNK]))).all())
    unknown, mismatched, by_version = [], [], Tally()
    recorded = relabelled = values = 0
    for rid, cell in zip(last["rid"], last["actual"], strict=True):
        row = logs.get(rid)
        try:
            actual = _check(row, name, rid, _values(cell, row.predictions if row else []))
        except NotFoundError:
            unknown.append(rid)
            continue
        except InvalidRequestError:
            mismatched.append(rid)
            continue
        relabelled += row.actual is not None
        _store(session, row, actual)
        recorded += 1
        values += len(actual)
        by_version[row.version] += 1
    session.commit()
    return FeedbackTableResult(
        rows=len(frame), recorded=recorded, relabelled=relabelled, values=values,
        by_version=dict(sorted(by_version.items())), blank=int(blank.sum()),
        duplicates=len(table) - len(last), unknown=len(unknown),
        unknown_ids=unknown[:EXAMPLES], mismatched=len(mismatched),
        mismatched_ids=mismatched[:EXAMPLES], actual_column=str(actual_col))


def requests_to_label(name: str, since: datetime, *, session: Session, limit: int = 10_000
                      ) -> pd.DataFrame:
    """The model's answered requests since a moment, newest first, as a table to fill in and
    upload: request id, when, version, prediction, the actual value so far (blank if none),
    then the input columns of one-record requests (to tell what is being labelled)."""
    logs = session.exec(select(PredictionLog).where(
        PredictionLog.model_name == name, PredictionLog.created_at >= since)
        .order_by(PredictionLog.created_at.desc()).limit(limit)).all()
    inputs: dict[str, list[dict[str, Any]]] = {}
    ids = [log.request_id for log in logs]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        inputs.update((r.request_id, stored_records(r.rows)) for r in session.exec(
            select(RequestInput).where(RequestInput.request_id.in_(chunk))).all())

    def one(values: list[Any] | None) -> Any:
        if values is None:
            return None
        return values[0] if len(values) == 1 else json.dumps(values)

    rows = []
    for log in logs:
        at = log.created_at if log.created_at.tzinfo else log.created_at.replace(tzinfo=UTC)
        record = inputs.get(log.request_id) or []
        row = {REQUEST_ID: log.request_id, "created_at": at.strftime("%Y-%m-%d %H:%M:%S UTC"),
               "version": log.version, "prediction": one(log.predictions),
               ACTUAL: one(log.actual)}
        if len(record) == 1:
            row.update((k, v) for k, v in record[0].items() if k not in row)
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [
        REQUEST_ID, "created_at", "version", "prediction", ACTUAL])


__all__ = ["FeedbackTableResult", "record_feedback_table", "requests_to_label"]
