"""Sign-in tokens: JWTs (PyJWT) signed with HS256, the only algorithm accepted on the way in.

A token carries the user (`sub`), the workspace and role it was issued for, and the user's
`rev`ision; `iss`, `iat` and `exp` are required. The signature alone never suffices: the API
also checks that the user still exists at that revision (core/identity/directory.py).

The secret is WORKBENCH_JWT_SECRET (at least 32 bytes; every server process of one
deployment must share it) or, when unset, a random secret generated once into
WORKBENCH_HOME/jwt-secret with mode 0600."""

from __future__ import annotations

import functools
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from core.errors import SettingsError, UnauthorizedError
from core.identity.principal import Principal, Role
from core.settings import Settings, get_settings

ISSUER = "ml-workbench"
ALGORITHM = "HS256"
SECRET_FILE = "jwt-secret"
MIN_SECRET_BYTES = 32
_REQUIRED = ["exp", "iat", "iss", "sub"]


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: Role
    workspace: str
    rev: int
    exp: int


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    expires_in: int


def signing_secret(settings: Settings | None = None) -> bytes:
    settings = settings or get_settings()
    if settings.jwt_secret:
        secret = settings.jwt_secret.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"WORKBENCH_JWT_SECRET is {len(secret)} bytes long; use at least "
                f"{MIN_SECRET_BYTES} random bytes (e.g. `python -c \"import secrets; "
                "print(secrets.token_urlsafe(48))\"`), or unset it to use a generated one.")
        return secret
    return _file_secret(settings.home / SECRET_FILE)


@functools.cache
def _file_secret(path: Path) -> bytes:
    """Read the generated secret, creating it (0600, exclusively: concurrent first starts
    agree on one) if it is missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    for _ in range(50):  # another process may have created it and not written it yet
        secret = path.read_text().strip().encode()
        if secret:
            return secret
        time.sleep(0.02)
    raise SettingsError(f"The token signing secret {path} is empty: delete it (a new one is "
                        "generated; tokens issued before stop working) or set "
                        "WORKBENCH_JWT_SECRET.")


def issue(principal: Principal, revision: int, *, settings: Settings | None = None,
          now: int | None = None) -> Issued:
    """A signed token for a signed-in user, valid for WORKBENCH_TOKEN_TTL_S seconds."""
    settings = settings or get_settings()
    now = int(time.time()) if now is None else now
    ttl = settings.token_ttl_s
    claims = {"iss": ISSUER, "sub": principal.actor, "iat": now, "exp": now + ttl,
              "workspace": principal.workspace, "role": principal.role.value, "rev": revision}
    return Issued(jwt.encode(claims, signing_secret(settings), algorithm=ALGORITHM), ttl)


def decode(token: str, *, settings: Settings | None = None) -> Claims:
    """The verified claims, or UnauthorizedError saying why (expired, or not valid)."""
    try:
        c = jwt.decode(token, signing_secret(settings), algorithms=[ALGORITHM], issuer=ISSUER,
                       options={"require": _REQUIRED})
        return Claims(sub=c["sub"], role=Role(c["role"]), workspace=str(c["workspace"]),
                      rev=int(c["rev"]), exp=int(c["exp"]))
    except jwt.ExpiredSignatureError:
        raise UnauthorizedError("The sign-in token has expired: sign in again "
                                "(POST /v1/auth/token).") from None
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
        raise UnauthorizedError("The bearer token is not valid: send a token from "
                                "POST /v1/auth/token or an API key.") from None


def sign_in(username: str, password: str, *, session, settings: Settings | None = None
            ) -> Issued:
    """A token for this user name and password, or UnauthorizedError that does not say which
    of the two was wrong."""
    from core.identity.users import authenticate, revision_of

    principal = authenticate(session, username, password)
    revision = revision_of(session, principal.actor) if principal is not None else None
    if principal is None or revision is None:
        raise UnauthorizedError("Wrong user name or password.")
    return issue(principal, revision, settings=settings)
