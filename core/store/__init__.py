"""Storage: SQLModel tables, engine/session handling and migrations."""

from core.store.db import (
    Database,
    exclusive,
    get_engine,
    lock_for_write,
    reset_engines,
    session_scope,
)
from core.store.tables import (
    Alert,
    Alias,
    AliasEvent,
    AuditEvent,
    Dataset,
    Deployment,
    Job,
    JobTransition,
    ModelVersion,
    MonitorConfig,
    PredictionLog,
    RegisteredModel,
    RequestInput,
    RequestSample,
    Schedule,
    ServingStat,
    Trial,
    Worker,
    utcnow,
)

__all__ = [
    "Alert", "Alias", "AliasEvent", "AuditEvent", "Database", "Dataset", "Deployment", "Job",
    "JobTransition", "ModelVersion", "MonitorConfig", "PredictionLog", "RegisteredModel",
    "RequestInput", "RequestSample",
    "Schedule", "ServingStat", "Trial", "Worker", "exclusive", "get_engine", "lock_for_write",
    "reset_engines",
    "session_scope", "utcnow",
]
