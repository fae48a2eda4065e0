"""The API's error contract: every failure is JSON `{"error": code, "detail": message}`, 4xx for
the caller's mistakes (never a 500 for input), 503 + Retry-After when the store or the server
cannot serve the call now. `install_handlers` maps exceptions to that shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.wire import json_response
from core.errors import TryLaterError, WorkbenchError
from core.store.failures import storage_failure

log = logging.getLogger("workbench.api")


class ErrorBody(BaseModel):
    error: str
    detail: str


ERRORS = {400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody},
          404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 413: {"model": ErrorBody},
          415: {"model": ErrorBody, "description": "Unsupported Media Type: writing routes "
                "take application/json (POST /v1/datasets: CSV, Parquet or multipart)."},
          422: {"model": ErrorBody},
          503: {"model": ErrorBody, "description": "storage_unavailable (with Retry-After): "
                                                  "the database or disk cannot serve the call "
                                                  "now; try again later"}}
PREDICT_ERRORS = {**ERRORS, 503: {"model": ErrorBody, "description": "overloaded (more "
                                  "predictions pending than the server's bound) or "
                                  "storage_unavailable; retry after the Retry-After header's "
                                  "seconds"}}


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None
          ) -> Response:
    return json_response({"error": code, "detail": detail}, status, headers)


def validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "The request is not valid."


async def _workbench_error(request: Request, exc: WorkbenchError) -> Response:
    return error(exc.http_status, exc.code, exc.message)


async def _try_later(request: Request, exc: TryLaterError) -> Response:
    """Overloaded, storage unavailable: 503 + Retry-After, the caller may try again."""
    return error(503, exc.code, exc.message, {"Retry-After": str(exc.retry_after_s)})


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return error(422, "invalid_request", validation_detail(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def _overflow(request: Request, exc: Exception) -> Response:
    return error(422, "invalid_request", "A value in the request is out of range for the "
                 "store (e.g. a version number beyond 2147483647).")


async def _storage(request: Request, exc: Exception) -> Response:
    """Locked past the busy timeout, server unreachable, disk full: 503 + Retry-After.
    Other driver and OS errors are bugs and get the generic 500."""
    failure = storage_failure(exc)
    if failure is None:
        return await _internal(request, exc)
    log.warning("storage unavailable on %s: %s", request.url.path, exc)
    return error(503, failure.code, failure.message,
                 {"Retry-After": str(failure.retry_after_s)})


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s", request.url.path, exc_info=exc)
    return error(500, "internal", f"{type(exc).__name__}: the server failed; see its log.")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WorkbenchError, _workbench_error)
    app.add_exception_handler(TryLaterError, _try_later)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for exc_type in (OverflowError, DataError):
        app.add_exception_handler(exc_type, _overflow)
    for exc_type in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(exc_type, _storage)
    app.add_exception_handler(Exception, _internal)
