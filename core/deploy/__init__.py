"""Serving and deployments: the traffic rule per model, sticky routing, loaded-model cache,
batched telemetry, shadow scoring and guard rails. HTTP lives in app/api/.

The names below are loaded on first use (PEP 562), not when the package is imported: a light
submodule such as `core.deploy.rails` (the guard-rail defaults the CLI's help texts show)
must not pull in the registry, scikit-learn and pandas — the CLI module is imported by the
monitor-only process `workbench serve` starts, which then failed to stop on SIGTERM."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "deploy": "core.deploy.deployments", "get_state": "core.deploy.deployments",
    "promote": "core.deploy.deployments", "rollback": "core.deploy.deployments",
    "set_percent": "core.deploy.deployments",
    "DeploymentPublic": "core.deploy.public", "DeploymentState": "core.deploy.public",
    "bucket": "core.deploy.router", "route": "core.deploy.router",
    "DeploymentMode": "core.deploy.enums", "GuardAction": "core.deploy.enums",
    "GuardRails": "core.deploy.rails",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core.deploy' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
