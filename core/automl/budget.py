"""Budget accounting that holds on a busy machine, as data plus a few small mechanisms.

The promise: search + final refit + ensembling <= budget + 10 %, with the other core busy too.
It is kept by measuring, not by fixed guesses:

- `Pace` measures the machine's progress as it is now: the search runs single-threaded, so
  wall time / CPU time of the recent folds is how much of a core it actually gets (1.0 quiet,
  ~2.0 sharing a core with a busy neighbour). Work is learned in CPU seconds per fold (per
  estimator), and turned into wall seconds at the current pace.
- Trials stop at their deadline (the end minus what the refit will need): between folds a fold
  that cannot finish in time is not started, and inside a fit `interrupt_at` raises
  `OutOfTime` at the deadline (a POSIX interval timer in the main thread; in any other thread
  the watchdog of core.automl.watchdog; any estimator whose fit loop returns to Python between
  iterations stops there: boosters, forests, networks). With a memory cap the same watchdog
  stops a fit that grows the process by more than the cap (`OverMemory`).
- Fold count and holdout depend on the number of rows (`FOLDS_BY_ROWS`); hopeless
  configurations are pruned after their first fold (`PRUNE_RULES`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.automl.watchdog import Stopped, watch
from core.data.splits import HOLDOUT_ROWS

# rows up to -> folds; above the last threshold (core.data.splits.HOLDOUT_ROWS) one 80/20
# holdout is used (splits.make_splits). Fewer folds on larger tables: each fold already sees
# many rows, and the time buys more configurations.
FOLDS_BY_ROWS: tuple[tuple[int, int], ...] = ((10_000, 5), (HOLDOUT_ROWS, 3))
HOLDOUT_FOLDS = 1


@dataclass(frozen=True)
class PruneRule:
    """After fold `after_fold` (0-based), a trial whose running mean trails the best trial's
    running mean on the same folds by more than `spreads` x the best trial's fold-to-fold
    standard deviation AND by more than `relative` x |best| is stopped."""

    after_fold: int
    spreads: float
    relative: float


# hopeless after one fold (far behind), or behind after two or more (the long-standing rule)
PRUNE_RULES: tuple[PruneRule, ...] = (PruneRule(0, 3.0, 0.02), PruneRule(1, 1.0, 0.0))

REFIT_SAFETY = 1.5        # the refit is reserved at 1.5x its measured estimate
FINISH_S = 0.3            # ensemble selection, evaluation and bookkeeping at the end ...
FINISH_S_PER_ROW = 2e-5   # ... growing with the rows they score
REFIT_MARGIN = 0.05       # the refit may run into half of the promise's 10 % margin ...
REFIT_CLOCK_MARGIN = 0.1  # ... its own clock stops it a little earlier than the alarm;
IMPORTANCE_MARGIN = 0.07  # ... and permutation importance (informative only) a bit more;
IMPORTANCE_RESERVE_SHARE = 0.1  # the trials give it at most 10 % of the budget
IMPORTANCE_FLOOR_S = 2.0  # ... but a small table's importance is not cut before 2 s (tiny
#                           budgets on a busy machine otherwise never showed it)
PACE_WINDOW = 4           # folds the current pace is measured over
MAX_PACE = 32.0           # a wall/CPU ratio beyond this is a stalled process, not a pace


def folds_for(rows: int) -> int:
    """Cross-validation folds for a table of `rows` rows (1: a single holdout)."""
    for up_to, folds in FOLDS_BY_ROWS:
        if rows <= up_to:
            return folds
    return HOLDOUT_FOLDS


def hopeless(oriented: float, best_oriented: float, best_std: float, rule: PruneRule) -> bool:
    """Whether a running (oriented, higher-is-better) mean is behind by the rule's margins."""
    gap = best_oriented - oriented
    return gap > max(best_std, 1e-9) * rule.spreads and gap > rule.relative * abs(best_oriented)


class Pace:
    """Wall seconds per CPU second of the recent folds: the share of a core the search gets."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (wall, cpu) per fold

    def add(self, wall: float, cpu: float) -> None:
        if wall > 0 and cpu >= 0:
            self.samples.append((wall, cpu))
            del self.samples[:-PACE_WINDOW]

    @property
    def factor(self) -> float:
        wall = sum(w for w, _ in self.samples)
        cpu = sum(c for _, c in self.samples)
        if wall < 0.05 or cpu <= 0:
            return 1.0
        return float(min(max(wall / cpu, 1.0), MAX_PACE))

    def wall(self, cpu_seconds: float) -> float:
        return cpu_seconds * self.factor


class FoldClock:
    """Times one fold in wall and CPU seconds."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.monotonic(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.monotonic() - self.wall0, time.process_time() - self.cpu0


def next_fold_fits(fold_walls: list[float], deadline: float | None) -> bool:
    """Whether one more fold, as long as the slowest so far, ends before `deadline`."""
    if deadline is None or not fold_walls:
        return True
    return time.monotonic() + max(fold_walls) <= deadline


def mean_recent(values: list[float], n: int = 5) -> float:
    return float(np.mean(values[-n:])) if values else math.nan


# -- stopping a fit at the deadline --------------------------------------------------------------

class OutOfTime(Stopped):  # a BaseException: `except Exception` in an estimator must not
    """Raised inside a fit at its deadline."""  # swallow it


def _main_thread() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def interrupt_at(deadline: float | None, *, memory_cap: int | None = None) -> Iterator[bool]:
    """Raise `OutOfTime` in this thread at the monotonic time `deadline`, and `OverMemory`
    when the process grows by more than `memory_cap` bytes, while the block runs.

    In the main thread (POSIX) the deadline is a POSIX interval timer (below); in any other
    thread, and for the memory cap everywhere, it is the watchdog (core.automl.watchdog), which
    raises between bytecodes like a signal handler does. Yields whether anything is armed.
    The watchdog's block is the inner one: it has ended (and cancelled an exception not yet
    received) before the timer's cleanup runs."""
    main = _main_thread()
    if deadline is not None and deadline - time.monotonic() <= 0:
        raise OutOfTime()
    with _alarm_at(deadline if main else None) as alarmed, \
            watch(None if main else deadline, memory_cap, OutOfTime) as watched:
        yield alarmed or watched


@contextlib.contextmanager
def _alarm_at(deadline: float | None) -> Iterator[bool]:
    """Raise `OutOfTime` in the main thread at the monotonic time `deadline`.

    Yields whether it is armed: only in the main thread, on POSIX, and without disturbing a
    timer already set (pytest-timeout's, say): an earlier one is left alone (not armed), a
    later one is restored with its remaining time afterwards.

    Libraries that poll for signals inside native loops (CatBoost) report our exception as a
    `KeyboardInterrupt`: one raised after the alarm fired is turned back into `OutOfTime`, a
    real Ctrl-C is left alone. The handler raises only while the block is active, and the
    cleanup runs with SIGALRM blocked, so an alarm at the block's very end cannot skip it and
    leave the handler installed."""
    if deadline is None or not _main_thread():
        yield False
        return
    delay = deadline - time.monotonic()
    if delay <= 0:
        raise OutOfTime()
    before_delay, before_interval = signal.getitimer(signal.ITIMER_REAL)
    if before_delay and before_delay <= delay:
        yield False
        return
    started = time.monotonic()
    state = {"active": True, "fired": False}

    def fire(_signum: int, _frame: object) -> None:
        if state["active"]:
            state["fired"] = True
            raise OutOfTime()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        yield True
    except KeyboardInterrupt:
        if state["fired"]:
            raise OutOfTime() from None
        raise
    finally:
        try:
            state["active"] = False  # an alarm may still raise up to here, not after
        finally:
            left = max(before_delay - (time.monotonic() - started), 1e-3) if before_delay \
                else 0.0
            _disarm(previous, left, before_interval)


def _disarm(previous: object, left: float, interval: float) -> None:
    """Stop our timer, drop an alarm already pending, put the previous handler (and timer)
    back: with SIGALRM blocked, so none of it is interrupted half way."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if signal.SIGALRM in signal.sigpending():
            signal.sigwait({signal.SIGALRM})
        signal.signal(signal.SIGALRM, previous)  # type: ignore[arg-type]
        if left:
            signal.setitimer(signal.ITIMER_REAL, left, interval)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
