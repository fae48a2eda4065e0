"""The scorecard's A/B verdict: the intervals are the published ones and cover as stated, and
on a deployment's labelled prediction log (SQLite and PostgreSQL) a clearly better candidate
wins with an interval excluding 0, equal versions get no winner, and too few labels say how
many more are needed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.deploy import deployments as dep
from core.deploy.enums import VerdictOutcome
from core.deploy.feedback import model_scorecard
from core.deploy.verdict import (
    MIN_LABELS,
    judge,
    newcombe_independent,
    newcombe_paired,
    paired_t,
    verdict,
    welch,
)
from core.registry import register_version
from core.store import PredictionLog, utcnow
from tests.factories import NUMERIC_SCHEMA, register_numeric, store_session


# -- the intervals -----------------------------------------------------------------------------
def test_newcombe_independent_matches_the_published_example() -> None:
    """Newcombe (1998), Stat Med 17:873, method 10: 56/70 − 48/80 → 0.0524 to 0.3339."""
    d, low, high = newcombe_independent(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_welch_and_paired_t_match_scipy() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.exponential(1.0, 40), rng.exponential(1.4, 55)
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert welch(list(x), list(y))[1:] == pytest.approx((ci.low, ci.high))
    z = x + rng.normal(0, 0.3, 40)
    ci = stats.ttest_rel(z, x).confidence_interval(0.95)
    assert paired_t(list(z - x))[1:] == pytest.approx((ci.low, ci.high))


@pytest.mark.parametrize("paired", [False, True])
def test_newcombe_intervals_cover_the_true_difference_about_95_percent(paired: bool) -> None:
    rng = np.random.default_rng(1)
    n, runs, covered = 60, 1000, 0
    for _ in range(runs):
        u = rng.random(n)
        cand = u < 0.85
        stable = (u < 0.75) if paired else (rng.random(n) < 0.75)  # paired: correlated hits
        if paired:
            _, low, high = newcombe_paired(int((cand & stable).sum()),
                                           int((cand & ~stable).sum()),
                                           int((stable & ~cand).sum()),
                                           int((~cand & ~stable).sum()))
        else:
            _, low, high = newcombe_independent(int(cand.sum()), n, int(stable.sum()), n)
        covered += low <= 0.10 <= high
    assert 0.93 <= covered / runs <= 0.975


def test_paired_interval_is_narrower_than_ignoring_the_pairing() -> None:
    """The same 100 requests: both right on 80, the candidate alone on 10, stable alone on
    1. Treating them as independent samples throws the pairing's information away."""
    _, pl, ph = newcombe_paired(80, 10, 1, 9)
    _, il, ih = newcombe_independent(90, 100, 81, 100)
    assert ph - pl < ih - il and pl > 0 > il


# -- judge --------------------------------------------------------------------------------------
def test_judge_names_the_better_side_for_either_direction_of_the_measure() -> None:
    good, bad = [1.0] * 95 + [0.0] * 5, [1.0] * 60 + [0.0] * 40
    v = judge(stable=1, candidate=2, mode="canary", task="binary",
              stable_scores=good, candidate_scores=bad)
    assert (v.outcome, v.better) == (VerdictOutcome.STABLE, 1) and v.high < 0
    small, large = [0.1, 0.2, 0.15] * 20, [1.0, 1.2, 0.9] * 20  # absolute errors: lower wins
    v = judge(stable=1, candidate=2, mode="canary", task="regression",
              stable_scores=large, candidate_scores=small)
    assert (v.outcome, v.better, v.measure, v.higher_is_better) == (
        VerdictOutcome.CANDIDATE, 2, "mae", False)
    assert v.high < 0 and "Version 2 (candidate) is better" in v.message


# -- on a deployment's prediction log ----------------------------------------------------------
def _canary(s, mode: str = "canary", task: str = "binary") -> None:
    if task == "regression":
        rng = np.random.default_rng(0)
        X = pd.DataFrame(rng.normal(size=(40, 2)), columns=["a", "b"])
        pipe = make_pipeline(StandardScaler(), LinearRegression()).fit(X, X["a"] * 2)
        for _ in range(2):
            register_version(pipe, session=s, name="churn", task="regression", target="y",
                             input_schema=NUMERIC_SCHEMA, metric="rmse", score=0.1)
    else:
        register_numeric(s)
        register_numeric(s, seed=1)
    dep.deploy("churn", 1, session=s)
    dep.deploy("churn", 2, 50, session=s, mode=mode)


def _log(s, version: int, hits: int, misses: int, *, shadow: list[bool] | None = None,
         at=None, tag: str = "") -> None:
    """Labelled predictions of `version`: `hits` right and `misses` wrong (actual 'yes');
    in shadow mode `shadow[i]` says whether version 2's copy of record i was right."""
    preds = ["yes"] * hits + ["no"] * misses
    for i, p in enumerate(preds):
        row = PredictionLog(request_id=f"{tag}v{version}-{i}", model_name="churn",
                            version=version, predictions=[p], actual=["yes"])
        if shadow is not None:
            row.shadow_version = 2
            row.shadow_predictions = ["yes" if shadow[i] else "no"]
        if at is not None:
            row.created_at = at
        s.add(row)
    s.commit()


def test_a_clearly_better_canary_wins_with_an_interval_excluding_zero(backend: str) -> None:
    with store_session() as s:
        _canary(s)
        _log(s, 1, hits=36, misses=24)  # stable 60 %
        _log(s, 2, hits=57, misses=3)   # candidate 95 %
        card = model_scorecard("churn", session=s)
    v = card.verdict
    assert (v.outcome, v.better, v.stable, v.candidate) == (VerdictOutcome.CANDIDATE, 2, 1, 2)
    assert (v.stable_labelled, v.candidate_labelled, v.needed) == (60, 60, 0)
    assert v.difference == pytest.approx(0.35) and 0 < v.low < 0.35 < v.high
    assert v.message.startswith("Version 2 (candidate) is better: accuracy 95.0%")
    assert "Newcombe" in v.method and v.confidence == 0.95


def test_equal_versions_get_no_verdict_and_an_interval_covering_zero(backend: str) -> None:
    with store_session() as s:
        _canary(s)
        _log(s, 1, hits=80, misses=20)
        _log(s, 2, hits=80, misses=20)
        v = verdict("churn", "binary", session=s)
    assert (v.outcome, v.better, v.difference) == (VerdictOutcome.UNDECIDED, None, 0)
    assert v.low < 0 < v.high
    assert v.message.startswith("No clear winner yet") and "covers 0" in v.message


def test_too_few_labels_say_how_many_more_are_needed(backend: str) -> None:
    with store_session() as s:
        _canary(s)
        _log(s, 1, hits=2, misses=8)   # stable clearly worse, but on 10 labels
        _log(s, 2, hits=25, misses=0)  # 25 labels
        v = verdict("churn", "binary", session=s)
    assert (v.outcome, v.better, v.needed) == (VerdictOutcome.NEEDS_LABELS, None,
                                               (MIN_LABELS - 10) + (MIN_LABELS - 25))
    assert v.message.startswith(f"Not enough labels yet: {v.needed} more needed")
    assert v.low is not None and v.low > 0  # the interval is still shown, but not acted on


def test_only_labels_since_the_candidate_was_deployed_count(backend: str) -> None:
    """Stable's labelled history from before this candidate (another period, other data) is
    not compared with the candidate's."""
    with store_session() as s:
        register_numeric(s)
        register_numeric(s, seed=1)
        dep.deploy("churn", 1, session=s)
        _log(s, 1, hits=0, misses=200, at=utcnow() - timedelta(days=2), tag="old")
        dep.deploy("churn", 2, 50, session=s)
        _log(s, 1, hits=30, misses=30)
        v = verdict("churn", "binary", session=s)
    assert (v.stable_labelled, v.candidate_labelled, v.stable_value) == (60, 0, 0.5)
    assert v.outcome is VerdictOutcome.NEEDS_LABELS and v.needed == MIN_LABELS
    assert v.difference is None and v.since is not None


def test_a_shadow_is_judged_on_the_same_requests(backend: str) -> None:
    with store_session() as s:
        _canary(s, mode="shadow")
        # 60 requests, stable right on 36; the shadow right on those 36 and 18 more
        _log(s, 1, hits=36, misses=24, shadow=[True] * 36 + [True] * 18 + [False] * 6)
        v = verdict("churn", "binary", session=s)
    assert (v.outcome, v.better, v.mode) == (VerdictOutcome.CANDIDATE, 2, "shadow")
    assert (v.stable_labelled, v.candidate_labelled) == (60, 60)
    assert v.difference == pytest.approx(0.3) and v.low > 0 and "paired" in v.method


def test_regression_compares_mean_absolute_errors(backend: str) -> None:
    with store_session() as s:
        _canary(s, task="regression")
        rng = np.random.default_rng(3)
        for version, noise in ((1, 1.0), (2, 1.0)):
            for i, e in enumerate(rng.normal(0, noise, 50)):
                s.add(PredictionLog(request_id=f"r{version}-{i}", model_name="churn",
                                    version=version, predictions=[10.0 + e], actual=[10.0]))
        s.commit()
        v = verdict("churn", "regression", session=s)
    assert (v.measure, v.outcome, v.better) == ("mae", VerdictOutcome.UNDECIDED, None)
    assert v.low < 0 < v.high and "Welch" in v.method


def test_no_candidate_no_verdict(backend: str) -> None:
    with store_session() as s:
        register_numeric(s)
        dep.deploy("churn", 1, session=s)
        _log(s, 1, hits=40, misses=0)
        card = model_scorecard("churn", session=s)
    assert card.verdict is None and card.versions[0].accuracy == 1.0
    assert "mae" not in card.model_dump(mode="json")["versions"][0]
