"""Who is calling: the one object every entry point resolves before it touches the store.

The API resolves it from the bearer token (a user's JWT, an API key, or WORKBENCH_API_TOKEN),
the app from its sign-in, the CLI from the machine's operator. Everything downstream takes the
workspace to scope its session by, the role to check, and the actor to write into the audit
log from this object, instead of reading headers or environment variables itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from core.store.audit import default_actor

DEFAULT_WORKSPACE = "default"


class Role(StrEnum):
    """The contract's three roles, each allowed everything the one before it is."""

    VIEWER = "viewer"  # reads everything in its workspace and predicts
    EDITOR = "editor"  # also uploads, trains, deploys, promotes, rolls back, acknowledges
    ADMIN = "admin"    # also manages users, keys and workspace settings

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class PrincipalKind(StrEnum):
    USER = "user"     # signed in with a password (a JWT)
    KEY = "key"       # an API key made with `workbench keys create`
    TOKEN = "token"   # WORKBENCH_API_TOKEN, an admin key for scripts
    LOCAL = "local"   # single-user mode: the machine's operator, no sign-in configured


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str          # the user or key name, as written in the audit log
    role: Role
    workspace: str = DEFAULT_WORKSPACE
    kind: PrincipalKind = PrincipalKind.LOCAL

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


def local_principal(workspace: str | None = None) -> Principal:
    """The operator of this machine (CLI, single-user app): an admin in the workspace named by
    `--workspace`, WORKBENCH_WORKSPACE, or `default`."""
    ws = workspace or os.environ.get("WORKBENCH_WORKSPACE") or DEFAULT_WORKSPACE
    return Principal(actor=default_actor(), role=Role.ADMIN, workspace=ws,
                     kind=PrincipalKind.LOCAL)
