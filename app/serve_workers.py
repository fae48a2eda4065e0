"""`workbench serve --workers N` (N > 1): a small supervisor over N worker processes, each
running uvicorn on a listening socket of its own bound with SO_REUSEPORT.

Why not `uvicorn.run(workers=N)`: its workers accept on one listening socket inherited from
its supervisor, and whichever is awake takes the next connection, so 32 keep-alive connections
split 26/6 between two workers (docs/serving/speed.md). With one SO_REUSEPORT socket per
worker the kernel spreads new connections over the workers by a hash of the connection, so
each gets its share. Linux lets only processes of the same user join such a group.

What the supervisor does: checks the port is free (a socket without SO_REUSEPORT, closed at
once, so a second server on the same port fails instead of silently sharing it), starts the
workers, waits until every one has started (a worker that exits first ends the server with
exit code 1 and says which), forwards SIGTERM/SIGINT as SIGTERM and waits for them, and says
on stderr when a worker dies afterwards before starting another (more than RESTARTS_AT_MOST
in RESTART_WINDOW_S end the server instead). A worker also stops when the supervisor is gone
(its stdin, a pipe from the supervisor, reaches end of file), so none is left orphaned.

Where SO_REUSEPORT is missing, `serve` keeps uvicorn's own supervisor (`reuse_port_works`).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

APP = "app.api:app_factory"
START_TIMEOUT_S = 300.0  # a worker loads and warms every deployed model before it counts
STOP_TIMEOUT_S = 30.0  # after SIGTERM: in-flight requests and the last telemetry flush
RESTARTS_AT_MOST, RESTART_WINDOW_S = 5, 60.0
POLL_S = 0.2


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reuse_port_works() -> bool:
    """SO_REUSEPORT exists here and the kernel accepts it (Linux ≥ 3.9, the BSDs, macOS)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


def port_free(host: str, port: int) -> str | None:
    """None when nothing listens on host:port, else why (the OS's message)."""
    with socket.socket(_family(host)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """Bound, not yet listening: uvicorn listens once the app has started, so the kernel
    sends no connection to a worker still loading its models."""
    sock = socket.socket(_family(host))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


# -- the worker --------------------------------------------------------------------------------
def run_worker(host: str, port: int, log_level: str, ready_fd: int, app: str = APP) -> None:
    """One worker: its own socket, uvicorn's Server; one byte on `ready_fd` once it listens."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                os.write(ready_fd, b"1")
                os.close(ready_fd)

    try:
        sock = reuse_port_socket(host, port)
    except OSError as exc:
        print(f"worker {os.getpid()}: cannot listen on {host}:{port}: {exc.strerror or exc}",
              file=sys.stderr)
        raise SystemExit(1) from None
    from app.http_protocol import CoalescingHttpToolsProtocol

    server = Server(uvicorn.Config(app, factory=True, log_level=log_level, access_log=False,
                                   http=CoalescingHttpToolsProtocol))

    def supervisor_gone() -> None:
        sys.stdin.buffer.read()  # end of file: the supervisor exited, however it did
        server.should_exit = True

    threading.Thread(target=supervisor_gone, name="supervisor-watch", daemon=True).start()
    server.run(sockets=[sock])


# -- the supervisor ----------------------------------------------------------------------------
@dataclass
class _Worker:
    proc: subprocess.Popen
    ready_r: int
    ready: bool = False


@dataclass
class Supervisor:
    host: str
    port: int
    workers: int
    log_level: str = "warning"
    app: str = APP
    on_worker_exit: Callable[[int], None] = lambda pid: None
    say: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)
    _running: list[_Worker] = field(default_factory=list)
    _stop: bool = False
    _restarts: deque[float] = field(default_factory=deque)

    def _spawn(self) -> _Worker:
        ready_r, ready_w = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.serve_workers", "--host", self.host, "--port",
             str(self.port), "--log-level", self.log_level, "--ready-fd", str(ready_w),
             "--app", self.app],
            stdin=subprocess.PIPE, pass_fds=(ready_w,))
        os.close(ready_w)
        os.set_blocking(ready_r, False)
        return _Worker(proc, ready_r)

    def _request_stop(self, signum: int, _frame: object) -> None:
        self._stop = True

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0) or until the workers cannot be kept (1)."""
        why = port_free(self.host, self.port)
        if why is not None:
            self.say(f"cannot listen on {self.host}:{self.port}: {why} (another server? "
                     "choose another --port)")
            return 1
        old = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._running = [self._spawn() for _ in range(self.workers)]
            return self._watch()
        finally:
            self._stop_all()
            for s, handler in old.items():
                signal.signal(s, handler)

    def _watch(self) -> int:
        while not self._stop:
            for i, w in enumerate(self._running):
                if not w.ready:
                    w.ready = _read_ready(w.ready_r)
                code = w.proc.poll()
                if code is None or self._stop:
                    continue
                self.on_worker_exit(w.proc.pid)
                if not w.ready:
                    self.say(f"a server worker (pid {w.proc.pid}) exited with code {code} "
                             "before it started: stopping the server (its message is above)")
                    return 1
                now = time.monotonic()
                self._restarts.append(now)
                while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
                    self._restarts.popleft()
                if len(self._restarts) > RESTARTS_AT_MOST:
                    self.say(f"server worker pid {w.proc.pid} exited with code {code}; "
                             f"over {RESTARTS_AT_MOST} workers died within "
                             f"{RESTART_WINDOW_S:g} s: stopping the server")
                    return 1
                _close(w)
                self._running[i] = self._spawn()
                self.say(f"server worker pid {w.proc.pid} exited with code {code}; started "
                         f"pid {self._running[i].proc.pid} in its place")
            time.sleep(POLL_S)
        return 0

    def _stop_all(self) -> None:
        for w in self._running:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for w in self._running:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()  # reaped here, never left a zombie
                self.say(f"server worker pid {w.proc.pid} did not stop within "
                         f"{STOP_TIMEOUT_S:g} s: killed")
            _close(w)
            self.on_worker_exit(w.proc.pid)


def _close(w: _Worker) -> None:
    if w.proc.stdin is not None:
        w.proc.stdin.close()
    if w.ready_r >= 0:
        os.close(w.ready_r)
        w.ready_r = -1


def _read_ready(fd: int) -> bool:
    if fd < 0:
        return False
    try:
        return bool(os.read(fd, 1))
    except (BlockingIOError, OSError):
        return False


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="one `workbench serve` worker (internal)")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log-level", default="warning")
    ap.add_argument("--ready-fd", type=int, required=True)
    ap.add_argument("--app", default=APP)
    a = ap.parse_args(argv)
    run_worker(a.host, a.port, a.log_level, a.ready_fd, a.app)


if __name__ == "__main__":
    main()
