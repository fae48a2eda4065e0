"""Predictions (ours and MLflow's scoring protocol), feedback on them, and the live scorecard.

The prediction routes read their own bytes (app/api/wire.py) and answer with the version that
scored the records in the body and in `X-Model-Version`, with a request id in `X-Request-Id`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import ServingDep, SessionDep
from app.api.errors import ERRORS, PREDICT_ERRORS
from app.api.mlflow_protocol import mlflow_records
from app.api.schemas import FeedbackRequest, PredictRequest, PredictResponse
from app.api.wire import answer_response, json_body, parsed
from core.deploy.deployments import InvalidRequestError
from core.deploy.service import Serving
from core.errors import NotFoundError
from core.registry import PRODUCTION, check_model_name, list_models, resolve
from core.store import Database

router = APIRouter(tags=["predict"])


@router.post("/v1/models/{name}/predict",
             responses={200: {"model": PredictResponse}, **PREDICT_ERRORS},
             openapi_extra=json_body(PredictRequest))
async def predict(name: str, request: Request, serving: ServingDep) -> Response:
    check_model_name(name)
    body = await parsed(request, PredictRequest)
    return answer_response(await serving.predict(name, body.records, body.request_key))


async def _invocations(serving: Serving, name: str, payload: Any, key: str | None
                       ) -> Response:
    st = serving.state(check_model_name(name))
    if st.stable is None:
        raise NotFoundError(f"Model {name!r} has no deployed version.")
    columns = serving.model(name, st.stable).columns
    records = mlflow_records(payload, columns)
    if not records:
        raise InvalidRequestError("No records to score.")
    a = await serving.predict(name, records, key)
    return answer_response(a, {"predictions": a.predictions})


@router.post("/v1/models/{name}/invocations", responses=PREDICT_ERRORS,
             openapi_extra=json_body())
async def invocations(name: str, request: Request, serving: ServingDep) -> Response:
    return await _invocations(serving, name, await parsed(request),
                              request.headers.get("x-request-key"))


@router.post("/invocations", responses=PREDICT_ERRORS, openapi_extra=json_body())
async def default_invocations(request: Request, serving: ServingDep) -> Response:
    return await _invocations(serving, _default_model(serving.settings, request.app.state.db),
                              await parsed(request), request.headers.get("x-request-key"))


@router.post("/v1/models/{name}/feedback", responses=ERRORS)
def feedback(name: str, body: FeedbackRequest, serving: ServingDep) -> dict[str, Any]:
    check_model_name(name)
    return serving.feedback(name, body.request_id, body.actual)


@router.get("/v1/models/{name}/scorecard", responses=ERRORS)
def scorecard(name: str, serving: ServingDep, session: SessionDep) -> dict[str, Any]:
    _, mv = resolve(check_model_name(name), session=session)
    return serving.scorecard(name, mv.task)


_DEFAULT: dict[str, Any] = {"name": None, "at": 0.0}


def _default_model(settings: Any, db: Database) -> str:
    """WORKBENCH_DEFAULT_MODEL, else the only deployed model (looked up at most once a
    second: this is on the /invocations hot path)."""
    name = settings.default_model
    if name:
        return name
    now = time.monotonic()
    if _DEFAULT["name"] and now - _DEFAULT["at"] < 1.0:
        return _DEFAULT["name"]
    with db.session() as s:
        deployed = [m.name for m in list_models(session=s) if PRODUCTION in m.aliases]
    if len(deployed) == 1:
        _DEFAULT.update(name=deployed[0], at=now)
        return deployed[0]
    raise NotFoundError("/invocations needs a default model: set WORKBENCH_DEFAULT_MODEL or "
                        "use /v1/models/{name}/invocations "
                        f"({len(deployed)} models are deployed).")
