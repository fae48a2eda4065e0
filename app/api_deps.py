"""The API's composition root pieces: the store built in `create_app`, a session per request.

Routes declare `session: SessionDep`; core use cases commit their own unit of work, and the
session is closed (rolling back anything uncommitted) when the response has been built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from core.store.db import Database


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.db.engine, expire_on_commit=False) as session:
        yield session


DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
