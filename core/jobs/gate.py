"""The promotion gate: a retrained version must beat production on the same validation data
before anything else happens (like MLflow's MetricThreshold).

Both are scored on the rows the new search validated on: the challenger by its out-of-fold
predictions, production by predicting those rows. Production may have been trained on some
of them (older data overlaps newer data), which favours production: the gate errs on the
side of keeping what runs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import WorkbenchError
from core.registry import PRODUCTION, load_pipeline
from core.store import Job, Schedule, session_scope
from core.store.audit import record

if TYPE_CHECKING:
    from core.automl.runner import RunOutcome

log = logging.getLogger("workbench.gate")
GATED_TRIGGERS = {"schedule", "api", "alert"}


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str
    metric: str
    candidate_version: int
    candidate_score: float
    production_version: int | None = None
    production_score: float | None = None
    min_abs: float = 0.0
    min_rel: float = 0.0


def evaluate_gate(outcome: RunOutcome, *, min_abs: float = 0.0,
                  min_rel: float = 0.0) -> GateVerdict:
    data, best = outcome.result.data, outcome.result.best
    m = data.metric
    covered = best.cv.covered
    y = data.y.to_numpy()[covered]
    classes = data.problem.classes
    if data.task == "regression":
        cand = m.score(y, best.cv.oof_pred[covered].astype(float))
    else:
        proba = best.cv.oof_proba[covered]
        cand = m.score(y, np.asarray(classes)[np.argmax(proba, axis=1)], proba, classes)
    base = dict(metric=m.name, candidate_version=outcome.version.version,
                candidate_score=float(cand), min_abs=min_abs, min_rel=min_rel)
    try:
        _, prod_mv, prod = load_pipeline(f"{outcome.model}@{PRODUCTION}")
    except WorkbenchError:
        return GateVerdict(True, "no production version yet: nothing to beat", **base)
    X = data.X.iloc[np.flatnonzero(covered)]
    try:
        from core.features.schema import align_to_schema

        Xp = align_to_schema(X, prod_mv.input_schema)
        if data.task == "regression":
            prod_score = m.score(y, prod.predict(Xp))
        else:
            p = prod.predict_proba(Xp)
            prod_score = m.score(y, np.asarray(prod.classes_)[np.argmax(p, axis=1)], p,
                                 list(prod.classes_))
    except WorkbenchError as exc:
        return GateVerdict(True, f"production cannot score the new data ({exc.message})",
                           production_version=prod_mv.version, **base)
    gain = m.oriented(cand) - m.oriented(prod_score)
    needed = max(min_abs, min_rel * abs(prod_score))
    passed = gain > needed if needed > 0 else gain > 0
    reason = (f"{m.name} {cand:.5g} vs production {prod_score:.5g}: "
              f"{'beats' if passed else 'does not beat'} it by the required "
              f"{needed:.3g} (gain {gain:.3g})")
    return GateVerdict(passed, reason, production_version=prod_mv.version,
                       production_score=float(prod_score), **base)


def after_training(job_id: int, outcome: RunOutcome) -> GateVerdict | None:
    """For scheduled or triggered retrains: run the gate, store the verdict, and start a
    canary when the schedule opted in and the gate passed."""
    with session_scope() as s:
        job = s.get(Job, job_id)
        schedule = s.get(Schedule, job.schedule_id) if job.schedule_id else None
    if job.trigger not in GATED_TRIGGERS:
        return None
    verdict = evaluate_gate(outcome, min_abs=schedule.gate_min_abs if schedule else 0.0,
                            min_rel=schedule.gate_min_rel if schedule else 0.0)
    action = "none"
    if verdict.passed and schedule is not None and schedule.auto_canary:
        action = _start_canary(outcome.model, outcome.version.version)
    with session_scope() as s:
        job = s.get(Job, job_id)
        job.gate = {**asdict(verdict), "action": action}
        s.add(job)
        record(s, "gate.passed" if verdict.passed else "gate.failed",
               f"model:{outcome.model}:{outcome.version.version}", actor="gate",
               reason=verdict.reason, outcome=action)
    log.info("promotion gate: %s", verdict.reason)
    return verdict


def _start_canary(model: str, version: int) -> str:
    """Hand the version to the deployment layer as a canary at its first rollout step."""
    try:
        from core.deploy import start_canary
    except ImportError:
        return "canary unavailable: the serving layer is not installed"
    start_canary(model, version, actor="gate")
    return f"canary started for {model}:{version}"


