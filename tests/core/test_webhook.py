"""Alert webhooks cannot reach the server's own network (issue 12, defect 7): loopback, cloud
metadata, private ranges, numeric disguises and names resolving inward are refused when the
webhook is configured and again when it is called; the allow setting lets a local receiver in;
the connection goes to the address that was checked; redirects are not followed.

A real HTTP server on 127.0.0.1 records what reaches it. DNS answers for made-up names come
from a replaced socket.getaddrinfo (the resolver is the outer edge; nothing here needs the
internet)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.cli_common import session
from core.deploy.webhook import UnsafeWebhookError, post_webhook
from core.monitor import alerts
from core.store import MonitorConfig
from tests.factories import register

REAL_GETADDRINFO = socket.getaddrinfo


class Receiver(http.server.ThreadingHTTPServer):
    """Records every request; answers 200, or 302 for paths starting with /redirect."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.hits.append({"path": self.path, "host": self.headers["host"],
                                      "body": body})
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/moved")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def model(home: Path) -> str:
    register("hooked")
    return "hooked"


def set_config(model: str, **fields: Any) -> MonitorConfig:
    with session() as s:
        return alerts.set_config(model, session=s, **fields)


def get_config(model: str) -> MonitorConfig:
    with session() as s:
        return alerts.get_config(model, session=s)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Made-up names → the addresses listed here; every lookup is counted in `dns["calls"]`."""
    answers: dict[str, list[str]] = {"calls": []}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        answers["calls"].append(host)
        if host in answers:
            if not answers[host]:
                raise socket.gaierror(socket.EAI_NONAME, "no longer resolves")
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            out = [(family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "",
                    (a, port) if ":" not in a else (a, port, 0, 0)) for a in answers[host]]
            answers[host] = answers.get(f"then:{host}", answers[host])  # a rebinding name
            return out
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


INWARD = ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook",
          "http://0x7f000001:{port}/hook", "http://2130706433:{port}/hook",
          "http://127.1:{port}/hook", "http://017700000001:{port}/hook",
          "http://[::1]:{port}/hook", "http://[::ffff:127.0.0.1]:{port}/hook",
          "http://0.0.0.0:{port}/hook", "http://169.254.169.254/latest/meta-data/",
          "http://10.20.30.40/hook", "http://192.168.0.1/hook", "http://100.64.0.1/hook",
          "http://224.0.0.1/hook", "http://[fe80::1]/hook", "http://[fd00::1]/hook",
          "https://127.0.0.1:{port}/hook"]


def test_internal_addresses_are_refused_when_configured_and_when_called(
        model: str, receiver: Receiver) -> None:
    for template in INWARD:
        url = template.format(port=receiver.port)
        with pytest.raises(UnsafeWebhookError,
                           match="WORKBENCH_WEBHOOK_ALLOW_PRIVATE") as refused:
            set_config(model, webhook_url=url)
        assert refused.value.http_status == 422 and url in refused.value.message
        assert get_config(model).webhook_url is None
        assert post_webhook(url, {"id": 1}) is None, url  # e.g. stored before this check
        assert receiver.hits == [], url


def test_names_resolving_inward_are_refused(model: str, receiver: Receiver,
                                            dns: dict[str, list[str]]) -> None:
    dns.update({"hooks.example": ["127.0.0.1"], "intranet.example": ["10.1.2.3"],
                "mixed.example": ["93.184.216.34", "10.1.2.3"],
                "metadata.example": ["169.254.169.254"]})
    for name in ("hooks", "intranet", "mixed", "metadata"):
        url = f"http://{name}.example:{receiver.port}/hook"
        with pytest.raises(UnsafeWebhookError, match=f"{name}.example resolves to"):
            set_config(model, webhook_url=url)
        assert post_webhook(url, {"id": 1}) is None
    assert receiver.hits == []
    # a name that does not resolve yet is stored (it is checked at every call)
    dns["later.example"] = []
    assert set_config(model, webhook_url="https://later.example/h").webhook_url \
        == "https://later.example/h"


def test_the_api_answers_422_for_an_unsafe_webhook(model: str) -> None:
    with TestClient(create_app(background=False)) as client:
        r = client.post(f"/v1/models/{model}/monitor/config",
                        json={"webhook_url": "http://169.254.169.254/latest/meta-data/"})
    assert r.status_code == 422
    assert r.json()["error"] == "unsafe_webhook" and "link-local" in r.json()["detail"]


def test_the_allow_setting_lets_a_local_receiver_in_at_the_checked_address(
        model: str, receiver: Receiver, dns: dict[str, list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_WEBHOOK_ALLOW_PRIVATE", "1")
    # DNS rebinding: the first answer is checked; any later lookup would get nothing
    dns.update({"hooks.example": ["127.0.0.1"], "then:hooks.example": []})
    url = f"http://hooks.example:{receiver.port}/alert?team=ml"
    assert post_webhook(url, {"id": 7, "model": model}) == 200
    assert dns["calls"].count("hooks.example") == 1  # resolved once, connected to that address
    (hit,) = receiver.hits
    assert hit["path"] == "/alert?team=ml" and hit["host"] == f"hooks.example:{receiver.port}"
    assert json.loads(hit["body"]) == {"id": 7, "model": model}
    assert set_config(model, webhook_url=f"http://127.0.0.1:{receiver.port}/a").webhook_url
    # link-local (metadata services) and multicast stay refused even so
    for url in ("http://169.254.169.254/", "http://224.0.0.1/", "http://0.0.0.0/"):
        with pytest.raises(UnsafeWebhookError):
            set_config(model, webhook_url=url)
        assert post_webhook(url, {}) is None


def test_redirects_are_reported_not_followed(receiver: Receiver,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_WEBHOOK_ALLOW_PRIVATE", "1")
    assert post_webhook(f"http://127.0.0.1:{receiver.port}/redirect", {"x": 1}) == 302
    assert [h["path"] for h in receiver.hits] == ["/redirect"]


def test_https_speaks_tls_to_the_checked_address(receiver: Receiver,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver speaks plain HTTP: the TLS handshake fails, no request is made."""
    monkeypatch.setenv("WORKBENCH_WEBHOOK_ALLOW_PRIVATE", "1")
    assert post_webhook(f"https://127.0.0.1:{receiver.port}/hook", {"x": 1}) is None
    assert receiver.hits == []
