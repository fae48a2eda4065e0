"""Feedback on served predictions (the true values, sent later by the caller) and the live
scorecard built from it: per version, and stable against its shadow candidate.

Use cases on the caller's session; the serving runtime flushes its buffered prediction log
first, so a request answered a moment ago can be labelled."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlmodel import Session, select

from core.deploy.deployments import InvalidRequestError
from core.deploy.verdict import Verdict, verdict
from core.enums import Task
from core.errors import NotFoundError
from core.registry.versions import check_model_name, resolve
from core.store import PredictionLog, utcnow
from core.store.db import lock_for_write


class FeedbackRecorded(BaseModel):
    """`POST /v1/models/{name}/feedback`: how many true values were stored, for which version."""

    request_id: str
    version: int
    recorded: int


# the other measure's fields are left out of the JSON (not written as null)
_ABSENT = Field(default=None, exclude_if=lambda v: v is None)


class VersionScore(BaseModel):
    """One version on its labelled predictions: `accuracy` (classification) or `mae`
    (regression), the other one absent from the JSON."""

    version: int
    labelled: int
    accuracy: float | None = _ABSENT
    mae: float | None = _ABSENT


class ShadowScore(BaseModel):
    """Stable against its shadow candidate on the same labelled requests."""

    stable: int
    candidate: int
    labelled: int
    stable_accuracy: float | None = _ABSENT
    candidate_accuracy: float | None = _ABSENT
    stable_mae: float | None = _ABSENT
    candidate_mae: float | None = _ABSENT
    agreement: float


class Scorecard(BaseModel):
    """`GET /v1/models/{name}/scorecard` (serialised without the absent measure's fields);
    `verdict` judges the current candidate against stable (null without a candidate)."""

    measure: str
    versions: list[VersionScore]
    shadow: list[ShadowScore]
    verdict: Verdict | None = None


def _check(row: PredictionLog | None, name: str, request_id: str, actual: Any) -> list[Any]:
    """The true values to store for one request, or why they cannot be: the one rule the
    REST endpoint and a labelled table share."""
    if row is None:
        raise NotFoundError(f"No prediction {request_id!r} of model {name!r} (request "
                            "ids come from the predict response).")
    actual_list = actual if isinstance(actual, list) else [actual]
    if len(actual_list) != len(row.predictions):
        raise InvalidRequestError(
            f"Request {request_id} scored {len(row.predictions)} records; send "
            f"{len(row.predictions)} actual values (a list) or one value for one record.")
    return actual_list


def _store(session: Session, row: PredictionLog, actual_list: list[Any]) -> None:
    """A later label for the same request replaces the earlier one."""
    session.exec(update(PredictionLog).where(PredictionLog.id == row.id)
                 .values(actual=actual_list, feedback_at=utcnow()))


def record_feedback(name: str, request_id: str, actual: Any, *, session: Session
                    ) -> FeedbackRecorded:
    """Store the true value(s) of one answered request (one per record it scored)."""
    lock_for_write(session)
    row = session.exec(select(PredictionLog).where(PredictionLog.request_id == request_id,
                                                   PredictionLog.model_name == name)).first()
    actual_list = _check(row, name, request_id, actual)
    _store(session, row, actual_list)
    session.commit()
    return FeedbackRecorded(request_id=request_id, version=row.version,
                            recorded=len(actual_list))


def scorecard(name: str, task: str, *, session: Session) -> Scorecard:
    """Accuracy (or mean absolute error) of each version on its labelled predictions, of
    stable against its shadow candidate on the same requests, and the A/B verdict of the
    current candidate (`core.deploy.verdict`)."""
    per_version: dict[int, list[int]] = {}
    shadow: dict[tuple[int, int], dict[str, Any]] = {}
    rows = session.exec(select(PredictionLog).where(PredictionLog.model_name == name,
                                                    PredictionLog.actual.is_not(None))).all()
    for r in rows:
        for i, actual in enumerate(r.actual or []):
            pv = per_version.setdefault(r.version, [0, 0])
            pv[0] += 1
            pv[1] += _hit(task, r.predictions[i], actual)
            if r.shadow_version is not None and r.shadow_predictions is not None:
                sc = shadow.setdefault((r.version, r.shadow_version),
                                       {"n": 0, "stable": 0.0, "shadow": 0.0, "agree": 0})
                sc["n"] += 1
                sc["stable"] += _hit(task, r.predictions[i], actual)
                sc["shadow"] += _hit(task, r.shadow_predictions[i], actual)
                sc["agree"] += int(_same(r.predictions[i], r.shadow_predictions[i]))
    measure = "mae" if task == Task.REGRESSION else "accuracy"
    return Scorecard(
        measure=measure,
        versions=[VersionScore(version=v, labelled=n, **{measure: hits / n})
                  for v, (n, hits) in sorted(per_version.items())],
        shadow=[ShadowScore(stable=a, candidate=b, labelled=sc["n"],
                            agreement=sc["agree"] / sc["n"],
                            **{f"stable_{measure}": sc["stable"] / sc["n"],
                               f"candidate_{measure}": sc["shadow"] / sc["n"]})
                for (a, b), sc in sorted(shadow.items())],
        verdict=verdict(name, task, session=session))


def model_scorecard(name: str, *, session: Session) -> Scorecard:
    """The scorecard of a model by name (its task read from the version `name` resolves
    to): what `GET /v1/models/{name}/scorecard` and `workbench scorecard` both answer."""
    _, mv = resolve(check_model_name(name), session=session)
    return scorecard(name, mv.task, session=session)


def _same(a: Any, b: Any) -> bool:
    return str(a) == str(b)


def _hit(task: str, pred: Any, actual: Any) -> float:
    if task == Task.REGRESSION:
        try:
            return abs(float(pred) - float(actual))
        except (TypeError, ValueError):
            return 0.0
    return float(_same(pred, actual))
