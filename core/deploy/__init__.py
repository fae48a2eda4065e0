"""Serving and deployments: the traffic rule per model, sticky routing, loaded-model cache,
batched telemetry, shadow scoring and guard rails. HTTP lives in app/api/."""

from core.deploy.deployments import (
    DeploymentState,
    deploy,
    get_state,
    promote,
    rollback,
    set_percent,
)
from core.deploy.router import bucket, route

__all__ = ["DeploymentState", "bucket", "deploy", "get_state", "promote", "rollback", "route",
           "set_percent"]
