"""Sign-in (`POST /v1/auth/token`, public) and who the caller is (`GET /v1/auth/me`).

The token is a JWT (core/identity/tokens.py) to send as `Authorization: Bearer TOKEN`; it
expires after WORKBENCH_TOKEN_TTL_S seconds (then sign in again), and stops working at once
when the user is removed or their role or password changes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import PrincipalDep, SessionDep
from app.api.errors import ERRORS
from core.identity import PrincipalKind, Role
from core.identity.tokens import sign_in

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


@router.post("/v1/auth/token", response_model=TokenResponse,
             responses={k: v for k, v in ERRORS.items() if k in (401, 415, 422, 503)})
def token(body: TokenRequest, session: SessionDep) -> TokenResponse:
    issued = sign_in(body.username, body.password, session=session)
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/v1/auth/me", response_model=Me, responses=ERRORS)
def me(principal: PrincipalDep) -> Me:
    return Me(actor=principal.actor, role=principal.role, workspace=principal.workspace,
              kind=principal.kind)
