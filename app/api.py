"""The REST API (FastAPI): a thin HTTP layer over core.deploy and the registry.

Contract (ARCHITECTURE.md): errors are JSON `{"error": code, "detail": message}`, 4xx for the
caller's mistakes and never a 500 for input; every call but `/health` needs
`Authorization: Bearer TOKEN` when WORKBENCH_API_TOKEN is set; every prediction names the
version that answered (body and `X-Model-Version`) and a request id (`X-Request-Id`).
Before all of that, app/request_policy.py refuses a foreign Host (400), a browser's foreign
Origin on a writing call (403) and a writing call that is not JSON (415; the dataset upload
takes CSV, Parquet or multipart), so no web page can drive the API from the operator's browser.
"""

from __future__ import annotations

import gc
import hmac
import logging
import time
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.jsonout import dumps_bytes
from app.request_policy import UPLOAD_PATH, RequestPolicy
from core.deploy import deployments as dep
from core.deploy.evaluation import evaluate_records
from core.deploy.service import Answer, Serving
from core.deploy.telemetry import BUCKETS_MS, stats_since
from core.errors import NotFoundError, TryLaterError, WorkbenchError
from core.registry.versions import check_model_name, list_models, list_versions, resolve
from core.store.db import Database
from core.store.failures import storage_failure

log = logging.getLogger("workbench.api")
try:
    VERSION = metadata.version("ml-workbench")
except metadata.PackageNotFoundError:  # running from a checkout
    VERSION = "0.0.0"


# -- request and response bodies (documented in /openapi.json) ------------------------------
Record = dict[str, Any]
MAX_VERSION = 2**31 - 1  # fits every database's INTEGER


class PredictRequest(BaseModel):
    records: list[Record] = Field(min_length=1, max_length=100_000)
    request_key: str | None = Field(default=None, max_length=500,
                                    description="Sticky routing key, e.g. a user id.")


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None
    model: str
    version: int
    request_id: str


class FeedbackRequest(BaseModel):
    request_id: str = Field(min_length=1, max_length=64)
    actual: Any = Field(description="The true value, or a list of them for a multi-record "
                                    "request.")


TARGET_HELP = ("The column of the records holding the true values. Needed for a version that "
               "records no target (an imported one); otherwise it must be the version's own.")


class EvaluateRequest(BaseModel):
    records: list[Record] = Field(min_length=1, max_length=1_000_000)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    target: str | None = Field(default=None, min_length=1, max_length=500,
                               description=TARGET_HELP)


class CompareRequest(BaseModel):
    versions: list[str] = Field(min_length=1, max_length=20)
    records: list[Record] | None = Field(default=None, max_length=1_000_000)
    target: str | None = Field(default=None, min_length=1, max_length=500,
                               description=TARGET_HELP)


class LoadRequest(BaseModel):
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


class DeployRequest(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)
    percent: float = Field(default=10.0, ge=0, le=100)
    mode: Literal["canary", "shadow"] = "canary"
    steps: list[float] | None = Field(default=None, min_length=1, max_length=20)
    guard_rails: dict[str, float] | None = None
    auto_advance: bool | None = None
    reason: str = Field(default="", max_length=2000)


class ReasonRequest(BaseModel):
    reason: str = Field(default="", max_length=2000)


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


# -- helpers --------------------------------------------------------------------------------
def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps_bytes(doc), status_code=status, media_type="application/json",
                    headers=headers)


def _json_body(model: type[BaseModel] | None = None, *, required: bool = True
               ) -> dict[str, Any]:
    """OpenAPI request body for a route that parses its own bytes (see `_parsed`)."""
    schema = model.model_json_schema() if model is not None else {"type": "object"}
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": schema}}}}


async def _parsed(request: Request, model: type[BaseModel] | None = None) -> Any:
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
        raise dep.InvalidRequestError(f"The body is not valid JSON: {exc}.") from None


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None
           ) -> Response:
    return _json({"error": code, "detail": detail}, status, headers)


def _answer(a: Answer, body: dict[str, Any] | None = None) -> Response:
    doc = body if body is not None else {
        "predictions": a.predictions, "probabilities": a.probabilities, "model": a.model,
        "version": a.version, "request_id": a.request_id}
    return _json(doc, headers={"X-Model-Version": str(a.version), "X-Request-Id": a.request_id})


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "The request is not valid."


def mlflow_records(payload: Any, columns: list[str]) -> list[dict[str, Any]]:
    """MLflow's scoring protocol → records: dataframe_split, dataframe_records, inputs (or
    instances), as `mlflow models serve` accepts them."""
    if not isinstance(payload, dict):
        raise dep.InvalidRequestError(
            "Send a JSON object with one of dataframe_split, dataframe_records, inputs.")
    keys = [k for k in ("dataframe_split", "dataframe_records", "inputs", "instances")
            if k in payload]
    if len(keys) != 1:
        raise dep.InvalidRequestError(
            "Send exactly one of dataframe_split, dataframe_records or inputs (MLflow scoring "
            f"protocol); got {', '.join(map(str, payload)) or 'none'}.")
    data = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise dep.InvalidRequestError('dataframe_split needs {"columns": [...], '
                                          '"data": [[...], ...]}.')
        cols = data.get("columns") or columns
        rows = data["data"]
        if not all(isinstance(r, list) and len(r) == len(cols) for r in rows):
            raise dep.InvalidRequestError(
                f"dataframe_split: every row of data must hold {len(cols)} values, one per "
                "column.")
        return [dict(zip(cols, r, strict=True)) for r in rows]
    if isinstance(data, dict):  # {"col": [values...]} (column-oriented inputs)
        lists = {k: v if isinstance(v, list) else [v] for k, v in data.items()}
        n = {len(v) for v in lists.values()}
        if len(n) != 1:
            raise dep.InvalidRequestError("inputs: every column needs the same number of values.")
        return [{k: v[i] for k, v in lists.items()} for i in range(n.pop())]
    if not isinstance(data, list):
        raise dep.InvalidRequestError(f"{keys[0]} must be a list of records.")
    if all(isinstance(r, dict) for r in data):
        return data
    if all(isinstance(r, list) and len(r) == len(columns) for r in data):
        return [dict(zip(columns, r, strict=True)) for r in data]
    raise dep.InvalidRequestError(
        f"{keys[0]} must be a list of objects, or of lists of {len(columns)} values in the "
        f"model's column order ({', '.join(columns[:10])}).")


# -- the ASGI guard: auth and body size, before any parsing ---------------------------------
class _TooLarge(Exception):
    pass


class Guard:
    """Bearer-token check (all paths but /health) and the body size limit, as plain ASGI so
    the hot path pays for no extra request objects."""

    def __init__(self, app: Any, settings: Any) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = self.settings
        token = settings.workbench_api_token
        if token and scope["path"] != "/health":
            given = b""
            for k, v in scope["headers"]:
                if k == b"authorization":
                    given = v
                    break
            if not hmac.compare_digest(given, b"Bearer " + token.encode()):
                resp = _error(401, "unauthorized", "Send the API token as `Authorization: "
                              "Bearer TOKEN` (WORKBENCH_API_TOKEN).",
                              {"WWW-Authenticate": "Bearer"})
                return await resp(scope, receive, send)
        limit = settings.max_upload_bytes if scope["path"] == UPLOAD_PATH \
            else settings.serve_max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    resp = _error(413, "too_large", f"The request body exceeds {limit} bytes.")
                    return await resp(scope, receive, send)
                break
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                resp = _error(413, "too_large", f"The request body exceeds {limit} bytes.")
                await resp(scope, receive, send)


# -- the app --------------------------------------------------------------------------------
def create_app(serving: Serving | None = None, *, background: bool = True,
               tune_gc: bool = False, db: Database | None = None) -> FastAPI:
    """A new app: the API's composition root (settings parsed, store built, runtime made).

    `background=False` leaves telemetry flushing and guard rails to explicit
    `app.state.serving.tick()` calls (tests); `tune_gc` is for a server process (see
    app_factory)."""
    db = db or Database()
    serving = serving or Serving()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _warm_deployed(serving)
        # Loaded pipelines are long-lived: keep them out of the cyclic collector's scans, and
        # collect young objects less often (fewer pauses on the request path).
        if tune_gc:
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 20, 20)
        if background:
            serving.start()
        try:
            yield
        finally:
            serving.stop()
            db.dispose()

    app = FastAPI(title="ML Workbench API", version=VERSION, lifespan=lifespan,
                  description="Models, predictions, feedback and deployments (canary, shadow, "
                              "guard rails). Errors: {\"error\": code, \"detail\": message}.")
    app.state.serving = serving
    app.state.db = db
    app.add_middleware(Guard, settings=serving.settings)
    # outermost: Host, Origin and Content-Type are checked before auth (app/request_policy.py)
    app.add_middleware(RequestPolicy, settings=serving.settings)

    @app.exception_handler(WorkbenchError)
    async def _workbench_error(request: Request, exc: WorkbenchError) -> Response:
        return _error(exc.http_status, exc.code, exc.message)

    @app.exception_handler(TryLaterError)
    async def _try_later(request: Request, exc: TryLaterError) -> Response:
        """Overloaded, storage unavailable: 503 + Retry-After, the caller may try again."""
        return _error(503, exc.code, exc.message, {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_request", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _overflow(request: Request, exc: Exception) -> Response:
        return _error(422, "invalid_request", "A value in the request is out of range for the "
                      "store (e.g. a version number beyond 2147483647).")

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OSError)
    async def _storage(request: Request, exc: Exception) -> Response:
        """Locked past the busy timeout, server unreachable, disk full: 503 + Retry-After.
        Other driver and OS errors are bugs and get the generic 500."""
        failure = storage_failure(exc)
        if failure is None:
            return await _internal(request, exc)
        log.warning("storage unavailable on %s: %s", request.url.path, exc)
        return _error(503, failure.code, failure.message,
                      {"Retry-After": str(failure.retry_after_s)})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path, exc_info=exc)
        return _error(500, "internal", f"{type(exc).__name__}: the server failed; see its log.")

    # health and models ------------------------------------------------------------------
    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": VERSION, "models_loaded": serving.cache.loaded()}

    @app.get("/v1/models", tags=["models"])
    def models() -> list[dict[str, Any]]:
        return list_models()

    @app.get("/v1/models/{name}", tags=["models"], responses=ERRORS)
    def model(name: str) -> dict[str, Any]:
        versions = list_versions(check_model_name(name))
        st = serving.state(name, fresh=True)
        aliases = {a: v["version"] for v in versions for a in v["aliases"]}
        loaded = [{"version": lm.version, "lean_path": lm.fast is not None}
                  for lm in serving.cache.loaded_models(name)]
        return {"name": name, "versions": versions, "aliases": aliases,
                "deployment": st.to_dict(), "loaded_here": loaded}

    # prediction -------------------------------------------------------------------------
    @app.post("/v1/models/{name}/predict", tags=["predict"], responses={
        200: {"model": PredictResponse}, **PREDICT_ERRORS},
        openapi_extra=_json_body(PredictRequest))
    async def predict(name: str, request: Request) -> Response:
        check_model_name(name)
        body = await _parsed(request, PredictRequest)
        return _answer(await serving.predict(name, body.records, body.request_key))

    async def _invocations(name: str, payload: Any, key: str | None) -> Response:
        st = serving.state(check_model_name(name))
        if st.stable is None:
            raise NotFoundError(f"Model {name!r} has no deployed version.")
        columns = serving.model(name, st.stable).columns
        records = mlflow_records(payload, columns)
        if not records:
            raise dep.InvalidRequestError("No records to score.")
        a = await serving.predict(name, records, key)
        return _answer(a, {"predictions": a.predictions})

    @app.post("/v1/models/{name}/invocations", tags=["predict"], responses=PREDICT_ERRORS,
              openapi_extra=_json_body())
    async def invocations(name: str, request: Request) -> Response:
        return await _invocations(name, await _parsed(request),
                                  request.headers.get("x-request-key"))

    @app.post("/invocations", tags=["predict"], responses=PREDICT_ERRORS,
              openapi_extra=_json_body())
    async def default_invocations(request: Request) -> Response:
        return await _invocations(_default_model(serving.settings), await _parsed(request),
                                  request.headers.get("x-request-key"))

    @app.post("/v1/models/{name}/feedback", tags=["predict"], responses=ERRORS)
    def feedback(name: str, body: FeedbackRequest) -> dict[str, Any]:
        check_model_name(name)
        return serving.feedback(name, body.request_id, body.actual)

    @app.get("/v1/models/{name}/scorecard", tags=["predict"], responses=ERRORS)
    def scorecard(name: str) -> dict[str, Any]:
        _, mv = resolve(check_model_name(name))
        return serving.scorecard(name, mv.task)

    @app.post("/v1/models/{name}/evaluate", tags=["models"], responses=PREDICT_ERRORS)
    def evaluate(name: str, body: EvaluateRequest) -> dict[str, Any]:
        check_model_name(name)
        ref = f"{name}:{body.version}" if body.version else name
        if body.version is None:
            st = serving.state(name, fresh=True)
            ref = f"{name}:{st.stable}" if st.stable else name
        with serving.evaluation_slot():
            return evaluate_records(serving, ref, body.records, body.target)

    @app.post("/v1/models/compare", tags=["models"], responses=PREDICT_ERRORS)
    def compare(body: CompareRequest) -> dict[str, Any]:
        with serving.evaluation_slot():
            return _compare(serving, body)

    def _compare(serving: Serving, body: CompareRequest) -> dict[str, Any]:
        rows = []
        for ref in body.versions:
            name, mv = resolve(ref)
            row = {"ref": ref, "model": name, "version": mv.version, "task": mv.task,
                   "metric": mv.metric, "score": mv.score, "metrics": mv.metrics}
            if body.records:
                row["evaluation"] = evaluate_records(serving, f"{name}:{mv.version}",
                                                     body.records, body.target)
            rows.append(row)
        return {"versions": rows}

    @app.post("/v1/models/{name}/load", tags=["models"], responses=ERRORS)
    def load(name: str, body: LoadRequest | None = None) -> dict[str, Any]:
        _, mv = resolve(f"{check_model_name(name)}:{body.version}" if body and body.version
                        else name)
        serving.warm(name, mv.version)
        return {"model": name, "version": mv.version, "loaded": serving.cache.loaded()}

    @app.post("/v1/models/{name}/unload", tags=["models"], responses=ERRORS)
    def unload(name: str, body: LoadRequest | None = None) -> dict[str, Any]:
        check_model_name(name)
        freed = serving.cache.unload(name, body.version if body else None)
        return {"model": name, "unloaded": freed, "loaded": serving.cache.loaded()}

    # datasets ---------------------------------------------------------------------------
    @app.get("/v1/datasets", tags=["datasets"])
    def datasets() -> list[dict[str, Any]]:
        from core.data.datasets import list_datasets

        return [{"id": d.id, "name": d.name, "fingerprint": d.fingerprint, "rows": d.n_rows,
                 "columns": d.n_cols, "size_bytes": d.size_bytes,
                 "created_at": d.created_at.isoformat()} for d in list_datasets()]

    @app.post("/v1/datasets", tags=["datasets"], responses=ERRORS, openapi_extra={
        "requestBody": {"content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}}}}}}})
    async def upload(request: Request, name: str | None = None,
                     filename: str | None = None,
                     decimal: Literal["auto", ".", ","] = "auto") -> Response:
        from starlette.concurrency import run_in_threadpool

        from core.data.datasets import ingest_bytes

        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise dep.InvalidRequestError("Send the table as a form field named `file`.")
            raw = await upload.read()
            filename = filename or upload.filename or "upload.csv"
        else:
            raw = await request.body()
            if not filename:
                filename = "upload.parquet" if raw[:4] == b"PAR1" else "upload.csv"
        if not raw:
            raise dep.InvalidRequestError("The request body is empty: send a CSV or Parquet "
                                          "table.")
        stored = await run_in_threadpool(ingest_bytes, raw, filename, name=name,
                                         decimal=decimal)
        d = stored.dataset
        return _json({"id": d.id, "name": d.name, "fingerprint": d.fingerprint,
                      "rows": d.n_rows, "columns": d.n_cols, "created": stored.created,
                      "warnings": d.warnings}, 201 if stored.created else 200)

    # deployments ------------------------------------------------------------------------
    def _deployment_doc(name: str) -> dict[str, Any]:
        st = serving.state(name, fresh=True)
        doc = st.to_dict()
        live = {}
        for label, v in (("stable", st.stable), ("candidate", st.candidate)):
            if v is not None:
                since = st.step_started_at if label == "candidate" else None
                live[label] = {"version": v, **stats_since(name, v, since).summary(),
                               "load_error": serving.cache.failed.get((name, v))}
        doc["live"] = live
        doc["history"] = dep.history(name, limit=20)
        return doc

    @app.get("/v1/deployments/{name}", tags=["deployments"], responses=ERRORS)
    def get_deployment(name: str) -> dict[str, Any]:
        check_model_name(name)
        serving.flush()
        return _deployment_doc(name)

    @app.post("/v1/deployments/{name}", tags=["deployments"], responses=ERRORS)
    def post_deployment(name: str, body: DeployRequest) -> dict[str, Any]:
        check_model_name(name)
        dep.deploy(name, body.version, body.percent, mode=body.mode, steps=body.steps,
                   guard_rails=body.guard_rails, auto_advance=body.auto_advance,
                   reason=body.reason, actor="api", warm=serving.warm)
        serving.forget(name)
        return _deployment_doc(name)

    @app.post("/v1/deployments/{name}/promote", tags=["deployments"], responses=ERRORS)
    def post_promote(name: str, body: ReasonRequest | None = None) -> dict[str, Any]:
        check_model_name(name)
        serving.flush()
        st = serving.state(name, fresh=True)
        metrics = _metrics_now(name, st)
        dep.promote(name, actor="api", reason=body.reason if body else "", metrics=metrics,
                    expect_candidate=st.candidate)  # the one these metrics describe
        serving.forget(name)
        return _deployment_doc(name)

    @app.post("/v1/deployments/{name}/rollback", tags=["deployments"], responses=ERRORS)
    def post_rollback(name: str, body: ReasonRequest | None = None) -> dict[str, Any]:
        check_model_name(name)
        st = serving.state(name, fresh=True)
        dep.rollback(name, actor="api", reason=body.reason if body else "",
                     metrics=_metrics_now(name, st), expect_candidate=st.candidate)
        serving.forget(name)
        return _deployment_doc(name)

    # jobs, retraining, schedules, monitoring and alerts (their own modules, same app) ----
    from app.api_jobs import router as jobs_router
    from app.api_monitor import router as monitor_router

    app.include_router(jobs_router, responses=ERRORS)
    app.include_router(monitor_router, responses=ERRORS)

    # metrics ----------------------------------------------------------------------------
    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(prometheus_text(serving),
                                 media_type="text/plain; version=0.0.4")

    return app


def _metrics_now(name: str, st: dep.DeploymentState) -> dict[str, Any]:
    out = {}
    for label, v in (("stable", st.stable), ("candidate", st.candidate)):
        if v is not None:
            s = stats_since(name, v, st.step_started_at).summary()
            s.pop("predictions", None)
            out[label] = {"version": v, **s}
    return out


_DEFAULT: dict[str, Any] = {"name": None, "at": 0.0}


def _default_model(settings: Any) -> str:
    """WORKBENCH_DEFAULT_MODEL, else the only deployed model (looked up at most once a
    second: this is on the /invocations hot path)."""
    name = settings.default_model
    if name:
        return name
    now = time.monotonic()
    if _DEFAULT["name"] and now - _DEFAULT["at"] < 1.0:
        return _DEFAULT["name"]
    deployed = [m["name"] for m in list_models() if "production" in m["aliases"]]
    if len(deployed) == 1:
        _DEFAULT.update(name=deployed[0], at=now)
        return deployed[0]
    raise NotFoundError("/invocations needs a default model: set WORKBENCH_DEFAULT_MODEL or "
                        "use /v1/models/{name}/invocations "
                        f"({len(deployed)} models are deployed).")


def _warm_deployed(serving: Serving) -> None:
    """Load the stable and candidate versions of deployed models before taking traffic."""
    try:
        names = [m["name"] for m in list_models() if "production" in m["aliases"]]
    except Exception:
        log.exception("could not list models to warm")
        return
    for name in names[: serving.cache.size]:
        try:
            st = serving.state(name, fresh=True)
            for v in (st.stable, st.candidate):
                if v is not None:
                    serving.warm(name, v)
        except Exception as exc:
            log.warning("could not warm %s: %s", name, exc)


def prometheus_text(serving: Serving) -> str:
    lines = ["# HELP workbench_requests_total Prediction requests per model version.",
             "# TYPE workbench_requests_total counter"]
    totals = dict(serving.telemetry.totals)
    for (name, v), c in sorted(totals.items()):
        lines.append(f'workbench_requests_total{{model="{name}",version="{v}"}} {c.count}')
    lines += ["# HELP workbench_request_errors_total Failed predictions per model version.",
              "# TYPE workbench_request_errors_total counter"]
    for (name, v), c in sorted(totals.items()):
        lines.append(f'workbench_request_errors_total{{model="{name}",version="{v}"}} '
                     f'{c.errors}')
    lines += ["# HELP workbench_request_outcomes_total Requests that reached a model version, "
              "by outcome: ok, failed (the version could not score them), rejected (records "
              "not matching its schema).",
              "# TYPE workbench_request_outcomes_total counter"]
    for (name, v), c in sorted(totals.items()):
        for outcome, n in (("ok", c.ok), ("failed", c.errors), ("rejected", c.rejected)):
            lines.append(f'workbench_request_outcomes_total{{model="{name}",version="{v}",'
                         f'outcome="{outcome}"}} {n}')
    lines += ["# HELP workbench_request_latency_ms Prediction latency in milliseconds.",
              "# TYPE workbench_request_latency_ms histogram"]
    for (name, v), c in sorted(totals.items()):
        cum = 0
        for edge, n in zip([*BUCKETS_MS, "+Inf"], c.hist, strict=True):
            cum += n
            lines.append(f'workbench_request_latency_ms_bucket{{model="{name}",version="{v}",'
                         f'le="{edge}"}} {cum}')
        lines.append(f'workbench_request_latency_ms_sum{{model="{name}",version="{v}"}} '
                     f'{c.latency_sum_ms:.3f}')
        lines.append(f'workbench_request_latency_ms_count{{model="{name}",version="{v}"}} '
                     f'{c.scored}')
    lines += ["# HELP workbench_models_loaded Versions held in memory.",
              "# TYPE workbench_models_loaded gauge",
              f"workbench_models_loaded {len(serving.cache.loaded())}"]
    return "\n".join(lines) + "\n"


def app_factory() -> FastAPI:
    """uvicorn's factory entry point (`workbench serve`): one BLAS/OpenMP thread per predict."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    return create_app(tune_gc=True)
