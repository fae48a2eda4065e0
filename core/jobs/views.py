"""What readers see of jobs (CLI, REST, pages) and their JSON views (CLI --json, REST).

Reading the job list reaps lost jobs first, so a job whose worker died shows FAILED (or
re-queued) once its heartbeat is older than the timeout, even when no worker is alive.
"""

from __future__ import annotations

from typing import Any

from core.jobs import ledger
from core.jobs.reaper import reap_lost_jobs
from core.store import Job, Schedule


def read_jobs(limit: int = 100, *, by: str = "reader") -> list[Job]:
    """The newest jobs, lost ones reaped first (cheap when none is lost)."""
    reap_lost_jobs(by=by)
    return ledger.list_jobs(limit=limit)


def read_job(job_id: int, *, by: str = "reader") -> Job:
    """One job, lost ones reaped first."""
    reap_lost_jobs(by=by)
    return ledger.get_job(job_id)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def job_doc(job: Job) -> dict[str, Any]:
    return {"id": job.id, "state": job.state, "kind": job.kind, "trigger": job.trigger,
            "model": job.model_name, "target": job.target, "task": job.task,
            "metric": job.metric, "settings": job.settings, "progress": job.progress,
            "trials": job.progress.get("trials_done"), "best": job.progress.get("best_score"),
            "version_id": job.version_id, "attempts": job.attempts,
            "cpu_seconds": round(job.cpu_seconds, 2),
            "peak_memory_mb": round(job.peak_memory_mb, 1),
            "cancel_requested": job.cancel_requested, "pause_requested": job.pause_requested,
            "gate": job.gate or None, "error": job.error, "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at)}


def schedule_doc(s: Schedule) -> dict[str, Any]:
    return {"id": s.id, "model": s.model_name, "cron": s.cron, "paused": s.paused,
            "auto_canary": s.auto_canary, "gate_min_abs": s.gate_min_abs,
            "gate_min_rel": s.gate_min_rel, "settings": s.settings,
            "next_run_at": _iso(s.next_run_at), "last_run_at": _iso(s.last_run_at)}
