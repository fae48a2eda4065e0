"""The API's dependencies: what `create_app` (the composition root) built, handed to routes.

Routes declare `session: SessionDep`, `db: DbDep` or `serving: ServingDep` instead of closing
over the app's objects. Core use cases commit their own unit of work; the request's session is
closed (rolling back anything uncommitted) when the response has been built.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from core.deploy.service import Serving
from core.identity import DEFAULT_WORKSPACE, Principal, local_principal
from core.store.db import Database
from core.store.scope import scope


def get_db(request: Request) -> Database:
    """The store as the caller's workspace sees it: every session it opens is scoped."""
    return request.app.state.db.in_workspace(get_principal(request).workspace)


def get_principal(request: Request) -> Principal:
    """Who is calling, as the ASGI guard resolved it from the bearer token (scope key
    "principal"); the machine's operator when no sign-in is configured."""
    return request.scope.get("principal") or local_principal()


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.db.engine, expire_on_commit=False) as session:
        scope(session, get_principal(request).workspace)  # every query: this workspace only
        yield session


async def get_serving(request: Request) -> Serving:
    """Async on purpose: a plain function dependency would hop to the thread pool. The
    runtime as the caller's workspace sees it (core/deploy/workspace_view.py)."""
    return request.app.state.serving.view(get_principal(request).workspace)


def serving_of(request: Request) -> Serving:
    """The runtime, for the prediction routes only: they already take the `Request` (they
    parse their own bytes), and resolving a dependency costs FastAPI some eighty function
    calls per request, about a tenth of the server's work for a 1-row prediction. Seen from
    the caller's workspace: one dict lookup, no query."""
    principal = request.scope.get("principal")
    workspace = principal.workspace if principal is not None else local_workspace()
    return request.app.state.serving.view(workspace)


def local_workspace() -> str:
    """The local operator's workspace (no sign-in configured), without building a whole
    `Principal` on the prediction path."""
    return os.environ.get("WORKBENCH_WORKSPACE") or DEFAULT_WORKSPACE


DbDep = Annotated[Database, Depends(get_db)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
SessionDep = Annotated[Session, Depends(get_session)]
ServingDep = Annotated[Serving, Depends(get_serving)]
