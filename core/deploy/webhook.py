"""Alert webhooks that cannot be turned against the server's own network (SSRF), and the one
path every alert's notification takes (`notify`): the monitor's windowed alerts and the guard
loop's GUARD alerts alike. It sits in `core.deploy` because the guard loop, below the
monitor, sends through it too.

Whoever may configure a model's monitoring could otherwise make the server POST to
127.0.0.1, the cloud metadata service (169.254.169.254) or anything on the private network,
also under disguises (`0x7f000001`, `2130706433`, `[::ffff:127.0.0.1]`, a public name that
resolves to 10.x). So the host name is resolved, every address it resolves to is checked, and
the connection goes to the checked address itself: resolving again to connect would let DNS
rebinding swap the answer between the check and the connect. The request is plain
`http.client` (which follows no redirects), so a 3xx is reported as the status it is.

Refused always: unspecified, link-local (metadata services), multicast and reserved addresses.
Refused unless WORKBENCH_WEBHOOK_ALLOW_PRIVATE=1: loopback and private ranges (RFC 1918, ULA,
shared address space), for an alert receiver that lives on the private network.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import threading
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from core.errors import WorkbenchError
from core.settings import get_settings
from core.store import Alert

log = logging.getLogger("workbench.alerts")
TIMEOUT_S = 3.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeWebhookError(WorkbenchError):
    code = "unsafe_webhook"
    http_status = 422


class WebhookRefused(OSError):
    """Raised at connect time: the host resolves to an address webhooks may not reach."""


def address_problem(ip: IPAddress, allow_private: bool) -> str | None:
    """Why a webhook may not connect to `ip`, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for label, bad in (("an unspecified", ip.is_unspecified), ("a link-local", ip.is_link_local),
                       ("a multicast", ip.is_multicast), ("a reserved", ip.is_reserved)):
        if bad:
            return f"{ip}, {label} address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip}, a loopback address"
    if ip.is_private or not ip.is_global:
        return f"{ip}, a private address"
    return None


def resolve_checked(host: str, port: int, allow_private: bool
                    ) -> list[tuple[int, tuple[Any, ...]]]:
    """(family, sockaddr) for every address `host` resolves to, once; WebhookRefused if any
    of them may not be reached (a name that also points inward is refused outright)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        problem = address_problem(ip, allow_private)
        if problem is not None:
            raise WebhookRefused(f"{host} resolves to {problem}")
    return [(family, sockaddr) for family, _t, _p, _n, sockaddr in infos]


def _connect_checked(host: str, port: int, timeout: float | None, allow_private: bool
                     ) -> socket.socket:
    """A TCP connection to one of the addresses just checked (never a fresh lookup)."""
    last: OSError = WebhookRefused(f"{host} resolves to no address")
    for family, sockaddr in resolve_checked(host, port, allow_private):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last


class _CheckedHTTP(http.client.HTTPConnection):
    allow_private = False

    def connect(self) -> None:
        self.sock = _connect_checked(self.host, self.port, self.timeout, self.allow_private)


class _CheckedHTTPS(http.client.HTTPSConnection):
    allow_private = False

    def connect(self) -> None:
        sock = _connect_checked(self.host, self.port, self.timeout, self.allow_private)
        # the certificate is verified against the name, though we connected to the address
        self.sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)


def _parts(url: str) -> SplitResult:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookError(f"The webhook {url!r} must be an http:// or https:// URL.")
    try:
        parts.port  # noqa: B018 - raises for a port that is no number or out of range
    except ValueError:
        raise UnsafeWebhookError(f"The webhook {url!r} has an invalid port.") from None
    if not parts.hostname:
        raise UnsafeWebhookError(f"The webhook {url!r} names no host.")
    return parts


def check_webhook_url(url: str) -> None:
    """When a webhook is configured: http(s) only, and no host that resolves, now, to an
    address webhooks may not reach (422 `unsafe_webhook`). A name that does not resolve yet
    is accepted: every call checks again."""
    parts = _parts(url)
    allow = get_settings().webhook_allow_private
    try:
        resolve_checked(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                        allow)
    except WebhookRefused as exc:
        more = "" if allow else (" If your alert receiver is on the private network, set "
                                 "WORKBENCH_WEBHOOK_ALLOW_PRIVATE=1.")
        raise UnsafeWebhookError(
            f"The webhook {url!r} is refused: {exc}. Alerts may not call loopback, private, "
            f"link-local or multicast addresses (internal services, cloud metadata); use the "
            f"receiver's public address.{more}") from None
    except (OSError, UnicodeError):
        pass  # not resolvable from here now; post_webhook checks at every call


def _without_credentials(url: str) -> str:
    """The URL with any `user:password@` removed, for logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def post_webhook(url: str, payload: dict[str, Any]) -> int | None:
    """POST JSON to an http(s) URL with a short timeout, following no redirects, connecting
    only to checked addresses. Runs off the serving path (a daemon thread); failures and
    refusals are logged, never raised. Returns the HTTP status, or None if nothing answered."""
    shown = _without_credentials(url)  # what the log may show
    try:
        parts = _parts(url)
    except UnsafeWebhookError as exc:
        log.warning("webhook refused: %s", exc.message.replace(url, shown))
        return None
    cls = _CheckedHTTPS if parts.scheme == "https" else _CheckedHTTP
    conn = cls(parts.hostname, parts.port, timeout=TIMEOUT_S)
    conn.allow_private = get_settings().webhook_allow_private
    headers = {"Content-Type": "application/json"}
    if parts.username is not None:
        basic = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    url = shown  # from here on the URL only goes to logs
    try:
        conn.request("POST", target, body=json.dumps(payload).encode(), headers=headers)
        with conn.getresponse() as response:
            status = response.status
        if status >= 300:
            log.warning("webhook %s answered %s", url, status)
        return status
    except WebhookRefused as exc:
        log.warning("webhook %s refused: %s", url, exc)
        return None
    except (OSError, http.client.HTTPException, UnicodeError) as exc:
        log.warning("webhook %s failed: %s", url, exc)
        return None
    finally:
        conn.close()


def alert_payload(alert: Alert, actions: list[str]) -> dict[str, Any]:
    """What a receiver gets for an alert that just opened."""
    return {"id": alert.id, "model": alert.model_name, "version": alert.version,
            "kind": alert.kind, "severity": alert.severity, "message": alert.message,
            "actions": actions}


def notify(url: str | None, alert: Alert, actions: list[str]) -> threading.Thread | None:
    """POST the alert to the model's webhook, if it has one, off the caller's path (a daemon
    thread: a slow receiver never holds up a guard loop or a monitor pass). Call it after the
    alert was committed, so a receiver never hears of an alert that was rolled back."""
    if not url:
        return None
    thread = threading.Thread(target=post_webhook, args=(url, alert_payload(alert, actions)),
                              daemon=True, name="alert-webhook")
    thread.start()
    return thread
