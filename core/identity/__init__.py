"""Identity: principals, roles, users and API keys, sign-in tokens (issue 16).

Only the principal types are re-exported here (every layer above uses them); the users, keys,
tokens and directory modules are imported where they are used (argon2 only when a password is
hashed or checked)."""

from core.identity.principal import (
    DEFAULT_WORKSPACE,
    Principal,
    PrincipalKind,
    Role,
    local_principal,
)

__all__ = ["DEFAULT_WORKSPACE", "Principal", "PrincipalKind", "Role", "local_principal"]
