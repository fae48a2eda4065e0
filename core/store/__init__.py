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
    PredictionLog,
    RegisteredModel,
    Schedule,
    ServingStat,
    Trial,
    Worker,
    utcnow,
)

__all__ = [
    "Alias", "AliasEvent", "AuditEvent", "Dataset", "Deployment", "Job", "JobTransition",
    "ModelVersion", "PredictionLog", "RegisteredModel", "Schedule", "ServingStat", "Trial", "Worker", "get_engine",
    "reset_engines", "session_scope", "utcnow",
]
