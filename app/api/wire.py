"""Bytes on the wire: JSON responses written with orjson, prediction bodies parsed in one pass,
and the OpenAPI request body of a route that reads its own bytes."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from app.jsonout import dumps_bytes
from core.deploy.deployments import InvalidRequestError
from core.deploy.service import Answer


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(dumps_bytes(doc), status_code=status, media_type="application/json",
                    headers=headers)


def json_body(model: type[BaseModel] | None = None, *, required: bool = True
              ) -> dict[str, Any]:
    """OpenAPI request body for a route that parses its own bytes (see `parsed`)."""
    schema = model.model_json_schema() if model is not None else {"type": "object"}
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": schema}}}}


async def parsed(request: Request, model: type[BaseModel] | None = None) -> Any:
    """The prediction routes parse their body in one pass (pydantic's JSON parser straight
    into the model, or orjson): FastAPI's default decodes with the standard library and then
    validates the decoded objects again, which for a 100-row request costs more than scoring
    it. Errors are the same 422 `invalid_request` as everywhere else."""
    raw = await request.body()
    if model is not None:
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The body is not valid JSON: {exc}.") from None


def answer_response(a: Answer, body: dict[str, Any] | None = None,
                    coverage: float | None = None) -> Response:
    """A prediction's answer, naming the version and request id in headers too."""
    doc = body if body is not None else {
        "predictions": a.predictions, "probabilities": a.probabilities, "model": a.model,
        "version": a.version, "request_id": a.request_id, "intervals": a.intervals(coverage)}
    return json_response(doc, headers={"X-Model-Version": str(a.version),
                                       "X-Request-Id": a.request_id})
