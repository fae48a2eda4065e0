"""The ASGI guard in front of the routes: who is calling (the principal), whether their role
may use the route, and the body size limit, all checked before any parsing.

Credentials, tried in this order (docs/identity/auth.md):
- `Authorization: Bearer WORKBENCH_API_TOKEN`: an admin principal (kind TOKEN, actor
  "api-token"); needs no store at all;
- `Bearer wbk_…`: an API key (`workbench keys create`);
- `Bearer <JWT>`: a user's token from POST /v1/auth/token, valid only while the user still
  exists at the revision the token names.
With no users, no keys and no token configured, every caller is the machine's operator
(single-user mode, as before). Otherwise a call without valid credentials is 401 (except the
public routes in app/api/roles.py), and one whose role is too low is 403 naming the role needed.

Users and keys are checked against an in-process snapshot (core/identity/directory.py) that is
at most `state_refresh_s` old, and reloaded at once after a change made in this process: no
store query per request."""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from app.api.errors import error
from app.api.roles import RouteRoles, forbidden_detail
from app.request_policy import UPLOAD_PATH
from core.errors import UnauthorizedError, WorkbenchError
from core.identity import Principal, PrincipalKind, Role, local_principal
from core.identity.directory import KEY_MARK, Directory, Snapshot
from core.store.failures import storage_failure

TOKEN_PRINCIPAL = Principal(actor="api-token", role=Role.ADMIN, kind=PrincipalKind.TOKEN)
SIGN_IN = ("Sign in: send `Authorization: Bearer TOKEN` with a token from POST "
           "/v1/auth/token, an API key (`workbench keys create`) or WORKBENCH_API_TOKEN.")
_BEARER = b"bearer "  # the scheme is case-insensitive (RFC 7235)
_JWT_CACHE_MAX = 1024


class _TooLarge(Exception):
    pass


def _unauthorized(detail: str):
    return error(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


def _unavailable(exc: Exception):
    """503 + Retry-After when the store cannot be read, the error's own answer for a damaged
    store; anything else is a bug (500)."""
    if isinstance(exc, WorkbenchError):
        return error(exc.http_status, exc.code, exc.message)
    failure = storage_failure(exc)
    if failure is None:
        raise exc
    return error(503, failure.code, failure.message, {"Retry-After": str(failure.retry_after_s)})


class Guard:
    """Authentication, the role check and the body size limit, as plain ASGI so the hot path
    pays for no extra request objects."""

    def __init__(self, app: Any, settings: Any, directory: Directory | None = None) -> None:
        self.app = app
        self.settings = settings
        self.directory = directory
        self._roles: RouteRoles | None = None
        self._local: Principal | None = None
        # verified JWT signatures: token -> (subject, revision, expiry); the user's revision is
        # still checked against the snapshot on every request
        self._jwts: dict[str, tuple[str, int, int]] = {}
        self._refreshing = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        denied = await self._authorize(scope)
        if denied is not None:
            return await denied(scope, receive, send)
        await self._limited(scope, receive, send)

    # -- who is calling, and may they ---------------------------------------------------------
    async def _authorize(self, scope: dict) -> Any:
        roles = self._roles
        if roles is None:
            roles = self._roles = RouteRoles.of_app(scope["app"])
        rule = roles.rule(scope["method"], scope["path"])
        if rule.public:
            # a public route still learns who calls when the caller says (GET /health gives
            # detail to a signed-in caller only); no or bad credentials: anonymous, not 401
            try:
                found = await self._identify(scope, cached=True)
            except Exception:  # noqa: BLE001 (liveness answers even when the store cannot)
                found = None
            if isinstance(found, Principal):
                scope["principal"] = found
            else:
                scope["anonymous"] = True
            return None
        found = await self._identify(scope)
        if not isinstance(found, Principal):
            return found
        principal = found
        scope["principal"] = principal
        if principal.role is not Role.ADMIN and not principal.role.allows(rule.role):
            return error(403, "forbidden", forbidden_detail(rule.role, principal.role))
        return None

    async def _identify(self, scope: dict, cached: bool = False) -> Any:
        """The caller's principal from its credentials, or the error response to give.
        `cached` (public routes): never wait on the store; read the last snapshot whatever
        its age (a reload starts behind), and with none the caller is anonymous."""
        cred = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                cred = v[7:].strip() if v[:7].lower() == _BEARER else b""
                break
        token = self.settings.workbench_api_token
        if token and cred and hmac.compare_digest(cred, token.encode()):
            principal = TOKEN_PRINCIPAL
        elif token and cred is None:
            return _unauthorized(SIGN_IN)
        else:
            snap = self.directory.current() if self.directory is not None else Snapshot()
            if snap is None and cached:
                snap = self.directory.last()  # type: ignore[union-attr]
                self._refresh_behind()
                if snap is None:
                    return None
            if snap is None:
                try:
                    snap = await run_in_threadpool(self.directory.refresh)  # type: ignore
                except Exception as exc:  # the store cannot say who exists: never guess
                    return _unavailable(exc)
            if not token and not snap.configured:
                principal = self._local or self._operator()
            elif not cred:
                return _unauthorized(SIGN_IN)
            else:
                try:
                    principal = self._resolve(snap, cred.decode("latin-1"))
                except UnauthorizedError as exc:
                    return _unauthorized(exc.message)
        return principal

    def _refresh_behind(self) -> None:
        """Reload the snapshot in a thread of its own, one at a time (a locked store holds
        that thread, never a request)."""
        if self._refreshing or self.directory is None:
            return
        self._refreshing = True
        directory = self.directory

        def run() -> None:
            try:
                directory.refresh()
            except Exception:  # noqa: BLE001 (the next request that needs it will say)
                pass
            finally:
                self._refreshing = False

        threading.Thread(target=run, name="directory-refresh", daemon=True).start()

    def _operator(self) -> Principal:
        self._local = local_principal()
        return self._local

    def _resolve(self, snap: Snapshot, cred: str) -> Principal:
        """An API key or a user's JWT, as the snapshot knows them now."""
        if cred.startswith(KEY_MARK):
            principal = snap.key(cred)
            if principal is None:
                raise UnauthorizedError("This API key is not valid (revoked, or never "
                                        "issued); `workbench keys list` shows the active ones.")
            return principal
        seen = self._jwts.get(cred)
        if seen is None or seen[2] <= time.time():
            from core.identity.tokens import decode

            claims = decode(cred, settings=self.settings)
            seen = (claims.sub, claims.rev, claims.exp)
            if len(self._jwts) >= _JWT_CACHE_MAX:
                self._jwts.clear()
            self._jwts[cred] = seen
        principal = snap.user(seen[0], seen[1])
        if principal is None:
            raise UnauthorizedError("This token's user was removed or changed (role or "
                                    "password) since it was issued: sign in again.")
        return principal

    # -- the body size limit ------------------------------------------------------------------
    async def _limited(self, scope: dict, receive: Any, send: Any) -> None:
        settings = self.settings
        limit = settings.max_upload_bytes if scope["path"] == UPLOAD_PATH \
            else settings.serve_max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    resp = error(413, "too_large", f"The request body exceeds {limit} bytes.")
                    return await resp(scope, receive, send)
                break
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                resp = error(413, "too_large", f"The request body exceeds {limit} bytes.")
                await resp(scope, receive, send)
