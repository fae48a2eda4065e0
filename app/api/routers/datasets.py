"""Stored datasets: the listing, the upload of a CSV or Parquet table (raw or multipart), and
deletion (refused with 409 while a model version or job was trained on the dataset)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import PrincipalDep, SessionDep
from app.api.errors import ERRORS
from app.api.wire import json_response
from core.data.datasets import delete_dataset, ingest_bytes, list_datasets_public
from core.data.ingest import DecimalMark
from core.data.public import DatasetDeleted, DatasetPublic, StoredDatasetPublic
from core.deploy.deployments import InvalidRequestError

router = APIRouter(tags=["datasets"])


@router.get("/v1/datasets", response_model=list[DatasetPublic])
def datasets(session: SessionDep) -> list[DatasetPublic]:
    return list_datasets_public(session=session)


@router.post("/v1/datasets", responses={
    200: {"model": StoredDatasetPublic, "description": "The same content was stored before."},
    201: {"model": StoredDatasetPublic, "description": "Stored."}, **ERRORS}, openapi_extra={
    "requestBody": {"content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}}}}})
async def upload(request: Request, session: SessionDep, name: str | None = None,
                 filename: str | None = None,
                 decimal: DecimalMark = DecimalMark.AUTO) -> Response:
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
    stored = await run_in_threadpool(ingest_bytes, raw, filename, session=session, name=name,
                                     decimal=decimal)
    return json_response(stored.public().model_dump(mode="json"),
                         201 if stored.created else 200)


@router.delete("/v1/datasets/{ref}", response_model=DatasetDeleted, responses=ERRORS)
def remove_dataset(ref: str, session: SessionDep,
                   principal: PrincipalDep, reason: str = "") -> DatasetDeleted:
    """Delete a dataset by id, name or fingerprint: 404 when there is none, 409 while a model
    version or a job names it as its training data (their lineage would be lost)."""
    gone = delete_dataset(ref, session=session, actor=principal.actor, reason=reason)
    return DatasetDeleted(deleted=gone.id, name=gone.name)
