"""Sign-in back-off: after `max_failures` wrong passwords within `window_s` for one user name,
or from one client address, further attempts for that name / from that address are refused
(429 + Retry-After) until the window of the oldest of those failures has passed.

In-process on purpose: each server process counts its own attempts (N worker processes
allow up to N x `max_failures` guesses per window, still a few per minute instead of
thousands); nothing is written to the store, so a flood of guesses costs no writes. A
successful sign-in clears its user name's failures (not its address's). Counting per user name
lets anyone delay one user's sign-in by guessing wrong on purpose: the delay is bounded by
`window_s`, and a real user still signs in from the UI's session or an API key meanwhile.

The argon2 verify of a wrong or unknown user name takes the same time
(core/identity/passwords.py verifies against a dummy hash), so neither the timing nor this
throttle (which counts unknown names exactly as known ones) tells which names exist.

`attempt` counts an attempt *before* its password is verified, in the same critical section as
the check, so concurrent guesses cannot all pass the check while the first verify runs (about
100 ms): at most `max_failures` verifies per key and window. `succeeded` / `release` take the
attempt back afterwards.

Memory is bounded (`MAX_TRACKED` keys). When the table is full of live keys, only a *clean*
one (at most one attempt in the window) is evicted to make room; a key near or over its limit
is never forgotten early (evicting the victim's key would hand an attacker fresh guesses). If
none is clean, the new key's attempt is refused for now (`window_s`): a flood from thousands
of addresses can then delay sign-ins for new names, never open more guesses.

Behind a reverse proxy, the address is the proxy's unless the server reads the forwarded
header (uvicorn trusts X-Forwarded-For only from `--forwarded-allow-ips`, 127.0.0.1 by
default): then every caller shares one `addr:` key, and five wrong passwords from anyone close
sign-in for everyone for the window. Set `--forwarded-allow-ips` to the proxy's address."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 5
WINDOW_S = 300.0
MAX_TRACKED = 10_000  # names and addresses remembered at once (callers choose them: bound)


@dataclass
class SignInThrottle:
    max_failures: int = MAX_FAILURES
    window_s: float = WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def keys(username: str, address: str | None) -> list[str]:
        keys = [f"user:{(username or '').strip().lower()}"]
        if address:
            keys.append(f"addr:{address}")
        return keys

    def retry_after(self, username: str, address: str | None) -> int:
        """Seconds to wait before another attempt for `username` from `address`; 0: go on."""
        now = self.clock()
        with self._lock:
            return self._wait(self.keys(username, address), now)

    def attempt(self, username: str, address: str | None) -> int:
        """Count one attempt now, before its password is checked, unless it must wait: the
        seconds to wait (the attempt is then not counted), else 0 (go on, then call
        `succeeded` or `release` if it did not fail)."""
        now = self.clock()
        keys = self.keys(username, address)
        with self._lock:
            wait = self._wait(keys, now)
            if not wait and not self._count(keys, now):
                wait = math.ceil(self.window_s)  # table full of keys near their limit
            return wait

    def failed(self, username: str, address: str | None) -> None:
        """Count a failure that was not counted by `attempt` (tests, callers without one)."""
        now = self.clock()
        with self._lock:
            self._count(self.keys(username, address), now)

    def succeeded(self, username: str, address: str | None = None) -> None:
        """A right password: the name's failures are cleared, the attempt taken back from
        the address (its other failures stay)."""
        user, *rest = self.keys(username, address)
        with self._lock:
            self._failures.pop(user, None)
            self._take_back(rest)

    def release(self, username: str, address: str | None) -> None:
        """The attempt ended neither right nor wrong (e.g. the store failed): not counted."""
        with self._lock:
            self._take_back(self.keys(username, address))

    def _wait(self, keys: list[str], now: float) -> int:
        wait = 0.0
        for key in keys:
            seen = self._recent(key, now)
            if seen is not None and len(seen) >= self.max_failures:
                wait = max(wait, seen[-self.max_failures] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def _count(self, keys: list[str], now: float) -> bool:
        """Append `now` to every key; False (nothing counted) if a new key finds no room."""
        new = [key for key in keys if key not in self._failures]
        if len(self._failures) + len(new) > MAX_TRACKED:
            self._forget_expired(now)
            while len(self._failures) + len(new) > MAX_TRACKED:
                clean = next((k for k, v in self._failures.items()
                              if k not in keys and len(self._recent(k, now) or ()) <= 1), None)
                if clean is None:
                    return False
                del self._failures[clean]
        for key in keys:
            seen = self._failures.get(key)
            if seen is None:
                seen = self._failures[key] = deque(maxlen=self.max_failures)
            seen.append(now)
        return True

    def _take_back(self, keys: list[str]) -> None:
        for key in keys:
            seen = self._failures.get(key)
            if seen:
                seen.pop()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        seen = self._failures.get(key)
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return seen

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= now - self.window_s]:
            del self._failures[key]
