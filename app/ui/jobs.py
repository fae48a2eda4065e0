"""Job views shared by the Train, Jobs, Leaderboard and Home pages (over `JobPublic`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlmodel import Session

from app.ui.labels import score_kind
from core.jobs.public import JobPublic
from core.jobs.states import JobState
from core.jobs.views import read_trials
from core.registry import version_by_id
from core.store import utcnow


def trials_frame(job_id: int, *, session: Session) -> pd.DataFrame:
    rows = [{"trial": t.number, "estimator": t.estimator, "score": t.cv_mean, "std": t.cv_std,
             "fit_time_s": t.fit_time_s, "predict_ms_per_1k": t.predict_ms_per_1k,
             "status": t.status, "reason": t.reason,
             "params": ", ".join(f"{k}={v}" for k, v in t.params.items())}
            for t in read_trials(job_id, session=session)]
    return pd.DataFrame(rows, columns=["trial", "estimator", "score", "std", "fit_time_s",
                                       "predict_ms_per_1k", "status", "reason", "params"])


def progress_text(job: JobPublic, *, session: Session) -> str:
    """State, trials, and the best single trial's CV score so far, named as such: the version a
    job registers may be an ensemble with its own (out-of-fold) score."""
    p = job.progress
    best = p.get("best_score")
    best_txt = f"{best:.4f}" if isinstance(best, float) else "–"
    text = (f"{job.state} · {p.get('trials_done', 0)} trials · best single trial "
            f"{p.get('metric', '')} {best_txt} (CV)")
    version, score, kind = registered_score(job, session=session)
    if version is not None and isinstance(score, float):
        what = "ensemble, out-of-fold" if kind == "oof" else "CV"
        text += f" · registered version {version}: {score:.4f} ({what})"
    return text


def elapsed_fraction(job: JobPublic) -> float:
    """Share of the time budget used (paused time included, as a user sees the clock); a
    completed job is done, 100 %, even when it finished before its budget ran out."""
    if job.state == JobState.COMPLETED:
        return 1.0
    if job.started_at is None:
        return 0.0
    end = job.finished_at or utcnow()
    used = (_utc(end) - _utc(job.started_at)).total_seconds()
    return max(0.0, min(1.0, used / job.budget_s))


def _utc(moment: datetime) -> datetime:
    """Stored datetimes come back naive from SQLite; all of ours are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def registered_score(job: JobPublic, *, session: Session
                     ) -> tuple[int | None, float | None, str | None]:
    """(version, stored score, score kind) of the version a job registered, as the registry
    holds them; (None, None, None) while nothing is registered."""
    if job.version_id is None:
        return None, None, None
    mv = version_by_id(job.version_id, session=session)
    if mv is None:
        return None, None, None
    return mv.version, mv.score, score_kind(mv.estimator)


def has_results(job: JobPublic) -> bool:
    """A search whose trials a user can look at: a completed one, or one cancelled (or
    stopped) after some trials finished; those trials stay in the ledger."""
    if job.state == JobState.COMPLETED:
        return True
    return job.state == JobState.CANCELLED and bool(job.progress.get("trials_done"))


def next_steps(job: JobPublic, version: int | None) -> None:
    """The clickable path on from a finished search: its Leaderboard, the version it
    registered, and Deployments (Data → Train → Leaderboard → Deploy)."""
    from app.ui.links import page_link

    page_link("pages/leaderboard.py", f"Compare the trials of job {job.id} on the Leaderboard",
              query_params={"job": str(job.id)}, icon=":material/leaderboard:")
    if version is None:
        return
    page_link("pages/version.py", f"Open {job.model} version {version}",
              query_params={"model": job.model, "version": str(version)},
              icon=":material/deployed_code:")
    page_link("pages/deployments.py", f"Deploy {job.model} version {version}",
              icon=":material/rocket_launch:")
