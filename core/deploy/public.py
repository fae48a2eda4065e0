"""The shapes a deployment has outside core: `GET/POST /v1/deployments/{name}` (and the
promote/rollback answers), the CLI's `deploy|promote|rollback --json`, the Deployments page.

`DeploymentState` is also what core itself passes around (the serving runtime reads it every
`state_refresh_s`); `DeploymentPublic` adds what the API shows beside it: live figures per
role and the latest history. The JSON is what it always was (ARCHITECTURE.md Part 1):
timestamps as `datetime.isoformat()` text, `mode` as its string.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.deploy.enums import DeploymentMode
from core.deploy.rails import DEFAULT_GUARD_RAILS, DEFAULT_STEPS
from core.public import IsoDatetime


class DeploymentState(BaseModel):
    """The traffic rule of one model: stable (= the production alias), at most one
    candidate with its share, mode, rollout steps and guard rails. `guard_rails` is what is
    stored over the defaults, unchecked: rails an older release stored may not be valid, and
    the guard judge reports those instead of guessing."""

    model_config = ConfigDict(validate_assignment=False)

    name: str
    stable: int | None = None
    candidate: int | None = None
    percent: float = 0.0
    mode: DeploymentMode = DeploymentMode.CANARY
    steps: list[float] = Field(default_factory=lambda: list(DEFAULT_STEPS))
    guard_rails: dict[str, Any] = Field(default_factory=DEFAULT_GUARD_RAILS.as_dict)
    auto_advance: bool = False
    step_started_at: IsoDatetime | None = None
    revision: int = 0
    updated_at: IsoDatetime | None = None
    # what answers each version ("3": "onnx" | "python" | "auto"); a version not named: auto
    runtimes: dict[str, str] = Field(default_factory=dict)

    def runtime_of(self, version: int) -> str:
        return self.runtimes.get(str(version), "auto")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (for callers that embed it in a larger untyped one)."""
        return self.model_dump(mode="json")


class VersionLive(BaseModel):
    """One role's (stable or candidate) flushed telemetry: the candidate's since its current
    step began, stable's in total."""

    version: int
    requests: int
    ok: int
    failed: int
    rejected: int
    errors: int
    error_rate: float
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    predictions: dict[str, int | float]
    load_error: str | None = None


class DeploymentEvent(BaseModel):
    """One change of the deployment (audit log), newest first in a history."""

    action: str
    at: IsoDatetime
    actor: str
    reason: str
    detail: dict[str, Any]


class DeploymentPublic(DeploymentState):
    """`GET /v1/deployments/{name}`: the rule, live figures per role, the last changes."""

    live: dict[str, VersionLive] = Field(default_factory=dict)
    history: list[DeploymentEvent] = Field(default_factory=list)


class VersionShare(BaseModel):
    """One version's requests in a recent window and its share of them; `role` is its place
    in the current rule (stable, candidate, or not in the rule: served before a change)."""

    version: int
    role: str
    requests: int
    share: float
    ok: int
    failed: int
    rejected: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class TrafficSplit(BaseModel):
    """Where requests went from `since` to `until`: the last `recent_minutes`, or since the
    deployment's last `change` if that is later: the audit action without its `deployment.`
    prefix (initial, candidate, percent, promote, rollback)."""

    model: str
    since: IsoDatetime
    until: IsoDatetime
    change: str | None
    recent_minutes: float
    percent: float
    versions: list[VersionShare]


__all__ = ["DeploymentEvent", "DeploymentPublic", "DeploymentState", "TrafficSplit",
           "VersionLive", "VersionShare"]
