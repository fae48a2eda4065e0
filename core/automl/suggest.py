"""Plain-language advice after a search, drawn from the data and the trials.

Each rule is a small function returning a sentence or None; SUGGESTIONS lists them in the
order they are shown. Adding advice is adding a function to the list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from core.enums import Task, TrialState

if TYPE_CHECKING:
    from core.automl.search import SearchResult

IMBALANCE_RATIO = 5.0
TIE_TOLERANCE = 0.002   # relative score difference treated as a tie
LATE_SHARE = 0.25       # improvement in the last quarter of trials means "still improving"


def still_improving(r: SearchResult) -> str | None:
    ok = [t for t in r.trials if t.status == TrialState.OK]
    if len(ok) < 8:
        return (f"Only {len(ok)} configurations were evaluated: a larger budget would let the "
                "search explore more.") if r.elapsed_s >= 0.8 * r.budget_s else None
    m = r.data.metric
    best_at = int(np.argmax([m.oriented(t.score) for t in ok]))
    if best_at >= len(ok) * (1 - LATE_SHARE):
        return ("The best score was still improving near the end of the search: a larger "
                "budget is likely to help.")
    return None


def imbalance(r: SearchResult) -> str | None:
    if r.data.task == Task.REGRESSION:
        return None
    counts = r.data.y.value_counts()
    ratio = counts.max() / counts.min()
    if ratio < IMBALANCE_RATIO:
        return None
    rare = counts.idxmin()
    advice = ("judge models by F1, PR AUC or log loss rather than accuracy"
              if r.data.metric.name == "accuracy" else
              f"{r.data.metric.name} is a reasonable choice; check precision and recall of "
              f"{rare!r} too")
    return f"Classes are imbalanced 1:{ratio:.0f} ({rare!r} is rare): {advice}."


def dropped_columns(r: SearchResult) -> str | None:
    if not r.data.dropped:
        return None
    parts = [f"{name!r} ({why.split(':')[0]})" for name, why in r.data.dropped.items()]
    return "Not used for training: " + ", ".join(parts) + "."


def fast_model_ties(r: SearchResult) -> str | None:
    """When the cheapest family is as good as the best, say so: it is faster to serve."""
    ok = [t for t in r.trials if t.status == TrialState.OK and t.cv is not None]
    if not ok:
        return None
    m = r.data.metric
    best = max(ok, key=lambda t: m.oriented(t.score))
    by_speed = sorted(ok, key=lambda t: t.cv.predict_ms_per_1k)
    for fast in by_speed:
        if fast.estimator == best.estimator:
            return None
        tie = abs(fast.score - best.score) <= TIE_TOLERANCE * max(abs(best.score), 1e-9)
        faster = fast.cv.predict_ms_per_1k * 1.5 < best.cv.predict_ms_per_1k
        if tie and faster:
            return (f"{fast.estimator} scores within {TIE_TOLERANCE:.1%} of {best.estimator} and "
                    f"predicts {best.cv.predict_ms_per_1k / fast.cv.predict_ms_per_1k:.1f}x "
                    "faster: prefer it when latency matters (train with only that estimator; CLI: "
                    f"`workbench train --estimator {fast.estimator}`).")
    return None


def unstable(r: SearchResult) -> str | None:
    best = r.best_single
    if best is None or best.cv is None or len(best.cv.scores) < 3:
        return None
    if not r.data.metric.greater_is_better:  # losses near zero make relative spread meaningless
        return None
    spread = best.cv.std / max(abs(best.cv.mean), 1e-9)
    if spread > 0.05:
        return (f"Scores vary a lot between folds (±{spread:.0%}): the data may be small or "
                "heterogeneous; more rows would make the comparison more reliable.")
    return None


def failures(r: SearchResult) -> str | None:
    failed = [t for t in r.trials if t.status == "failed"]
    if not failed:
        return None
    names = sorted({t.estimator for t in failed})
    return (f"{len(failed)} trial(s) failed ({', '.join(names)}); see the reason column. The "
            "search went on without them.")


def ensemble_won(r: SearchResult) -> str | None:
    if r.best.estimator != "ensemble":
        return None
    return (f"An ensemble of {len(r.best.params['members'])} pipelines beat the best single one "
            f"({r.best.reason}); it costs that many predictions per request.")


SUGGESTIONS: list[Callable[[SearchResult], str | None]] = [
    still_improving, imbalance, dropped_columns, fast_model_ties, unstable, failures,
    ensemble_won,
]


def suggestions(result: SearchResult) -> list[str]:
    return [s for rule in SUGGESTIONS if (s := rule(result))]
