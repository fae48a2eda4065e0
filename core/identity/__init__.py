"""Identity: principals, roles, users and API keys, sign-in tokens (issue 16).

Only the principal types are re-exported here (every layer above uses them); the users, keys
and tokens modules are imported where they are used, so a process that never signs anyone in
never loads argon2 or PyJWT."""

from core.identity.principal import (
    DEFAULT_WORKSPACE,
    Principal,
    PrincipalKind,
    Role,
    local_principal,
)

__all__ = ["DEFAULT_WORKSPACE", "Principal", "PrincipalKind", "Role", "local_principal"]
