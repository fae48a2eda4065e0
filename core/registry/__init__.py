"""The model registry: versions, aliases, lineage and verified artifacts."""

from core.registry.versions import (
    PRODUCTION,
    alias_history,
    list_models,
    list_versions,
    load_pipeline,
    parse_ref,
    register_version,
    remove_alias,
    resolve,
    set_alias,
)

__all__ = ["PRODUCTION", "alias_history", "list_models", "list_versions", "load_pipeline",
           "parse_ref", "register_version", "remove_alias", "resolve", "set_alias"]
