"""The closed sets of deployments and alerts (the guard-rail defaults are in
`core.deploy.rails`).

Members are `StrEnum`s: they compare equal to, and are stored as, the same strings as before
(a `mode` of "canary" read back from the database equals `DeploymentMode.CANARY`), so no
stored value changed.

The alert vocabulary lives here, not in `core.monitor`, because the guard rails (in
`core.deploy`, below the monitor) raise `GUARD` alerts themselves: both packages must be able
to read it, and a package only imports downward.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from core.errors import ConflictError

if TYPE_CHECKING:  # a type only: this module stays light (the CLI imports it at start-up)
    from core.store import Alert


class DeploymentMode(StrEnum):
    """How a candidate takes its share: a canary answers it, a shadow only scores a copy."""

    CANARY = "canary"
    SHADOW = "shadow"

    @property
    def answers(self) -> bool:
        """The candidate's answers reach callers (so guard rails judge it automatically);
        a shadow's never do and only people judge it, through the scorecard."""
        return self is DeploymentMode.CANARY


class Runtime(StrEnum):
    """What answers a deployed version's requests: `python` (the lean path, else the
    scikit-learn pipeline), `onnx` (onnxruntime on the version's ONNX graph, which must have
    passed its parity check) or `auto` (the faster of the two on 1- and 100-row probes,
    measured at load; python unless parity passed)."""

    AUTO = "auto"
    PYTHON = "python"
    ONNX = "onnx"


class GuardAction(StrEnum):
    """What the guard rails decide about a running canary."""

    HOLD = "hold"          # not enough requests yet, or within the rails without auto-advance
    ROLLBACK = "rollback"  # a rail was crossed
    ADVANCE = "advance"    # held over the step: next rollout step
    PROMOTE = "promote"    # held over the last step


class VerdictOutcome(StrEnum):
    """What the scorecard's A/B verdict says about stable against its candidate
    (`core.deploy.verdict`)."""

    CANDIDATE = "candidate"        # the candidate is better: the interval excludes 0
    STABLE = "stable"              # stable is better: the interval excludes 0
    UNDECIDED = "undecided"        # enough labels, but the interval covers 0
    NEEDS_LABELS = "needs_labels"  # fewer labelled predictions than the rule asks for


# -- alerts ---------------------------------------------------------------------------------
class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


class AlertKind(StrEnum):
    """What an alert is about. The first four are judged per window by the monitor; GUARD
    is raised by the guard loop when it cannot judge a canary at all."""

    DRIFT = "DRIFT"
    PERFORMANCE = "PERFORMANCE"
    ERROR = "ERROR"
    LATENCY = "LATENCY"
    GUARD = "GUARD"

    @property
    def severity(self) -> Severity:
        return _SEVERITY[self]

    @property
    def windowed(self) -> bool:
        """Opened and resolved by the monitor's window checks (GUARD is not: the guard loop
        opens and resolves it, so the monitor neither resolves it nor acts on it)."""
        return self is not AlertKind.GUARD

    @property
    def retrains(self) -> bool:
        """A retrain can fix it (the data or the world moved), so `retrain_on_alert` acts."""
        return self in (AlertKind.DRIFT, AlertKind.PERFORMANCE)


_SEVERITY = {AlertKind.ERROR: Severity.CRITICAL, AlertKind.LATENCY: Severity.WARNING,
             AlertKind.PERFORMANCE: Severity.CRITICAL, AlertKind.DRIFT: Severity.WARNING,
             AlertKind.GUARD: Severity.CRITICAL}


class AlertState(StrEnum):
    """Lifecycle of one alert key: pending (bad, fewer than N windows) → open (N windows:
    actions and webhook fire once) → acknowledged (quiet while the condition holds) →
    resolved when it clears. A recurrence after that is a new alert."""

    PENDING = "pending"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def is_resolved(self) -> bool:
        return self is AlertState.RESOLVED

    def can_become(self, to: AlertState) -> bool:
        return to in ALERT_TRANSITIONS[self]


ALERT_TRANSITIONS: dict[AlertState, frozenset[AlertState]] = {
    AlertState.PENDING: frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED,
                                   AlertState.RESOLVED}),
    AlertState.OPEN: frozenset({AlertState.ACKNOWLEDGED, AlertState.RESOLVED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset(),
}


def move_alert(alert: Alert, to: AlertState, now: datetime, *, by: str | None = None) -> None:
    """Apply one transition of the state table to an alert row (with its timestamp), or
    raise ConflictError naming both states: the one place alert states change."""
    current = AlertState(alert.state)
    if not current.can_become(to):
        raise ConflictError(f"Alert {alert.id} is {current}; it cannot become {to}.")
    alert.state = to
    if to is AlertState.OPEN:
        alert.opened_at = now
    elif to is AlertState.ACKNOWLEDGED:
        alert.acknowledged_at, alert.acknowledged_by = now, by or "unknown"
    elif to is AlertState.RESOLVED:
        alert.resolved_at = now


UNRESOLVED: tuple[AlertState, ...] = tuple(s for s in AlertState if not s.is_resolved)
LISTED: tuple[AlertState, ...] = (AlertState.OPEN, AlertState.ACKNOWLEDGED)  # what lists show

__all__ = ["ALERT_TRANSITIONS", "LISTED", "UNRESOLVED", "AlertKind", "AlertState",
           "DeploymentMode", "GuardAction", "Severity", "VerdictOutcome", "move_alert"]
