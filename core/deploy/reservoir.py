"""A uniform sample of at most `size` of the rows a version scored since the last flush
(live drift reads it), kept on the request path.

Li's "Algorithm L" (ACM TOMS 1994): instead of drawing a random number per row
seen, the index of the next row to keep is drawn ahead as a geometric skip, so a request
none of whose rows is kept costs one comparison, and a kept row two draws of Python's own
generator. The numpy generator used before cost ~10 µs per request in six array calls, each
random draw letting go of the GIL on the event loop's thread (docs/serving/session16.md)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

_random = random.Random()  # sampling, not secrecy: any seed will do


class Reservoir:
    """`rows`: a uniform sample of `min(seen, size)` of the `seen` rows given to `add`."""

    __slots__ = ("size", "rows", "seen", "_w", "_next")

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: list[Any] = []
        self.seen = 0
        self._w = 1.0
        self._next = size - 1  # index among the rows seen of the next row to keep

    def add(self, rows: Sequence[Any]) -> None:
        start = self.seen
        self.seen = end = start + len(rows)
        kept = self.rows
        if len(kept) < self.size:
            kept.extend(rows[:self.size - len(kept)])
            if len(kept) < self.size:
                return
            self._skip()  # just filled: where the first replacement falls
        while self._next < end:
            kept[_random.randrange(self.size)] = rows[self._next - start]
            self._skip()

    def _skip(self) -> None:
        """Algorithm L's step: W shrinks by a factor U^(1/size), the next kept row lies a
        geometric number of rows (success probability W) ahead."""
        self._w *= math.exp(math.log(1.0 - _random.random()) / self.size)
        gap = math.log1p(-self._w) if self._w < 1.0 else -math.inf
        self._next += math.floor(math.log(1.0 - _random.random()) / gap) + 1
