"""The append-only audit log: who did what, when, and why."""

from __future__ import annotations

import getpass
import os
from enum import StrEnum
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from core.store.scope import WORKSPACE_KEY
from core.store.tables import AuditEvent


class AuditAction(StrEnum):
    """Every action the log records, as stored (the strings never change: old rows keep
    meaning what they meant). A new `record(...)` call adds its action here first;
    tests/core/test_audit_log.py fails on a literal in core/ that is missing."""

    DATASET_CREATE = "dataset.create"
    DATASET_DELETE = "dataset.delete"
    MODEL_CREATE = "model.create"
    VERSION_REGISTER = "version.register"
    VERSION_STAGE = "version.stage"
    VERSION_ACCEPT_LIBRARIES = "version.accept_libraries"
    ALIAS_MOVE = "alias.move"
    ALIAS_REMOVE = "alias.remove"
    JOB_CREATE = "job.create"
    JOB_CANCEL = "job.cancel"
    JOB_PAUSE = "job.pause"
    JOB_RESUME = "job.resume"
    JOB_WORKER_LOST = "job.worker_lost"
    SCHEDULE_CREATE = "schedule.create"
    SCHEDULE_PAUSE = "schedule.pause"
    SCHEDULE_RESUME = "schedule.resume"
    SCHEDULE_DELETE = "schedule.delete"
    SCHEDULE_SKIPPED = "schedule.skipped"
    SCHEDULE_ERROR = "schedule.error"
    GATE_PASSED = "gate.passed"
    GATE_FAILED = "gate.failed"
    DEPLOYMENT_INITIAL = "deployment.initial"
    DEPLOYMENT_CANDIDATE = "deployment.candidate"
    DEPLOYMENT_PERCENT = "deployment.percent"
    DEPLOYMENT_PROMOTE = "deployment.promote"
    DEPLOYMENT_ROLLBACK = "deployment.rollback"
    DEPLOYMENT_RUNTIME = "deployment.runtime"  # the stable version's runtime changed
    MONITOR_CONFIG = "monitor.config"
    ALERT_OPEN = "alert.open"
    ALERT_ACK = "alert.ack"
    USER_ADD = "user.add"
    USER_REMOVE = "user.remove"
    USER_PASSWD = "user.passwd"
    USER_ROLE = "user.role"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    WORKSPACE_ADD = "workspace.add"
    VERSION_ONNX_EXPORT = "version.onnx_export"
    ARTIFACTS_ROTATE_KEY = "artifacts.rotate_key"  # a rotation started (its new key's id)
    ARTIFACT_ROTATE_KEY = "artifact.rotate_key"    # one artifact re-encrypted

    @property
    def family(self) -> str:
        """What kind of thing changed: the part before the dot ("deployment")."""
        return self.value.split(".", 1)[0]

    @property
    def label(self) -> str:
        """The action as a sentence fragment people read ("moved an alias")."""
        return ACTION_LABELS[self]


ACTION_LABELS: dict[AuditAction, str] = {
    AuditAction.DATASET_CREATE: "stored a dataset",
    AuditAction.DATASET_DELETE: "deleted a dataset",
    AuditAction.MODEL_CREATE: "created a model",
    AuditAction.VERSION_REGISTER: "registered a version",
    AuditAction.VERSION_STAGE: "moved a version's stage",
    AuditAction.VERSION_ACCEPT_LIBRARIES: "accepted a library difference",
    AuditAction.ALIAS_MOVE: "moved an alias",
    AuditAction.ALIAS_REMOVE: "removed an alias",
    AuditAction.JOB_CREATE: "queued a job",
    AuditAction.JOB_CANCEL: "asked a job to cancel",
    AuditAction.JOB_PAUSE: "asked a job to pause",
    AuditAction.JOB_RESUME: "asked a job to resume",
    AuditAction.JOB_WORKER_LOST: "failed a job whose worker was lost",
    AuditAction.SCHEDULE_CREATE: "added a schedule",
    AuditAction.SCHEDULE_PAUSE: "paused a schedule",
    AuditAction.SCHEDULE_RESUME: "resumed a schedule",
    AuditAction.SCHEDULE_DELETE: "deleted a schedule",
    AuditAction.SCHEDULE_SKIPPED: "skipped a due schedule",
    AuditAction.SCHEDULE_ERROR: "could not run a due schedule",
    AuditAction.GATE_PASSED: "passed the promotion gate",
    AuditAction.GATE_FAILED: "failed the promotion gate",
    AuditAction.DEPLOYMENT_INITIAL: "deployed a first version",
    AuditAction.DEPLOYMENT_CANDIDATE: "deployed a candidate",
    AuditAction.DEPLOYMENT_PERCENT: "changed the candidate's traffic",
    AuditAction.DEPLOYMENT_PROMOTE: "promoted the candidate",
    AuditAction.DEPLOYMENT_ROLLBACK: "rolled back",
    AuditAction.DEPLOYMENT_RUNTIME: "changed a deployed version's runtime",
    AuditAction.MONITOR_CONFIG: "changed monitoring settings",
    AuditAction.ALERT_OPEN: "opened an alert",
    AuditAction.ALERT_ACK: "acknowledged an alert",
    AuditAction.USER_ADD: "added a user",
    AuditAction.USER_REMOVE: "removed a user",
    AuditAction.USER_PASSWD: "changed a user's password",
    AuditAction.USER_ROLE: "changed a user's role",
    AuditAction.KEY_CREATE: "created an API key",
    AuditAction.KEY_REVOKE: "revoked an API key",
    AuditAction.WORKSPACE_ADD: "added a workspace",
    AuditAction.VERSION_ONNX_EXPORT: "exported a version to ONNX",
    AuditAction.ARTIFACTS_ROTATE_KEY: "started re-encrypting the artifacts under a new key",
    AuditAction.ARTIFACT_ROTATE_KEY: "re-encrypted an artifact under a new key",
}


def default_actor() -> str:
    """The OS user, unless the caller (API token holder, UI user) says otherwise."""
    try:
        return os.environ.get("WORKBENCH_ACTOR") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def record(
    session: Session,
    action: AuditAction | str,
    entity: str,
    *,
    actor: str | None = None,
    reason: str = "",
    workspace: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit row inside the caller's transaction, so it commits with the change itself.

    It lands in the session's workspace, or in `workspace` when the change concerns another
    one (the operator adding a user or key to `team-a` from a `default` session: the event is
    team-a's, read by team-a's auditors, never by default's viewers). Such a row is written
    with a Core INSERT, which the scoping's stamp check (core/store/scope.py) does not see:
    only these administration events may cross."""
    ev = AuditEvent(action=str(action), entity=entity, actor=actor or default_actor(),
                    reason=reason, detail=detail, workspace=workspace)
    scoped = session.info.get(WORKSPACE_KEY)
    if workspace is None or scoped is None or scoped == workspace:
        session.add(ev)
    else:
        session.execute(insert(AuditEvent.__table__).values(**ev.model_dump(exclude={"id"})))
    return ev
