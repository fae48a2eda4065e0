"""Storage: SQLModel tables, engine/session handling and migrations."""

from core.store.db import Database, lock_for_write
from core.store.identity import ApiKey, User  # the identity tables (core.identity)
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
from core.store.tracking import (  # the tracking tables (core.tracking)
    Experiment,
    Run,
    RunLatestMetric,
    RunMetric,
    RunParam,
    RunTag,
)

__all__ = [
    "Alert", "Alias", "AliasEvent", "AuditEvent", "Database", "Dataset", "Deployment", "Job",
    "JobTransition", "ModelVersion", "MonitorConfig", "PredictionLog", "RegisteredModel",
    "RequestInput", "RequestSample",
    "Schedule", "ServingStat", "Trial", "Worker", "lock_for_write", "utcnow",
    "Experiment", "Run", "RunLatestMetric", "RunMetric", "RunParam", "RunTag",
    "ApiKey", "User",
]
