"""The prediction routes' short way through the ASGI stack.

A request passes some fifteen ASGI layers between uvicorn and a route (Starlette's error and
exception middleware, FastAPI's body-limit and telemetry wrappers, the exit stack, two
routers, the request handler): about 0.07 ms of CPU per request on this machine, a fifth of
a 1-row prediction's. `ServingAPI` answers the prediction routes (`hot_routes()`, POST only)
through the same request policy and guard (their own instances: same settings, same
directory of users and keys) straight to the route's endpoint, with the app's own exception
handlers; every other request, and these routes under a root path, take the whole stack.

The routes stay declared on their routers (OpenAPI, `app.routes`, the role table read by
`Guard`); this lane only picks their endpoints, so both ways answer alike
(tests/app/test_hot_lane.py compares them response by response). What the lane skips besides
dispatch: FastAPI's body-size middleware (no FastAPI limit is configured; `Guard` enforces
ours) and FastAPI's own OpenTelemetry middleware (off unless configured; the workbench's
Prometheus metrics count these requests either way)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[..., Awaitable[Response]]


def hot_routes() -> list[tuple[re.Pattern[str], Endpoint]]:
    """(path pattern with the endpoint's path parameters as named groups, endpoint): the
    prediction routes, declared as data. A segment is what Starlette's `{name}` matches."""
    from app.api.routers import predict, v2

    seg = r"[^/]+"
    return [(re.compile(rf"/v2/models/(?P<name>{seg})/infer"), v2.infer),
            (re.compile(rf"/v2/models/(?P<name>{seg})/versions/(?P<version>{seg})/infer"),
             v2.infer_version),
            (re.compile(r"/invocations"), predict.default_invocations),
            (re.compile(rf"/v1/models/(?P<name>{seg})/predict"), predict.predict),
            (re.compile(rf"/v1/models/(?P<name>{seg})/invocations"), predict.invocations)]


class ServingAPI(FastAPI):
    """FastAPI with the prediction routes' short way (`use_hot_lane`)."""

    _hot: Any = None  # the policy and guard around `_call_endpoint`, once `use_hot_lane` ran
    _hot_routes: tuple[tuple[re.Pattern[str], Endpoint], ...] = ()

    def use_hot_lane(self, wrap: Callable[[Any], Any]) -> None:
        """`wrap(app)` is the request policy and guard around an ASGI app, as the whole
        stack has them; the endpoints are called inside it."""
        self._hot_routes = tuple(hot_routes())
        self._hot = wrap(self._call_endpoint)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (self._hot is not None and scope["type"] == "http" and scope["method"] == "POST"
                and not scope.get("root_path") and not self.root_path):
            path = scope["path"]
            for pattern, endpoint in self._hot_routes:
                m = pattern.fullmatch(path)
                if m is not None:
                    scope["app"] = self
                    scope["workbench.endpoint"] = (endpoint, m.groupdict())
                    return await self._answer(scope, receive, send)
        await super().__call__(scope, receive, send)

    async def _answer(self, scope: dict, receive: Any, send: Any) -> None:
        """What Starlette's ServerErrorMiddleware does for the rest: an exception no handler
        took becomes the 500 handler's answer (when nothing was sent yet)."""
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._hot(scope, receive, tracking_send)
        except Exception as exc:
            handler = self.exception_handlers.get(Exception) \
                or self.exception_handlers.get(500)
            if handler is None or started:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)

    async def _call_endpoint(self, scope: dict, receive: Any, send: Any) -> None:
        """The route's endpoint, its exceptions answered by the app's handlers as Starlette's
        ExceptionMiddleware answers them (the catch-all 500 handler is `_answer`'s)."""
        endpoint, params = scope.pop("workbench.endpoint")
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request=request, **params)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None
