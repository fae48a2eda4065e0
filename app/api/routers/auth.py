"""Sign-in (`POST /v1/auth/token`, public) and who the caller is (`GET /v1/auth/me`).

The token is a JWT (core/identity/tokens.py) to send as `Authorization: Bearer TOKEN`; it
expires after WORKBENCH_TOKEN_TTL_S seconds (then sign in again), and stops working at once
when the user is removed or their role or password changes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api.deps import PrincipalDep, SessionDep
from app.api.errors import ERRORS, ErrorBody, error
from core.errors import UnauthorizedError
from core.identity import PrincipalKind, Role
from core.identity.throttle import MAX_FAILURES, WINDOW_S, SignInThrottle

router = APIRouter(tags=["auth"])


class TokenRequest(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int  # seconds


class Me(BaseModel):
    actor: str
    role: Role
    workspace: str
    kind: PrincipalKind


TOKEN_ERRORS = {**ERRORS, 429: {"model": ErrorBody, "description": (
    f"too_many_attempts (with Retry-After): {MAX_FAILURES} wrong sign-ins within "
    f"{WINDOW_S:.0f} s for this user name or from this address; wait that many seconds.")}}


def _throttle(request: Request) -> SignInThrottle:
    """This process's sign-in back-off (core/identity/throttle.py), one per app."""
    state = request.app.state
    if getattr(state, "sign_in_throttle", None) is None:
        state.sign_in_throttle = SignInThrottle()
    return state.sign_in_throttle


@router.post("/v1/auth/token", response_model=TokenResponse, responses=TOKEN_ERRORS)
def token(body: TokenRequest, session: SessionDep, request: Request) -> Response:
    """Sign in. Wrong credentials are 401 whichever part was wrong; after repeated failures
    for a user name or from an address, 429 with Retry-After (the client's address is the
    connection's: behind a proxy, every caller shares the proxy's unless uvicorn's
    --forwarded-allow-ips names it; core/identity/throttle.py)."""
    from core.identity.tokens import sign_in  # PyJWT loads on the first sign-in

    throttle = _throttle(request)
    address = request.client.host if request.client else None
    wait = throttle.attempt(body.username, address)  # counted now: a burst cannot outrun it
    if wait:
        return error(429, "too_many_attempts",
                     f"Too many failed sign-ins for this user name or from this address: "
                     f"try again in {wait} s.", {"Retry-After": str(wait)})
    try:
        issued = sign_in(body.username, body.password, session=session)
    except UnauthorizedError:
        raise  # the attempt stays counted
    except BaseException:
        throttle.release(body.username, address)
        raise
    throttle.succeeded(body.username, address)
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/v1/auth/me", response_model=Me, responses=ERRORS)
def me(principal: PrincipalDep) -> Me:
    return Me(actor=principal.actor, role=principal.role, workspace=principal.workspace,
              kind=principal.kind)
