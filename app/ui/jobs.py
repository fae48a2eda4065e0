"""Job views shared by the Train and Jobs pages."""

from __future__ import annotations

import pandas as pd

from core.jobs.ledger import trials_of
from core.store import Job


def trials_frame(job_id: int) -> pd.DataFrame:
    rows = [{"trial": t.number, "estimator": t.estimator, "score": t.cv_mean, "std": t.cv_std,
             "fit_time_s": t.fit_time_s, "predict_ms_per_1k": t.predict_ms_per_1k,
             "status": t.status, "reason": t.reason,
             "params": ", ".join(f"{k}={v}" for k, v in t.params.items())}
            for t in trials_of(job_id)]
    return pd.DataFrame(rows, columns=["trial", "estimator", "score", "std", "fit_time_s",
                                       "predict_ms_per_1k", "status", "reason", "params"])


def progress_text(job: Job) -> str:
    """State, trials, and the best single trial's CV score so far, named as such: the version a
    job registers may be an ensemble with its own (out-of-fold) score."""
    p = job.progress
    best = p.get("best_score")
    best_txt = f"{best:.4f}" if isinstance(best, float) else "–"
    text = (f"{job.state} · {p.get('trials_done', 0)} trials · best single trial "
            f"{p.get('metric', '')} {best_txt} (CV)")
    version, score, kind = registered_score(job)
    if version is not None and isinstance(score, float):
        what = "ensemble, out-of-fold" if kind == "oof" else "CV"
        text += f" · registered version {version}: {score:.4f} ({what})"
    return text


def elapsed_fraction(job: Job) -> float:
    """Share of the time budget used (paused time included, as a user sees the clock)."""
    from core.store import utcnow

    if job.started_at is None:
        return 0.0
    budget = float(job.settings.get("budget") or 60.0)
    end = job.finished_at or utcnow()
    return max(0.0, min(1.0, (end - job.started_at).total_seconds() / budget))


def registered_score(job: Job) -> tuple[int | None, float | None, str | None]:
    """(version, stored score, score kind) of the version a job registered, as the registry
    holds them; (None, None, None) while nothing is registered."""
    from app.ui.labels import score_kind
    from core.store import ModelVersion, session_scope

    if job.version_id is None:
        return None, None, None
    with session_scope() as s:
        mv = s.get(ModelVersion, job.version_id)
        if mv is None:
            return None, None, None
        return mv.version, mv.score, score_kind(mv.estimator)


def registered_version(job: Job) -> int | None:
    """The version number a completed job registered."""
    from core.store import ModelVersion, session_scope

    if job.version_id is None:
        return None
    with session_scope() as s:
        mv = s.get(ModelVersion, job.version_id)
        return mv.version if mv else None
