"""The promotion gate: a retrained version must beat production on the same validation data
before anything else happens (like MLflow's MetricThreshold).

"Same validation data" has to exclude rows production was trained on, or production wins by
memory (a k-NN scores perfectly in-sample). So: when the new data is the data production was
trained on, both are judged by their cross-validated scores (same folds protocol); otherwise
both are scored on the new rows production never saw (the challenger by its out-of-fold
predictions, production by predicting them). Too few new rows fall back to the CV scores.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sqlmodel import Session

from core.data.datasets import get_dataset, load_frame
from core.deploy import deploy, get_state
from core.enums import Task
from core.errors import WorkbenchError
from core.features.schema import align_to_schema
from core.jobs import ledger
from core.jobs.ledger import writing
from core.jobs.schedules import get_schedule
from core.jobs.states import Trigger
from core.registry import PRODUCTION, load_pipeline
from core.store import Database, Job
from core.store.audit import record
from core.usecases.training import RunOutcome

log = logging.getLogger("workbench.gate")
MIN_NEW_ROWS = 30


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


def evaluate_gate(outcome: RunOutcome, *, session: Session, min_abs: float = 0.0,
                  min_rel: float = 0.0) -> GateVerdict:
    """The verdict on `outcome`'s version against production (reads only)."""
    data, best = outcome.result.data, outcome.result.best
    m = data.metric
    covered = best.cv.covered
    classes = data.problem.classes
    cand = best.score
    base = dict(metric=m.name, candidate_version=outcome.version.version,
                candidate_score=float(cand), min_abs=min_abs, min_rel=min_rel)
    try:
        _, prod_mv, prod = load_pipeline(f"{outcome.model}@{PRODUCTION}", session=session)
    except WorkbenchError:
        return GateVerdict(True, "no production version yet: nothing to beat", **base)
    unseen = _unseen_rows(session, outcome, prod_mv.dataset_id) & covered
    if unseen.sum() < MIN_NEW_ROWS:
        prod_score, basis = prod_mv.score, "cross-validated scores on the same data"
    else:
        basis = f"{int(unseen.sum())} rows production never saw"
        y_new = data.y.to_numpy()[unseen]
        try:
            Xp = align_to_schema(data.X.iloc[np.flatnonzero(unseen)], prod_mv.input_schema)
        except WorkbenchError as exc:
            return GateVerdict(True, f"production cannot score the new data ({exc.message})",
                               production_version=prod_mv.version, **base)
        if data.task == Task.REGRESSION:
            prod_score = m.score(y_new, prod.predict(Xp))
            cand = m.score(y_new, best.cv.oof_pred[unseen].astype(float))
        else:
            p = prod.predict_proba(Xp)
            prod_score = m.score(y_new, np.asarray(prod.classes_)[np.argmax(p, axis=1)], p,
                                 list(prod.classes_))
            q = best.cv.oof_proba[unseen]
            cand = m.score(y_new, np.asarray(classes)[np.argmax(q, axis=1)], q, classes)
        base["candidate_score"] = float(cand)
    gain = m.oriented(cand) - m.oriented(prod_score)
    needed = max(min_abs, min_rel * abs(prod_score))
    passed = gain > needed if needed > 0 else gain > 0
    reason = (f"{m.name} {cand:.5g} vs production {prod_score:.5g} ({basis}): "
              f"{'beats' if passed else 'does not beat'} it by the required "
              f"{needed:.3g} (gain {gain:.3g})")
    return GateVerdict(passed, reason, production_version=prod_mv.version,
                       production_score=float(prod_score), **base)


def _unseen_rows(session: Session, outcome: RunOutcome,
                 prod_dataset_id: int | None) -> np.ndarray:
    """Rows of the new training data that were not in production's training data."""
    n = len(outcome.result.data.y)
    if prod_dataset_id is None:
        return np.ones(n, dtype=bool)
    if prod_dataset_id == outcome.dataset.id:
        return np.zeros(n, dtype=bool)
    new = load_frame(outcome.dataset)
    old = load_frame(get_dataset(prod_dataset_id, session=session))
    common = [c for c in new.columns if c in old.columns]
    seen = set(pd.util.hash_pandas_object(old[common].astype(str), index=False))
    hashes = pd.util.hash_pandas_object(new[common].astype(str), index=False).to_numpy()
    mask = np.array([h not in seen for h in hashes])
    target = outcome.result.data.y
    return mask[new[target.name].notna().to_numpy()] if len(mask) != n else mask


def after_training(db: Database, job_id: int, outcome: RunOutcome) -> GateVerdict | None:
    """For scheduled or triggered retrains: run the gate, store the verdict, and start a
    canary when the schedule opted in and the gate passed."""
    with db.session() as s:
        job = ledger.get_job(job_id, session=s)
        schedule = get_schedule(job.schedule_id, session=s) if job.schedule_id else None
        if not Trigger(job.trigger).is_gated:
            return None
        verdict = evaluate_gate(outcome, session=s,
                                min_abs=schedule.gate_min_abs if schedule else 0.0,
                                min_rel=schedule.gate_min_rel if schedule else 0.0)
    action = "none"
    if verdict.passed and schedule is not None and schedule.auto_canary:
        with db.session() as s:
            action = _start_canary(outcome.model, outcome.version.version, session=s)
    with db.session() as s, writing(s):
        row = s.get(Job, job_id, populate_existing=True)
        row.gate = {**asdict(verdict), "action": action}
        s.add(row)
        record(s, "gate.passed" if verdict.passed else "gate.failed",
               f"model:{outcome.model}:{outcome.version.version}", actor="gate",
               reason=verdict.reason, outcome=action)
    log.info("promotion gate: %s", verdict.reason)
    return verdict


def _start_canary(model: str, version: int, *, session: Session) -> str:
    """Hand the version to the deployment layer as a canary at its first rollout step."""
    first_step = get_state(model, session=session).steps[0]
    deploy(model, version, percent=first_step, session=session, actor="gate",
           reason="passed the promotion gate")
    return f"canary started for {model}:{version} at {first_step:g}%"
