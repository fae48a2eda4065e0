"""Predictions (ours and MLflow's scoring protocol), feedback on them, and the live scorecard.

The prediction routes read their own bytes (app/api/wire.py) and answer with the version that
scored the records in the body and in `X-Model-Version`, with a request id in `X-Request-Id`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import ServingDep, SessionDep, serving_of
from app.api.errors import ERRORS, PREDICT_ERRORS
from app.api.mlflow_protocol import mlflow_records
from app.api.schemas import FeedbackRequest, PredictRequest, PredictResponse
from app.api.wire import answer_response, json_body, parsed, parsed_predict_request
from core.deploy.deployments import InvalidRequestError
from core.deploy.feedback import FeedbackRecorded, Scorecard, model_scorecard, record_feedback
from core.deploy.service import Serving
from core.errors import NotFoundError
from core.registry.versions import check_model_name

router = APIRouter(tags=["predict"])


@router.post("/v1/models/{name}/predict",
             responses={200: {"model": PredictResponse}, **PREDICT_ERRORS},
             openapi_extra=json_body(PredictRequest))
async def predict(name: str, request: Request) -> Response:
    check_model_name(name)
    body = await parsed_predict_request(request)
    return answer_response(await serving_of(request).predict(name, body.records,
                                                             body.request_key),
                           coverage=body.coverage)


async def _invocations(serving: Serving, name: str, payload: Any, key: str | None
                       ) -> Response:
    st = await serving.astate(check_model_name(name))
    if st.stable is None:
        raise NotFoundError(f"Model {name!r} has no deployed version.")
    columns = (await serving.amodel(name, st.stable)).columns
    records = mlflow_records(payload, columns)
    if not records:
        raise InvalidRequestError("No records to score.")
    a = await serving.predict(name, records, key)
    return answer_response(a, {"predictions": a.predictions})


@router.post("/v1/models/{name}/invocations", responses=PREDICT_ERRORS,
             openapi_extra=json_body())
async def invocations(name: str, request: Request) -> Response:
    return await _invocations(serving_of(request), name, await parsed(request),
                              request.headers.get("x-request-key"))


@router.post("/invocations", responses=PREDICT_ERRORS, openapi_extra=json_body())
async def default_invocations(request: Request) -> Response:
    serving = serving_of(request)
    return await _invocations(serving, await serving.default_model(),
                              await parsed(request), request.headers.get("x-request-key"))


@router.post("/v1/models/{name}/feedback", responses=ERRORS)
def feedback(name: str, body: FeedbackRequest, serving: ServingDep, session: SessionDep
             ) -> FeedbackRecorded:
    check_model_name(name)
    serving.flush()  # the request may have been answered a moment ago
    return record_feedback(name, body.request_id, body.actual, session=session)


@router.get("/v1/models/{name}/scorecard", responses=ERRORS, response_model=Scorecard)
def scorecard(name: str, serving: ServingDep, session: SessionDep) -> Scorecard:
    """Live scores per version from labelled feedback, and the A/B verdict of the current
    candidate (which version is better, with a 95 % interval on the difference)."""
    check_model_name(name)
    serving.flush()
    return model_scorecard(name, session=session)
