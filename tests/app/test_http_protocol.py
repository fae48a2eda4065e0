"""The serving protocol sends a response's head and body in one write, and still answers
every kind of response correctly: plain, streamed (the head goes out before the body exists),
`100 Continue`, keep-alive, HEAD, and a closed connection."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from app.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.factories import free_port


class RecordingTransport:
    """The socket's side of asyncio's transport: what was written, in which calls."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_head_and_body_go_out_in_one_write() -> None:
    async def go() -> list[bytes]:
        raw = RecordingTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(HEAD)
        assert raw.writes == []  # held for the body
        t.write(b"ok")
        await asyncio.sleep(0)  # the fallback flush finds nothing held
        return raw.writes

    assert asyncio.run(go()) == [HEAD + b"ok"]


def test_a_head_alone_goes_out_on_the_next_loop_iteration() -> None:
    async def go() -> list[bytes]:
        raw = RecordingTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(HEAD)
        await asyncio.sleep(0)
        return raw.writes

    assert asyncio.run(go()) == [HEAD]


def test_other_writes_pass_at_once_in_order_and_close_sends_what_is_held() -> None:
    async def go() -> RecordingTransport:
        raw = RecordingTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"5\r\nhello\r\n")  # a chunk: not a head
        t.write(memoryview(b"raw"))
        t.write(HEAD)
        assert t.get_write_buffer_size() == len(HEAD)
        t.close()
        return raw

    raw = asyncio.run(go())
    assert raw.writes == [b"5\r\nhello\r\n", b"raw", HEAD] and raw.closed


# -- a real uvicorn server with the protocol ---------------------------------------------------
release = threading.Event()


async def asgi_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/stream":  # the head, then a wait the client ends once it saw it
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
        return
    answer = b"echo:" + body
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi_app, host="127.0.0.1", port=port,
                                          log_level="warning", lifespan="off",
                                          http=CoalescingHttpToolsProtocol))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a content-length (or up to the peer's close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\n" + extra + b"\r\n" + body)


def test_keep_alive_requests_are_answered_whole_and_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i in range(50):
            s.sendall(post(f"n{i}".encode()))
            answer = read_response(s)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert answer.endswith(f"\r\n\r\necho:n{i}".encode())
        s.sendall(post(b"a") + post(b"b"))  # pipelined
        assert read_response(s).endswith(b"echo:a")
        assert read_response(s).endswith(b"echo:b")


def test_a_streamed_head_reaches_the_client_before_the_body_exists(port: int) -> None:
    release.clear()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)  # would time out if the head waited for the body
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head
        release.set()
        rest = head.partition(b"\r\n\r\n")[2]
        while not rest.endswith(b"0\r\n\r\n"):
            rest += s.recv(65536)
        assert rest == b"4\r\nlate\r\n0\r\n\r\n"


def test_expect_100_continue_and_connection_close(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n"
                  b"expect: 100-continue\r\nconnection: close\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"abc")
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break  # the server closed the connection after answering
            got += chunk
        assert got.endswith(b"\r\n\r\necho:abc")
        assert b"connection: close" in got.lower()


def test_head_request_gets_headers_only(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"HEAD /echo HTTP/1.1\r\nhost: t\r\n\r\n")
        s.sendall(post(b"after"))  # the same connection goes on
        first = b""
        while b"\r\n\r\n" not in first:
            first += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        rest = first.partition(b"\r\n\r\n")[2]
        while not rest.endswith(b"echo:after"):
            rest += s.recv(65536)
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
