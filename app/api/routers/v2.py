"""The Open Inference Protocol (V2) over REST, for KServe, Triton and Seldon/MLServer clients.

`infer` decodes tensors into records (app/api/oip.py) and calls the same `Serving.predict` as
`POST /v1/models/{name}/predict`: canary routing (sticky with `parameters.request_key`),
shadow, fallback to stable, batching, the lean path, telemetry, the prediction log and the
overload bound all apply. The versions route pins a version as NAME:VERSION does. Errors are the
protocol's `{"error": "<code>: <message>"}`: 400 for the caller's mistakes, 404 for an unknown
model or version, 503 + Retry-After when overloaded or the store is unavailable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api import oip
from app.api.deps import serving_of
from app.api.errors import validation_detail
from app.api.wire import answer_response, json_body, json_response, parsed
from core.deploy.cache import LoadedModel
from core.deploy.service import Serving
from core.errors import NotFoundError, TryLaterError, WorkbenchError
from core.registry import check_model_name, list_versions
from core.registry.versions import resolve
from core.store.failures import storage_failure

router = APIRouter(tags=["open inference protocol (v2)"])
MAX_VERSION = 2_147_483_647
_ERROR = {"model": oip.V2Error}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "The request is wrong: the message names the input, "
                                   "column or field and what to send instead."},
    401: _ERROR, 403: _ERROR,
    404: {**_ERROR, "description": "No such model or version (or nothing deployed)."},
    409: _ERROR, 413: _ERROR, 415: _ERROR,
    503: {**_ERROR, "description": "overloaded or storage_unavailable: retry after the "
                                   "Retry-After header's seconds."}}


def v2_error(status: int, code: str, message: str, headers: dict[str, str] | None = None
             ) -> Response:
    return json_response({"error": f"{code}: {message}"}, status, headers)


async def _guarded(call: Callable[[], Awaitable[Response]]) -> Response:
    """Run a V2 route, answering its failures in the protocol's error shape."""
    try:
        return await call()
    except TryLaterError as exc:
        return v2_error(503, exc.code, exc.message, {"Retry-After": str(exc.retry_after_s)})
    except WorkbenchError as exc:  # the input's mistakes are 400 here, 422 on /v1
        status = 400 if exc.http_status == 422 else exc.http_status
        return v2_error(status, exc.code, exc.message)
    except RequestValidationError as exc:
        return v2_error(400, "invalid_request", validation_detail(exc))
    except OverflowError:  # an integer no float holds, met when the rows become numbers
        return v2_error(400, "invalid_request", "A number in the inputs is beyond what a "
                        "64-bit float holds (about 1.8e308): send finite numbers.")
    except Exception as exc:
        failure = storage_failure(exc)
        if failure is None:
            raise
        return v2_error(503, failure.code, failure.message,
                        {"Retry-After": str(failure.retry_after_s)})


def _version(name: str, version: str) -> int:
    if not version.isdigit() or int(version) > MAX_VERSION:
        raise NotFoundError(f"Model {name!r} has no version {version!r}: versions are numbers "
                            f"(see GET /v2/models/{name}).")
    return int(version)


async def _reference(serving: Serving, name: str, version: str | None
                     ) -> tuple[LoadedModel, int | None, set[str]]:
    """(the version whose schema checks the request, the pinned version or None, columns a
    loaded canary candidate takes besides)."""
    check_model_name(name)
    if version is not None:
        v = _version(name, version)
        return await _pinned(serving, name, v), v, set()
    st = await serving.astate(name)
    ref = st.stable if st.stable is not None else st.candidate
    if ref is None:
        raise NotFoundError(f"Model {name!r} has no deployed version. Deploy one first "
                            f"(`workbench deploy {name} VERSION --percent 100`), or call "
                            f"/v2/models/{name}/versions/VERSION/infer.")
    known: set[str] = set()
    if st.candidate is not None and st.candidate != ref:
        candidate = serving.cache.peek(name, st.candidate)
        known = set(candidate.columns) if candidate is not None else set()
    return await serving.amodel(name, ref), None, known


async def _pinned(serving: Serving, name: str, version: int) -> LoadedModel:
    """A pinned version, loaded on demand; one that does not exist is a 404 before the model
    cache hears of it (it keeps a note per version that failed to load)."""
    lm = serving.cache.hit(name, version)
    if lm is None:
        await run_in_threadpool(_exists, serving, name, version)
        lm = await serving.amodel(name, version)
    return lm


async def _infer(request: Request, name: str, version: str | None) -> Response:
    serving = serving_of(request)
    body = await parsed(request, oip.InferenceRequest)
    lm, pinned, known = await _reference(serving, name, version)
    wanted = oip.requested_outputs(body, lm)
    key = oip.request_key(body, request.headers.get("x-request-key"))
    answer = await serving.predict(name, oip.records(body, lm, known), key, pinned)
    return answer_response(answer, oip.response(answer, wanted, body.id))


@router.post("/v2/models/{name}/infer",
             responses={200: {"model": oip.InferenceResponse}, **ERRORS},
             openapi_extra=json_body(oip.InferenceRequest))
async def infer(name: str, request: Request) -> Response:
    """Score with the deployed model: canary routing as on /v1/models/{name}/predict."""
    return await _guarded(lambda: _infer(request, name, None))


@router.post("/v2/models/{name}/versions/{version}/infer",
             responses={200: {"model": oip.InferenceResponse}, **ERRORS},
             openapi_extra=json_body(oip.InferenceRequest))
async def infer_version(name: str, version: str, request: Request) -> Response:
    """Score with one version (NAME:VERSION): no canary routing, no shadow, no fallback."""
    return await _guarded(lambda: _infer(request, name, version))


@router.get("/v2/health/live", response_model=oip.ServerLive, responses=ERRORS)
async def live() -> oip.ServerLive:
    return oip.ServerLive(live=True)


@router.get("/v2/health/ready", response_model=oip.ServerReady, responses=ERRORS)
async def ready(request: Request) -> Response:
    """Ready when the stable version of every deployed model is loaded in this process."""
    serving = serving_of(request)

    async def answer() -> Response:
        names = await run_in_threadpool(serving.states.deployed)
        states = [await serving.astate(n) for n in names]
        loaded = all(st.stable is None or serving.cache.peek(st.name, st.stable) is not None
                     for st in states)
        return json_response({"ready": loaded})

    return await _guarded(answer)


async def _model_ready(request: Request, name: str, version: str | None) -> Response:
    serving = serving_of(request)
    check_model_name(name)
    if version is None:
        st = await serving.astate(name)
        v = st.stable
    else:
        v = _version(name, version)
        await run_in_threadpool(_exists, serving, name, v)
    ok = v is not None and serving.cache.peek(name, v) is not None
    return json_response({"name": name, "ready": ok})


def _exists(serving: Serving, name: str, version: int) -> None:
    with serving.db.session() as session:
        resolve(f"{name}:{version}", session=session)


@router.get("/v2/models/{name}/ready", response_model=oip.ModelReady, responses=ERRORS)
async def model_ready(name: str, request: Request) -> Response:
    """Ready when the model's stable version is loaded here (the server warms it at start)."""
    return await _guarded(lambda: _model_ready(request, name, None))


@router.get("/v2/models/{name}/versions/{version}/ready", response_model=oip.ModelReady,
            responses=ERRORS)
async def version_ready(name: str, version: str, request: Request) -> Response:
    return await _guarded(lambda: _model_ready(request, name, version))


async def _metadata(request: Request, name: str, version: str | None) -> Response:
    serving = serving_of(request)
    check_model_name(name)
    if version is None:
        st = await serving.astate(name)
        v = st.stable if st.stable is not None else st.candidate
        if v is None:  # nothing deployed: describe the version NAME resolves to
            v = await run_in_threadpool(_resolved, serving, name)
        lm = await serving.amodel(name, v)
    else:
        lm = await _pinned(serving, name, _version(name, version))
    versions = await run_in_threadpool(_versions, serving, name)
    return json_response(oip.metadata(lm, versions).model_dump(exclude_none=True))


def _resolved(serving: Serving, name: str) -> int:
    with serving.db.session() as session:
        return resolve(name, session=session)[1].version


def _versions(serving: Serving, name: str) -> list[str]:
    with serving.db.session() as session:
        return [str(v.version) for v in list_versions(name, session=session)]


@router.get("/v2/models/{name}", response_model=oip.ModelMetadata,
            response_model_exclude_none=True, responses=ERRORS)
async def model_metadata(name: str, request: Request) -> Response:
    """Inputs (one per column, datatype by the column's type) and outputs of the deployed
    stable version (else the version NAME resolves to)."""
    return await _guarded(lambda: _metadata(request, name, None))


@router.get("/v2/models/{name}/versions/{version}", response_model=oip.ModelMetadata,
            response_model_exclude_none=True, responses=ERRORS)
async def version_metadata(name: str, version: str, request: Request) -> Response:
    return await _guarded(lambda: _metadata(request, name, version))
