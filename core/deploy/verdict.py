"""The A/B verdict of a running candidate: on the labelled feedback since it became the
candidate, is it better than stable, and by how much (a 95 % confidence interval on the
difference candidate − stable of the scorecard's measure)?

Methods (closed form, so the same data always gives the same answer; no resampling):
- canary, classification: each version answered its own requests, so two independent
  proportions: Newcombe's hybrid score interval (1998, method 10) built from the two Wilson
  intervals of the accuracies.
- shadow, classification: both versions scored the same requests, so paired proportions:
  Newcombe's paired interval (1998, method 10): the Wilson intervals of both accuracies
  combined with the correlation (phi) of their hits.
- canary, regression: the mean absolute errors of two independent samples: Welch's t
  interval (Welch–Satterthwaite degrees of freedom).
- shadow, regression: the per-record difference of absolute errors: a paired t interval.

The unit is one labelled record (a request that scored three records counts three times).
The rule for "enough labels": at least `MIN_LABELS` labelled records per version (a canary)
or labelled paired records (a shadow) since the candidate was deployed; below it the verdict
says how many more are needed and gives no winner, whatever the interval says. A version is
called better only when the whole interval lies on its side of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from scipy import stats
from sqlmodel import Session, select

from core.deploy.deployments import get_state
from core.deploy.enums import DeploymentMode, VerdictOutcome
from core.enums import Task
from core.public import IsoDatetime
from core.store import AuditEvent, PredictionLog

CONFIDENCE = 0.95
MIN_LABELS = 30  # labelled records per version (canary) or pairs (shadow) before a verdict

Interval = tuple[float, float, float]  # difference, low, high


class Verdict(BaseModel):
    """Stable against its current candidate on the labelled predictions since the candidate
    was deployed (`since`). `difference`, `low` and `high` are candidate − stable of
    `measure` (accuracy: higher is better; mae: lower is better); they are null until both
    sides have a labelled record. `needed` is how many more labelled records the rule asks
    for (0 once it is met); `better` is the better version, null unless the interval
    excludes 0. `message` is the one-sentence verdict the CLI and the page print."""

    outcome: VerdictOutcome
    message: str
    better: int | None
    stable: int
    candidate: int
    mode: DeploymentMode
    measure: str
    higher_is_better: bool
    since: IsoDatetime | None
    stable_labelled: int
    candidate_labelled: int
    stable_value: float | None
    candidate_value: float | None
    difference: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    min_labels: int
    needed: int


# -- intervals (pure) -------------------------------------------------------------------------
def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(hits: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion hits/n (n > 0)."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_independent(hits1: int, n1: int, hits2: int, n2: int,
                         confidence: float = CONFIDENCE) -> Interval:
    """p1 − p2 of two independent proportions: Newcombe's hybrid score interval."""
    z = _z(confidence)
    p1, p2 = hits1 / n1, hits2 / n2
    l1, u1 = wilson(hits1, n1, z)
    l2, u2 = wilson(hits2, n2, z)
    d = p1 - p2
    return (d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def newcombe_paired(both: int, only1: int, only2: int, neither: int,
                    confidence: float = CONFIDENCE) -> Interval:
    """p1 − p2 of two proportions on the same n cases, from the 2×2 table (both hit, only
    the first, only the second, neither): Newcombe's paired score interval."""
    n = both + only1 + only2 + neither
    z = _z(confidence)
    h1, h2 = both + only1, both + only2
    p1, p2 = h1 / n, h2 / n
    l1, u1 = wilson(h1, n, z)
    l2, u2 = wilson(h2, n, z)
    margins = (h1, n - h1, h2, n - h2)
    phi = 0.0 if 0 in margins else (
        (both * neither - only1 * only2) / math.sqrt(math.prod(margins)))
    d = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                          + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                        + (p2 - l2) ** 2))
    return d, max(-1.0, d - delta), min(1.0, d + eps)


def _t(df: float, confidence: float) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def welch(x1: Sequence[float], x2: Sequence[float], confidence: float = CONFIDENCE
          ) -> Interval:
    """mean(x1) − mean(x2) of two independent samples (each of 2 or more): Welch's t."""
    n1, n2 = len(x1), len(x2)
    m1, m2 = math.fsum(x1) / n1, math.fsum(x2) / n2
    v1 = math.fsum((v - m1) ** 2 for v in x1) / (n1 - 1) / n1
    v2 = math.fsum((v - m2) ** 2 for v in x2) / (n2 - 1) / n2
    d, se = m1 - m2, math.sqrt(v1 + v2)
    if se == 0:
        return d, d, d
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    half = _t(df, confidence) * se
    return d, d - half, d + half


def paired_t(diffs: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean of per-case differences (2 or more): the paired t interval."""
    n = len(diffs)
    d = math.fsum(diffs) / n
    se = math.sqrt(math.fsum((v - d) ** 2 for v in diffs) / (n - 1) / n)
    half = _t(n - 1, confidence) * se if se else 0.0
    return d, d - half, d + half


# -- the verdict (pure) -----------------------------------------------------------------------
METHODS = {
    (DeploymentMode.CANARY, True): "Newcombe hybrid score interval (independent proportions)",
    (DeploymentMode.SHADOW, True): "Newcombe paired score interval (same requests)",
    (DeploymentMode.CANARY, False): "Welch t interval (independent samples)",
    (DeploymentMode.SHADOW, False): "paired t interval (same requests)",
}


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _interval(classification: bool, mode: DeploymentMode, stable: Sequence[float],
              candidate: Sequence[float]) -> Interval | None:
    """candidate − stable, or None while a side has too few values for the method."""
    if mode is DeploymentMode.SHADOW:
        if len(stable) < (1 if classification else 2):
            return None
        if classification:
            pairs = list(zip(candidate, stable, strict=True))
            return newcombe_paired(sum(1 for c, s in pairs if c and s),
                                   sum(1 for c, s in pairs if c and not s),
                                   sum(1 for c, s in pairs if s and not c),
                                   sum(1 for c, s in pairs if not c and not s))
        return paired_t([c - s for c, s in zip(candidate, stable, strict=True)])
    if min(len(stable), len(candidate)) < (1 if classification else 2):
        return None
    if classification:
        return newcombe_independent(int(sum(candidate)), len(candidate), int(sum(stable)),
                                    len(stable))
    return welch(candidate, stable)


def _fmt(measure: str, value: float, signed: bool = False) -> str:
    if measure == "accuracy":
        return f"{value * 100:+.1f} pts" if signed else f"{value:.1%}"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def judge(*, stable: int, candidate: int, mode: DeploymentMode, task: str,
          stable_scores: Sequence[float], candidate_scores: Sequence[float],
          since: datetime | None = None, min_labels: int = MIN_LABELS) -> Verdict:
    """The verdict from per-record scores (hit 1/0 for classification, absolute error for
    regression); in shadow mode the two sequences are paired, record by record."""
    mode = DeploymentMode(mode)
    classification = Task(task).is_classification
    measure = "accuracy" if classification else "mae"
    higher = classification
    interval = _interval(classification, mode, stable_scores, candidate_scores)
    d, low, high = interval if interval else (None, None, None)
    if mode is DeploymentMode.SHADOW:
        needed = max(0, min_labels - len(stable_scores))
        rule = f"at least {min_labels} labelled requests scored by both versions"
    else:
        needed = (max(0, min_labels - len(stable_scores))
                  + max(0, min_labels - len(candidate_scores)))
        rule = f"at least {min_labels} labelled predictions per version"
    better: int | None = None
    pct = f"{CONFIDENCE:.0%}"
    if needed or interval is None:
        outcome = VerdictOutcome.NEEDS_LABELS
        message = (f"Not enough labels yet: {needed} more needed ({rule}, since version "
                   f"{candidate} became the candidate).")
    else:
        span = f"[{_fmt(measure, low, True)}, {_fmt(measure, high, True)}]"
        diff = (f"{measure} {_fmt(measure, _mean(candidate_scores))} (candidate) vs "
                f"{_fmt(measure, _mean(stable_scores))} (stable), difference "
                f"{_fmt(measure, d, True)}, {pct} interval {span}")
        if low > 0 or high < 0:
            cand_wins = (low > 0) == higher
            outcome = VerdictOutcome.CANDIDATE if cand_wins else VerdictOutcome.STABLE
            better = candidate if cand_wins else stable
            role = "candidate" if cand_wins else "stable"
            message = f"Version {better} ({role}) is better: {diff}."
        else:
            outcome = VerdictOutcome.UNDECIDED
            message = (f"No clear winner yet: {diff} covers 0. Four times the labels "
                       "halve the interval's width.")
    return Verdict(
        outcome=outcome, message=message, better=better, stable=stable, candidate=candidate,
        mode=mode, measure=measure, higher_is_better=higher, since=since,
        stable_labelled=len(stable_scores), candidate_labelled=len(candidate_scores),
        stable_value=_mean(stable_scores), candidate_value=_mean(candidate_scores),
        difference=d, low=low, high=high, confidence=CONFIDENCE,
        method=METHODS[(mode, classification)], min_labels=min_labels, needed=needed)


# -- from the prediction log ------------------------------------------------------------------
def _score(classification: bool, pred: Any, actual: Any) -> float | None:
    """1/0 for a hit, or the absolute error; None when the pair cannot be scored."""
    if classification:
        return float(str(pred) == str(actual))
    try:
        err = abs(float(pred) - float(actual))
    except (TypeError, ValueError):
        return None
    return err if math.isfinite(err) else None


def candidate_since(name: str, candidate: int, *, session: Session) -> datetime | None:
    """When `candidate` last became the candidate (its latest `deployment.candidate`
    event): the verdict counts labelled predictions from then on."""
    events = session.exec(select(AuditEvent).where(
        AuditEvent.entity == f"model:{name}", AuditEvent.action == "deployment.candidate")
        .order_by(AuditEvent.id.desc())).all()
    return next((e.at for e in events if (e.detail or {}).get("version") == candidate), None)


def verdict(name: str, task: str, *, session: Session,
            min_labels: int = MIN_LABELS) -> Verdict | None:
    """The verdict of `name`'s current candidate against stable, or None without one."""
    state = get_state(name, session=session)
    if state.candidate is None or state.stable is None:
        return None
    classification = Task(task).is_classification
    since = candidate_since(name, state.candidate, session=session)
    query = select(PredictionLog).where(PredictionLog.model_name == name,
                                        PredictionLog.actual.is_not(None))
    if since is not None:
        query = query.where(PredictionLog.created_at >= since)
    stable_scores: list[float] = []
    candidate_scores: list[float] = []
    if state.mode == DeploymentMode.SHADOW:
        query = query.where(PredictionLog.version == state.stable,
                            PredictionLog.shadow_version == state.candidate,
                            PredictionLog.shadow_predictions.is_not(None))
    else:
        query = query.where(PredictionLog.version.in_([state.stable, state.candidate]))
    for row in session.exec(query.order_by(PredictionLog.id)).all():
        for i, actual in enumerate(row.actual or []):
            if i >= len(row.predictions):
                break
            mine = _score(classification, row.predictions[i], actual)
            if state.mode == DeploymentMode.SHADOW:
                shadow = row.shadow_predictions or []
                theirs = _score(classification, shadow[i], actual) if i < len(shadow) \
                    else None
                if mine is not None and theirs is not None:
                    stable_scores.append(mine)
                    candidate_scores.append(theirs)
            elif mine is not None:
                (stable_scores if row.version == state.stable else candidate_scores).append(mine)
    return judge(stable=state.stable, candidate=state.candidate, mode=state.mode, task=task,
                 stable_scores=stable_scores, candidate_scores=candidate_scores, since=since,
                 min_labels=min_labels)


__all__ = ["CONFIDENCE", "MIN_LABELS", "Verdict", "judge", "newcombe_independent",
           "newcombe_paired", "paired_t", "verdict", "welch", "wilson"]
