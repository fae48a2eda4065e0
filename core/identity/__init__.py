"""Identity: principals, roles, users and API keys, sign-in tokens (issue 16)."""

from core.identity.principal import (
    DEFAULT_WORKSPACE,
    Principal,
    PrincipalKind,
    Role,
    local_principal,
)

__all__ = ["DEFAULT_WORKSPACE", "Principal", "PrincipalKind", "Role", "local_principal"]
