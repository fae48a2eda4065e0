"""Where the search spends its budget: which estimator to try next, and whether it fits.

Each estimator is an "arm" with its own Optuna study over its own space. Arms that have not
run yet go first (cheapest first: the warm start with known-good defaults). After that an arm
is drawn with probability proportional to its promise, exp(-gap / noise), divided by the
square root of its cost class: estimators far behind the leader (by more than the CV noise)
get few trials, cheap and close ones get many. The draw uses only scores and declared costs,
never measured times, so a seed reproduces the sequence of trials; measured times decide only
whether an arm's next trial still fits in the remaining budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optuna

from core.automl.catalog import EstimatorSpec

COST_MULTIPLIER = {1: 1.0, 2: 4.0, 3: 8.0}  # guess for an arm that has not run yet
MIN_NOISE = 1e-4


@dataclass
class Arm:
    spec: EstimatorSpec
    study: optuna.Study
    scores: list[float] = field(default_factory=list)   # oriented (higher is better)
    stds: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time per finished trial
    fold_cpu: list[float] = field(default_factory=list)  # CPU seconds per fold, any trial
    failures: int = 0
    running: int = 0  # trials in flight on a Dask cluster (core.automl.cluster); 0 locally
    grid_size: int | None = None  # grid search: the arm is done after this many trials

    @property
    def best(self) -> float | None:
        return max(self.scores) if self.scores else None

    @property
    def tried(self) -> int:
        return len(self.seconds) + self.failures + self.running

    @property
    def dead(self) -> bool:
        exhausted = self.grid_size is not None and self.tried >= self.grid_size
        return exhausted or (self.failures >= 2 and not self.scores)


def expected_seconds(arm: Arm, arms: list[Arm]) -> float:
    if arm.seconds:
        return float(np.mean(arm.seconds[-5:]))
    seen = [s for a in arms for s in a.seconds]
    if not seen:
        return 0.0  # nothing known yet: let the first (cheapest) candidate run
    base = float(np.median(seen))
    return base * COST_MULTIPLIER[arm.spec.cost] / COST_MULTIPLIER[1]


def expected_cpu(arm: Arm, arms: list[Arm], folds: int) -> float:
    """CPU seconds the arm's next trial is expected to need: its recent folds' mean (pruned
    trials' folds count: they measure the same work per fold), else the median fold of the
    other arms scaled by the declared cost classes; 0 when nothing ran yet."""
    if arm.fold_cpu:
        return folds * float(np.mean(arm.fold_cpu[-3 * folds:]))
    # other arms' folds, each brought to cost class 1 by its own class, then to this arm's
    seen = [s / COST_MULTIPLIER[a.spec.cost] for a in arms for s in a.fold_cpu]
    if not seen:
        return 0.0
    return folds * float(np.median(seen)) * COST_MULTIPLIER[arm.spec.cost]


def choose(arms: list[Arm], remaining_s: float, rng: np.random.Generator,
           estimate: Callable[[Arm], float] | None = None) -> Arm | None:
    """The next arm to try among those whose next trial is expected (`estimate`, wall
    seconds; default `expected_seconds`) to end within `remaining_s`; None if none fits."""
    estimate = estimate or (lambda a: expected_seconds(a, arms))
    alive = [a for a in arms if not a.dead and estimate(a) <= remaining_s]
    if not alive:
        return None
    untried = [a for a in alive if a.tried == 0]
    if untried:
        return min(untried, key=lambda a: a.spec.cost)
    scored = [a for a in alive if a.best is not None]
    if not scored:
        return alive[0]
    leader = max(a.best for a in scored)
    noise = max(float(np.median([s for a in scored for s in a.stds] or [MIN_NOISE])), MIN_NOISE)
    weights = np.array([
        math.exp(-(leader - a.best) / noise) / math.sqrt(COST_MULTIPLIER[a.spec.cost])
        for a in scored])
    return scored[int(rng.choice(len(scored), p=weights / weights.sum()))]
