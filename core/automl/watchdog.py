"""Stopping a fit in ANY thread: at its deadline, or when it grows the process past a memory cap.

The POSIX interval timer of `core.automl.budget.interrupt_at` works in a process's main thread
only; a search run by the app's thread worker, or a trial on a Dask worker thread, had only
fold-level checks, so one long fit overran its deadline. Here one daemon thread per process
(the watchdog) watches every registered fit and, at its deadline or over its memory cap,
raises an exception inside the fitting thread with `PyThreadState_SetAsyncExc`.

Same semantics as the signal: the exception is delivered between Python bytecodes, so a fit
loop that returns to Python between iterations (boosting rounds, forests' trees, HGB
iterations, networks' epochs, lbfgs iterations, a `time.sleep` loop) stops there; a C loop
that never returns to Python (libsvm, liblinear, one CatBoost fit) is stopped when it does.

The exception is raised at most once per watched block, and can never escape it: the block's
exit takes the watchdog's lock, marks the block ended and cancels an exception the watchdog
set but the thread has not yet received. An exception received while the exit is still
running propagates from the `with` statement itself, inside the caller's `try`.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

POLL_S = 0.05          # memory is read this often while a capped fit runs (/proc: ~10 µs)
MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# Our own prototypes (not the shared ctypes.pythonapi attribute, whose argtypes anyone may set):
# one sets an exception class, the other passes NULL, which cancels a pending one.
_set_async = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))
_clear_async = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))


class Stopped(BaseException):  # noqa: N818  a BaseException: `except Exception` in an
    """A fit stopped from outside (deadline, memory cap)."""  # estimator must not swallow it


class OverMemory(Stopped):
    """Raised inside a fit that grew the process past its memory cap."""


def rss_bytes() -> int:
    """This process's resident memory, from /proc/self/statm (0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def available_bytes() -> int | None:
    """Memory the process may still take: /proc/meminfo's MemAvailable, bounded by a cgroup
    v2 limit (containers, hosted apps) when there is one; None where neither is readable."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            current = int(f.read().strip())
        if limit != "max":
            found.append(max(int(limit) - current, 0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


@dataclass(eq=False)
class _Guard:
    thread: int
    exc: type[BaseException]          # what the deadline raises
    deadline: float | None            # monotonic seconds
    cap: int | None                   # bytes the process may grow by during the block
    baseline: int = 0
    active: bool = True
    fired: bool = False
    reason: str = ""


class _Watchdog:
    """One daemon thread serving every guard of the process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.guards: list[_Guard] = []
        self.thread: threading.Thread | None = None
        self.reasons: dict[int, str] = {}  # thread -> why its last guard fired

    def add(self, guard: _Guard) -> None:
        with self.lock:
            self.guards.append(guard)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="workbench-watchdog",
                                               daemon=True)
                self.thread.start()
            self.wake.notify()

    def close(self, guard: _Guard) -> None:
        """End the guard; cancel its exception if it was set but not yet received."""
        with self.lock:
            guard.active = False
            if guard in self.guards:
                self.guards.remove(guard)
            if guard.fired:
                _clear_async(guard.thread, None)

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                rss = rss_bytes() if any(g.cap is not None for g in self.guards) else 0
                for g in list(self.guards):
                    self._check(g, now, rss)
                waits = [g.deadline - now for g in self.guards if g.deadline is not None]
                if any(g.cap is not None for g in self.guards):
                    waits.append(POLL_S)
                self.wake.wait(max(min(waits), 0.001) if waits else None)

    def _check(self, g: _Guard, now: float, rss: int) -> None:
        """With the lock held: fire a guard whose deadline passed or whose process is over."""
        if not g.active or g.fired:
            return
        if g.cap is not None and rss - g.baseline > g.cap:
            exc: type[BaseException] = OverMemory
            g.reason = f"stopped: used {(rss - g.baseline) / MB:.0f} MB, cap {g.cap / MB:.0f} MB"
        elif g.deadline is not None and now >= g.deadline:
            exc, g.reason = g.exc, "stopped at the deadline"
        else:
            return
        g.fired = True
        self.guards.remove(g)
        self.reasons[g.thread] = g.reason
        _set_async(g.thread, exc)


_WATCHDOG = _Watchdog()


@contextmanager
def watch(deadline: float | None, cap_bytes: int | None,
          exc: type[BaseException]) -> Iterator[bool]:
    """Raise `exc` in this thread at `deadline`, or `OverMemory` once the process has grown by
    more than `cap_bytes` since the block began, while the block runs. Yields whether anything
    is watched."""
    if deadline is None and cap_bytes is None:
        yield False
        return
    guard = _Guard(threading.get_ident(), exc, deadline, cap_bytes,
                   baseline=rss_bytes() if cap_bytes is not None else 0)
    _WATCHDOG.add(guard)
    try:
        yield True
    finally:
        _WATCHDOG.close(guard)


def last_reason() -> str:
    """Why the watchdog last stopped a block of this thread (its message), or ""."""
    with _WATCHDOG.lock:
        return _WATCHDOG.reasons.pop(threading.get_ident(), "")
