"""Storage: SQLModel tables, engine/session handling and migrations."""

from core.store.db import get_engine, reset_engines, session_scope
from core.store.tables import (
    Alias,
    AliasEvent,
    AuditEvent,
    Dataset,
    Deployment,
    Job,
    JobTransition,
    ModelVersion,
    RegisteredModel,
    Trial,
    utcnow,
)

__all__ = [
    "Alias", "AliasEvent", "AuditEvent", "Dataset", "Deployment", "Job", "JobTransition",
    "ModelVersion", "RegisteredModel", "Trial", "get_engine", "reset_engines", "session_scope",
    "utcnow",
]
