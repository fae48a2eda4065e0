"""Where traffic went lately, per version: the Deployments page's "live traffic".

Counting since a fixed moment an hour back mixed rules: after a rollback the old candidate's
requests were still in the split for the rest of the hour. The split is taken over a recent
window instead, and that window starts no earlier than the deployment's last change (deploy,
rollout step, promote, rollback), so what it shows is the current rule at work; the answer
says which window it used.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from core.deploy.deployments import get_state, history
from core.deploy.public import TrafficSplit, VersionShare
from core.deploy.telemetry import Counter
from core.store import ServingStat, utcnow

RECENT = timedelta(minutes=15)


def _aware(moment: datetime) -> datetime:
    """Stored datetimes come back naive from SQLite; all of ours are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def traffic_split(name: str, now: datetime | None = None, recent: timedelta = RECENT, *,
                  session: Session) -> TrafficSplit:
    """Requests per version since the later of `now - recent` and the deployment's last
    change, with each version's role in the current rule and its share of the requests."""
    now = _aware(now or utcnow())
    state = get_state(name, session=session)
    since, change = now - recent, None
    if state.updated_at is not None and _aware(state.updated_at) > since:
        since = _aware(state.updated_at)
        change = next((e.action.removeprefix("deployment.") for e in
                       history(name, session=session, limit=1)), "change")
    rows = session.exec(select(ServingStat).where(ServingStat.model_name == name,
                                                  ServingStat.at >= since,
                                                  ServingStat.at <= now)).all()
    counters: dict[int, Counter] = {}
    for row in rows:
        counters.setdefault(row.version, Counter()).merge(Counter.of_row(row))
    total = sum(c.count for c in counters.values())
    shares = []
    for version in sorted(counters):
        c = counters[version]
        doc = c.summary()
        role = ("stable" if version == state.stable else
                "candidate" if version == state.candidate else "not in the rule")
        shares.append(VersionShare(
            version=version, role=role, share=c.count / total if total else 0.0,
            **{k: doc[k] for k in ("requests", "ok", "failed", "rejected", "error_rate",
                                   "latency_p50_ms", "latency_p99_ms")}))
    return TrafficSplit(model=name, since=since, until=now, change=change,
                        recent_minutes=recent.total_seconds() / 60,
                        percent=state.percent if state.candidate else 0.0, versions=shares)


__all__ = ["RECENT", "traffic_split"]
