"""Who may drive the API from a browser: the Host allow-list, the Origin check and the content
types each writing route accepts, as one plain ASGI layer in front of everything else.

Why: with no token set (the default, single-user on 127.0.0.1), any web page the operator
opens can send a "simple" cross-site POST (a form, or `fetch` with `text/plain`) to the API,
and a DNS-rebinding page can even read the answers. Three rules close that:

- **Host** must be one this server answers to: the address it listens on, `localhost`,
  `127.0.0.1`, `::1`, and anything in WORKBENCH_ALLOWED_HOSTS (`*` allows any; `*.example.com`
  a domain). Otherwise 400 `bad_host` (DNS rebinding sends the attacker's name).
- **Origin**, when a browser sends one on a POST/PUT/PATCH/DELETE, must be this server's own
  (same host and port as the Host header) or listed in WORKBENCH_ALLOWED_ORIGINS. Otherwise
  403 `foreign_origin`; `Origin: null` (sandboxed frames, file pages) is foreign too.
  Callers that send no Origin (curl, scripts, the CLI) are not browsers and pass.
- **Content-Type** of a POST/PUT/PATCH: `application/json` everywhere but the dataset upload
  (`POST /v1/datasets`: CSV, Parquet or multipart). A body-less request with no Content-Type
  (`curl -X POST .../cancel`) passes: it carries nothing to misread. Otherwise 415
  `unsupported_media_type`. JSON is not a type a cross-site form or simple request can send.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response

from app.jsonout import dumps_bytes

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("", "0.0.0.0", "::")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON = "application/json"
# POST /v1/datasets takes a table: CSV or Parquet bytes, or a multipart form field `file`.
UPLOAD_PATH = "/v1/datasets"
UPLOAD_TYPES = ("text/csv", "application/octet-stream", "application/vnd.apache.parquet",
                "multipart/form-data")
DEFAULT_PORTS = {"http": 80, "https": 443}


def split_list(value: str) -> list[str]:
    """A comma-separated setting → its non-empty, stripped entries."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _host_port(value: str) -> tuple[str, int | None]:
    """`name[:port]`, `[v6]:port` or a bare IPv6 address → (lower-case name, port or None);
    a port that is no number is -1, which matches nothing."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") > 1:
        name, port = value, ""
    else:
        name, _, port = value.partition(":")
    try:
        return name.rstrip("."), int(port) if port else None
    except ValueError:
        return name.rstrip("."), -1


def _host_name(value: str) -> str:
    return _host_port(value)[0]


def allowed_hosts(settings: Any) -> list[str]:
    """The names this server answers to: its bind address (for a wildcard bind, the
    machine's host name), the loopback names, and WORKBENCH_ALLOWED_HOSTS."""
    bind = (settings.bind_host or "").strip()
    names = [*LOOPBACK_NAMES]
    if bind in WILDCARD_BINDS:
        names.append(socket.gethostname())
    else:
        names.append(bind)
    names += split_list(settings.allowed_hosts)
    return list(dict.fromkeys(_host_name(n) if n != "*" else n for n in names))


def _host_allowed(name: str, allowed: list[str]) -> bool:
    for pattern in allowed:
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _json_error(status: int, code: str, detail: str) -> Response:
    return Response(dumps_bytes({"error": code, "detail": detail}), status_code=status,
                    media_type="application/json")


class RequestPolicy:
    """The three checks above, before authentication and before any body is read."""

    def __init__(self, app: Any, settings: Any) -> None:
        self.app = app
        self.allowed = allowed_hosts(settings)
        self.origins = {o.lower().rstrip("/") for o in split_list(settings.allowed_origins)}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for k, v in scope["headers"]:
            if k in (b"host", b"origin", b"content-type", b"content-length",
                     b"transfer-encoding"):
                headers.setdefault(k, v.decode("latin-1"))
        refusal = self.refusal(scope["method"], scope["path"], headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, receive, send)

    def refusal(self, method: str, path: str, headers: dict[bytes, str]) -> Response | None:
        host = headers.get(b"host", "")
        # /health reveals nothing and load balancers probe it by IP address: always answered
        if path != "/health" and not _host_allowed(_host_name(host), self.allowed):
            return _json_error(400, "bad_host", (
                f"This server does not answer to the Host {host!r} (it answers to "
                f"{', '.join(self.allowed)}). If you reach it by that name, add the name to "
                "WORKBENCH_ALLOWED_HOSTS (comma-separated) and restart it."))
        if method not in UNSAFE_METHODS:
            return None
        origin = headers.get(b"origin")
        if origin is not None and not self._same_origin(origin, host):
            return _json_error(403, "foreign_origin", (
                f"A web page at {origin!r} may not change this server: only its own origin "
                "may. To let a browser app there call it, add the origin to "
                "WORKBENCH_ALLOWED_ORIGINS (comma-separated, e.g. https://app.example.com)."))
        if method in BODY_METHODS:
            return self._media_refusal(method, path, headers)
        return None

    def _same_origin(self, origin: str, host: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return False  # `null`, file:, extensions: never this server
        try:
            origin_port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return False
        name, port = _host_port(host)
        return (parts.hostname, origin_port) == (name, port or DEFAULT_PORTS[parts.scheme])

    @staticmethod
    def _media_refusal(method: str, path: str, headers: dict[bytes, str]) -> Response | None:
        given = headers.get(b"content-type", "")
        media = given.split(";", 1)[0].strip().lower()
        has_body = headers.get(b"content-length", "0").strip() != "0" \
            or b"transfer-encoding" in headers
        accepted = UPLOAD_TYPES if path == UPLOAD_PATH else (JSON,)
        if media in accepted or (not media and not has_body):
            return None
        got = f"Content-Type {given!r}" if given else "no Content-Type"
        if path == UPLOAD_PATH:
            need = ("a table as text/csv, application/octet-stream (CSV or Parquet bytes) or "
                    "multipart/form-data with a field named `file`")
        else:
            need = "a JSON body with Content-Type: application/json"
        return _json_error(415, "unsupported_media_type",
                           f"{method} {path} takes {need}; the request had {got}.")
