"""The model registry: versions, aliases, lineage and verified artifacts.

Every function takes the caller's `session`. Readers never commit; `register_version` and
`accept_library_mismatch` commit their own unit of work; `move_alias`/`drop_alias` never commit
(they are steps of a use case: `core.usecases.aliases`, `core.deploy`)."""

from core.registry.aliases import alias_history, drop_alias, move_alias
from core.registry.names import PRODUCTION, check_alias_name, check_model_name, parse_ref
from core.registry.public import AliasEventPublic, LibraryMismatch, ModelPublic, VersionPublic
from core.registry.versions import (
    accept_library_mismatch,
    library_mismatch,
    list_models,
    list_versions,
    load_pipeline,
    register_version,
    resolve,
    version_by_id,
)

__all__ = ["PRODUCTION", "AliasEventPublic", "LibraryMismatch", "ModelPublic", "VersionPublic",
           "accept_library_mismatch", "alias_history", "check_alias_name", "check_model_name",
           "drop_alias", "library_mismatch", "list_models", "list_versions", "load_pipeline",
           "move_alias", "parse_ref", "register_version", "resolve", "version_by_id"]
