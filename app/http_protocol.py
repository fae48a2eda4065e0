"""uvicorn's httptools protocol with each response's head and body sent in one write.

uvicorn writes a response's status line and headers (`http.response.start`) and its body
(`http.response.body`) with two `transport.write` calls. On an idle socket each is its own
`send()` and, with TCP_NODELAY, its own TCP segment: two system calls on the server and often
two wake-ups of the client per response. At one row a request's whole answer is a few hundred
bytes, so that second send is a measurable share of the server's and the client's CPU
(docs/serving/session19.md).

`CoalescingTransport` holds a header block (bytes ending in a blank line) until the next
write on the same connection, which is nearly always the body, written in the same step of
the event loop, and sends both as one. Whatever else is written goes out at once, in order.
If no write follows (a streaming response that computes its first chunk, a `100 Continue`),
the held bytes go out on the loop's next iteration, so nothing waits on the application."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A transport whose `write` of a header block waits for the next write (at most one loop
    iteration); everything else is the wrapped transport's own."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif isinstance(data, bytes) and data.endswith(_HEAD_END):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is held (no-op when nothing is)."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading...
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport` (`uvicorn.Config(http=...)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
