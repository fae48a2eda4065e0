"""The API's composition root: `create_app` parses settings, builds the store and the serving
runtime, installs the middleware and error handlers and includes the routers."""

from __future__ import annotations

import gc
import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app.api.errors import ERRORS, install_handlers
from app.api.guard import Guard
from app.api.hot_lane import ServingAPI
from app.api.routers import audit as audit_routes
from app.api.routers import (
    auth,
    datasets,
    deployments,
    health,
    jobs,
    models,
    monitor,
    parity,
    predict,
    stages,
    v2,
)
from app.api.routers import onnx as onnx_routes
from app.api.routers import tracking as tracking_routes
from app.api.version import VERSION
from app.request_policy import RequestPolicy
from core.deploy.metrics import mark_process_dead
from core.deploy.periodic import Periodic
from core.deploy.service import Serving
from core.identity.directory import Directory
from core.settings import get_settings
from core.store.db import Database

log = logging.getLogger("workbench.api")


def create_app(serving: Serving | None = None, *, background: bool = True,
               tune_gc: bool = False, db: Database | None = None,
               hot_lane: bool = True) -> FastAPI:
    """A new app: the API's composition root (settings parsed, store built, runtime made).

    `background=False` leaves telemetry flushing and guard rails to explicit
    `app.state.serving.tick()` calls (tests); `tune_gc` is for a server process (see
    app_factory); `hot_lane=False` sends the prediction routes through the whole ASGI stack
    too (app/api/hot_lane.py; tests compare the two)."""
    settings = serving.settings if serving is not None else get_settings()
    db = db or (serving.db if serving is not None else Database(settings=settings))
    serving = serving or Serving(db, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(_warm_deployed, serving)
        await run_in_threadpool(_load_directory, directory)  # public routes read it cached
        # Loaded pipelines are long-lived: keep them out of the cyclic collector's scans, and
        # collect young objects less often (fewer pauses on the request path).
        if tune_gc:
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 20, 20)
        if background:
            serving.start()
            directory_loop.start()
        try:
            yield
        finally:
            directory_loop.stop()
            await run_in_threadpool(serving.stop)
            db.dispose()
            mark_process_dead(os.getpid())  # this worker's live gauges leave the scrape

    app = ServingAPI(title="ML Workbench API", version=VERSION, lifespan=lifespan,
                  description="Models, predictions, feedback and deployments (canary, shadow, "
                              "guard rails). Errors: {\"error\": code, \"detail\": message}.")
    app.state.serving = serving
    app.state.db = db
    # who is calling and may they (app/api/roles.py); users and keys cached per process
    directory = Directory(db, settings.state_refresh_s)
    directory_loop = Periodic("directory-refresh", settings.state_refresh_s / 4,
                              directory.keep_fresh)
    app.add_middleware(Guard, settings=settings, directory=directory)
    # outermost: Host, Origin and Content-Type are checked before auth (app/request_policy.py)
    app.add_middleware(RequestPolicy, settings=settings)
    install_handlers(app)
    if hot_lane:  # the prediction routes' short way, behind the same policy and guard
        app.use_hot_lane(lambda inner: RequestPolicy(
            Guard(inner, settings=settings, directory=directory), settings=settings))
    # The prediction routes first: FastAPI matches a request against the included routers in
    # order (and again inside the matching one), so the hot path is tried before the rest.
    for router in (predict.router, v2.router, health.router, models.router, datasets.router,
                   deployments.router):
        app.include_router(router)
    # jobs, retraining, schedules, monitoring and alerts
    app.include_router(jobs.router, responses=ERRORS)
    app.include_router(monitor.router, responses=ERRORS)
    app.include_router(stages.router)  # registry lifecycle: stage moves
    app.include_router(parity.router, responses=ERRORS)  # API parity: what CLI and pages do
    app.include_router(tracking_routes.router, responses=ERRORS)  # experiments and runs
    app.include_router(audit_routes.router)  # the audit log, read-only
    app.include_router(auth.router)  # sign-in, who am I (app/api/roles.py: who may do what)
    app.include_router(onnx_routes.router)  # ONNX export with its parity check
    return app


def _load_directory(directory: Directory) -> None:
    """Users and keys before taking traffic, so `/health` (which never waits on the store)
    knows a signed-in caller from the first probe; a store that cannot say is logged."""
    try:
        directory.refresh()
    except Exception:
        log.exception("could not load users and keys")


def _warm_deployed(serving: Serving) -> None:
    """Load the stable and candidate versions of deployed models before taking traffic
    (blocking: the lifespan runs it in a thread)."""
    try:
        names = serving.states.deployed()
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


def app_factory() -> FastAPI:
    """uvicorn's factory entry point (`workbench serve`): one BLAS/OpenMP thread per predict."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    return create_app(tune_gc=True)
