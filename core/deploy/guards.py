"""Guard rails: judge a running candidate on its telemetry since its current step began."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.deploy.enums import DeploymentMode, GuardAction
from core.deploy.public import DeploymentState
from core.deploy.rails import effective_rails
from core.deploy.telemetry import Counter


@dataclass(frozen=True)
class Verdict:
    action: GuardAction
    reason: str
    percent: float | None = None
    metrics: dict[str, Any] | None = None


def judge(state: DeploymentState, stats: Counter) -> Verdict:
    """Roll back when the candidate's error rate or p99 crosses its rail over at least
    `min_requests`; with auto-advance on, step forward when it held over the step's window
    (and promote after the last step). Shadow candidates never serve, so they are only judged
    by people through the scorecard. Rails that are not valid (stored by an older release)
    raise InvalidRequestError naming the field; the caller's loop reports it per model."""
    if state.candidate is None or not DeploymentMode(state.mode).answers:
        return Verdict(GuardAction.HOLD, "no canary running")
    rails = effective_rails(state.guard_rails)
    summary = stats.summary()
    n = stats.scored  # requests the candidate scored: a caller's rejected records prove nothing
    if n < rails.min_requests:
        return Verdict(GuardAction.HOLD, f"{n} of {rails.min_requests} requests",
                       metrics=summary)
    rate = summary["error_rate"]
    if rate > rails.max_error_rate:
        return Verdict(GuardAction.ROLLBACK, f"candidate error rate {rate:.1%} over {n} "
                       f"requests exceeds {rails.max_error_rate:.1%}", metrics=summary)
    p99 = summary["latency_p99_ms"]
    if p99 is not None and p99 > rails.max_p99_ms:
        return Verdict(GuardAction.ROLLBACK, f"candidate p99 latency {p99:g} ms over {n} "
                       f"requests exceeds {rails.max_p99_ms:g} ms", metrics=summary)
    if not state.auto_advance:
        return Verdict(GuardAction.HOLD, "within guard rails", metrics=summary)
    later = [p for p in state.steps if p > state.percent]
    if later:
        return Verdict(GuardAction.ADVANCE, f"held over {n} requests at {state.percent:g} %",
                       percent=later[0], metrics=summary)
    return Verdict(GuardAction.PROMOTE, f"held over {n} requests at {state.percent:g} %",
                   metrics=summary)
