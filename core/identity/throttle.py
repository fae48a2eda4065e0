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
throttle (which counts unknown names exactly as known ones) tells which names exist."""

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
        wait = 0.0
        with self._lock:
            for key in self.keys(username, address):
                seen = self._recent(key, now)
                if seen is not None and len(seen) >= self.max_failures:
                    wait = max(wait, seen[-self.max_failures] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_expired(now)
            for key in self.keys(username, address):
                seen = self._recent(key, now)
                if seen is None:
                    if len(self._failures) >= MAX_TRACKED:  # still full: drop the oldest
                        self._failures.pop(next(iter(self._failures)))
                    seen = self._failures[key] = deque(maxlen=self.max_failures)
                seen.append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(self.keys(username, None)[0], None)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        seen = self._failures.get(key)
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return seen

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= now - self.window_s]:
            del self._failures[key]
