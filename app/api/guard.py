"""The ASGI guard in front of the routes: the bearer token and the body size limit, checked
before any parsing."""

from __future__ import annotations

import hmac
from typing import Any

from app.api.errors import error
from app.request_policy import UPLOAD_PATH


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
                resp = error(401, "unauthorized", "Send the API token as `Authorization: "
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
                    resp = error(413, "too_large", f"The request body exceeds {limit} bytes.")
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
                resp = error(413, "too_large", f"The request body exceeds {limit} bytes.")
                await resp(scope, receive, send)
