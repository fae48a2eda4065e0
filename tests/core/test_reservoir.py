"""The live-drift sample: every scored row equally likely to be kept, whatever the request
sizes, and nothing dropped while there is room."""

from __future__ import annotations

import random

import numpy as np
import pytest

from core.deploy import reservoir
from core.deploy.columns import Columns
from core.deploy.reservoir import Reservoir


def _requests(total: int, seed: int) -> list[list[int]]:
    """Row ids 0..total-1 cut into requests of 1 to 300 rows."""
    rnd, out, at = random.Random(seed), [], 0
    while at < total:
        n = min(rnd.choice([1, 1, 3, 17, 100, 300]), total - at)
        out.append(list(range(at, at + n)))
        at += n
    return out


def test_rows_are_kept_whole_while_there_is_room() -> None:
    r = Reservoir(10)
    r.add([0, 1, 2])
    r.add([3])
    assert r.rows == [0, 1, 2, 3] and r.seen == 4
    r.add(list(range(4, 10)))
    assert r.rows == list(range(10)) and r.seen == 10


@pytest.mark.parametrize("total", [150, 3_000])
def test_every_row_is_equally_likely_to_be_kept(total: int, monkeypatch) -> None:
    """Inclusion frequency of each row over many runs against size/total: the first rows
    (kept at first, replaced later), the middle and the last rows alike."""
    monkeypatch.setattr(reservoir, "_random", random.Random(7))  # the same draws every run
    size, runs = 20, 4_000
    counts = np.zeros(total)
    for run in range(runs):
        r = Reservoir(size)
        for req in _requests(total, run):
            r.add(req)
        assert r.seen == total and len(r.rows) == size
        assert len(set(r.rows)) == size  # no row kept twice
        counts[r.rows] += 1
    p = size / total
    # per row, a binomial count: 6 standard deviations is not crossed by chance
    assert np.abs(counts - runs * p).max() < 6 * np.sqrt(runs * p * (1 - p))
    # and no drift along the stream: each tenth kept as often as a uniform sample would
    # (a hypergeometric count per run), within 6 standard deviations
    m = total // 10
    per_run = size * (m / total) * (1 - m / total) * (total - size) / (total - 1)
    tenths = counts.reshape(10, -1).sum(axis=1)
    assert np.abs(tenths - runs * size / 10).max() < 6 * np.sqrt(runs * per_run)


def test_sample_counts_rows_of_column_requests() -> None:
    """The request path passes `Columns`: slices and single rows are read from it."""
    cols = Columns(["a", "b"], [list(range(300)), [str(i) for i in range(300)]], 300)
    r = Reservoir(100)
    r.add(cols)
    r.add(cols)
    assert r.seen == 600 and len(r.rows) == 100
    assert all(row["b"] == str(row["a"]) for row in r.rows)
