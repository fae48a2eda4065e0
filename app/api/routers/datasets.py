"""Stored datasets: the listing, and the upload of a CSV or Parquet table (raw or multipart)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.errors import ERRORS
from app.api.wire import json_response
from core.data.datasets import ingest_bytes, list_datasets
from core.deploy.deployments import InvalidRequestError

router = APIRouter(tags=["datasets"])


@router.get("/v1/datasets")
def datasets() -> list[dict[str, Any]]:
    return [{"id": d.id, "name": d.name, "fingerprint": d.fingerprint, "rows": d.n_rows,
             "columns": d.n_cols, "size_bytes": d.size_bytes,
             "created_at": d.created_at.isoformat()} for d in list_datasets()]


@router.post("/v1/datasets", responses=ERRORS, openapi_extra={
    "requestBody": {"content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}}}}})
async def upload(request: Request, name: str | None = None, filename: str | None = None,
                 decimal: Literal["auto", ".", ","] = "auto") -> Response:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequestError("Send the table as a form field named `file`.")
        raw = await upload.read()
        filename = filename or upload.filename or "upload.csv"
    else:
        raw = await request.body()
        if not filename:
            filename = "upload.parquet" if raw[:4] == b"PAR1" else "upload.csv"
    if not raw:
        raise InvalidRequestError("The request body is empty: send a CSV or Parquet table.")
    stored = await run_in_threadpool(ingest_bytes, raw, filename, name=name, decimal=decimal)
    d = stored.dataset
    return json_response({"id": d.id, "name": d.name, "fingerprint": d.fingerprint,
                          "rows": d.n_rows, "columns": d.n_cols, "created": stored.created,
                          "warnings": d.warnings}, 201 if stored.created else 200)
