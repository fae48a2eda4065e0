"""Sticky canary routing through a stable hash.

`bucket(name, candidate, key)` maps a request key to a point in [0, 100) with SHA-256, so
every worker process and every restart puts a key in the same place (Python's `hash()` is
salted per process). A key goes to the candidate when its point is below the percentage: raising
the percentage only adds keys to the candidate, it never moves one back. The hash is salted with
the model and the candidate version so each rollout samples a fresh set of callers.
"""

from __future__ import annotations

import hashlib
import random

_SCALE = 100.0 / float(1 << 64)
_rng = random.SystemRandom()


def bucket(name: str, candidate: int, key: str) -> float:
    digest = hashlib.sha256(f"{name}\x00{candidate}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") * _SCALE


def route(name: str, stable: int | None, candidate: int | None, percent: float,
          key: str | None) -> int | None:
    """The version that answers a request under a canary rule (shadow is handled by caller)."""
    if candidate is None or percent <= 0 or candidate == stable:
        return stable
    if percent >= 100 or stable is None:
        return candidate
    point = bucket(name, candidate, key) if key is not None else _rng.random() * 100.0
    return candidate if point < percent else stable
