"""The AutoML search: known-good defaults first, then Optuna per estimator, budget-aware
allocation, fold-by-fold pruning, greedy ensembling, and a refit that fits in the budget.

`search(df, target, budget=…)` is the Python API; `run_search(prepared_data, …)` is what the
job runner calls. The wall-time promise: search + final refit ≤ budget (+10 % at worst), kept
by estimating each next trial and the refit from measured times and by checking the clock
between folds.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

from core.automl import budget as bud
from core.automl import ensemble as ens
from core.automl import portfolio as zero_shot
from core.automl import stacking as stk
from core.automl.budget import REFIT_CLOCK_MARGIN, REFIT_SAFETY, OutOfTime, Pace, interrupt_at
from core.automl.catalog import EstimatorSpec, check_search_space, get_spec, specs_for
from core.automl.importance import feature_importance
from core.automl.request import TrainingRequest
from core.automl.scheduler import Arm, choose, expected_cpu
from core.automl.suggest import suggestions
from core.automl.train import (
    CVResult,
    TrainingData,
    build_pipeline,
    context_params,
    cross_validate,
    evaluate,
    fit_final,
    prepare,
)
from core.enums import Task, TrialState
from core.errors import WorkbenchError
from core.store.shapes import Evaluation, Params

# TrainingRequest (the one place options are checked) is imported above, not inside `search`:
# its imports (the registry's skops: seconds) are paid with this module's, not on a budget
optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=4,
                                                   multivariate=True),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
GRID_POINTS = 4         # values per numeric parameter in grid search
ENSEMBLE_MIN_GAIN = 1e-4
MAX_TRIAL_TRAIN_ROWS = 20_000
# Permutation importance needing more than half the budget and more than 5 s (wide tables:
# one shuffle per column) is skipped with a note instead of breaking the budget.
IMPORTANCE_MAX_SHARE = 0.5
IMPORTANCE_MIN_S = 5.0


class SearchCancelled(Exception):
    """The caller asked the search to stop; the trials so far were already reported."""


@dataclass
class TrialResult:
    number: int
    estimator: str
    params: Params
    status: str  # ok | pruned | failed
    cv: CVResult | None = None
    reason: str = ""
    seconds: float = 0.0
    worker: str = ""  # the Dask worker that evaluated it (core.automl.cluster); "" = here

    @property
    def score(self) -> float | None:
        return self.cv.mean if self.cv is not None and self.status == TrialState.OK else None


@dataclass
class SearchResult:
    data: TrainingData
    trials: list[TrialResult]
    best: TrialResult            # what was registered: the best single trial or the ensemble
    pipeline: Any
    evaluation: Evaluation
    elapsed_s: float
    budget_s: float
    notes: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    best_single: TrialResult | None = None

    def leaderboard(self) -> pd.DataFrame:
        rows = self.trials + ([self.best] if self.best.estimator == "ensemble" else [])
        return leaderboard_frame(rows, self.data.metric.name, self.data.metric.greater_is_better)


def leaderboard_frame(trials: list[TrialResult], metric: str,
                      greater_is_better: bool) -> pd.DataFrame:
    rows = [{
        "rank": None, "trial": t.number, "estimator": t.estimator,
        "params": ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items()),
        f"{metric}_mean": t.score, f"{metric}_std": t.cv.std if t.score is not None else None,
        "fit_time_s": t.cv.fit_time_s if t.cv else None,
        "predict_ms_per_1k": t.cv.predict_ms_per_1k if t.cv else None,
        "status": t.status, "reason": t.reason,
    } for t in trials]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values(f"{metric}_mean", ascending=not greater_is_better,
                              na_position="last", kind="stable").reset_index(drop=True)
    frame["rank"] = range(1, len(frame) + 1)
    return frame


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def search(frame: pd.DataFrame, target: str, *, budget: float | None = None,
           n_trials: int | None = None, search_space: Mapping[str, Any] | None = None,
           metric: str | None = None, task: str | None = None, seed: int = 0,
           time_column: str | None = None, **kwargs: Any) -> SearchResult:
    """The Python API: search for the best pipeline predicting `target` within `budget`
    seconds and/or `n_trials` trials (whichever comes first; the budget defaults to 60 s,
    or to the one-hour cap when only `n_trials` is given), with `search_space` overrides as
    `TrainingRequest` takes them; returns the leaderboard and the fitted best pipeline."""
    started = time.monotonic()
    if n_trials is None:  # run_search's name for it, which this API always passed on
        n_trials = kwargs.pop("max_trials", None)
    request = TrainingRequest.create(dataset=0, target=target, budget=budget, seed=seed,
                                     n_trials=n_trials, search_space=search_space)
    data = prepare(frame, target, task=task, metric=metric, seed=seed, time_column=time_column)
    return run_search(data, budget=request.budget - (time.monotonic() - started), seed=seed,
                      max_trials=request.n_trials, search_space=request.space_overrides(),
                      **kwargs)


def run_search(data: TrainingData, *, budget: float = 60.0, seed: int = 0,
               estimators: list[str] | None = None, sampler: str = "tpe",
               ensemble: bool = True, max_trials: int | None = None,
               on_trial: Callable[[TrialResult, TrainingData], None] | None = None,
               should_stop: Callable[[], bool] | None = None,
               pause_gate: Callable[[], float] | None = None,
               fixed_params: Params | None = None,
               search_space: Mapping[str, Mapping[str, Any]] | None = None,
               dask: Any = None, portfolio: bool = True) -> SearchResult:
    """Search prepared data within `budget` seconds and at most `max_trials` trials. With
    `fixed_params` and one estimator, evaluate exactly that configuration (no search).
    `search_space` overrides estimators' spaces (estimator -> parameter -> a range
    `{"low", "high"}`, a list of choices or one value; checked against the catalogue).

    `should_stop()` is asked between trials and folds (cancel); `pause_gate()` is called
    between trials, may block while the job is paused, and returns the seconds it waited,
    which do not count against the budget.

    Native thread pools (OpenMP, BLAS) are held to one thread: on a small shared machine,
    oversubscribed OpenMP spin-waits made one search 15x slower; parallelism belongs to
    trials and workers, not inside an estimator.

    `dask` (a scheduler address or a `distributed.Client`; default: the
    WORKBENCH_DASK_SCHEDULER setting) evaluates the trials in parallel on a Dask cluster
    (core.automl.cluster); without one, or for one fixed configuration, they run here.

    `portfolio` (on by default) tries the shipped zero-shot configurations for the task kind
    (core.automl.portfolio) as the first trials, before the sampler takes over."""
    options = dict(budget=budget, seed=seed, estimators=estimators, sampler=sampler,
                   ensemble=ensemble, max_trials=max_trials, on_trial=on_trial,
                   should_stop=should_stop, pause_gate=pause_gate, fixed_params=fixed_params,
                   search_space=search_space, portfolio=portfolio)
    if dask is None:
        from core.settings import get_settings
        dask = get_settings().dask_scheduler
    with threadpool_limits(limits=1):
        if dask and fixed_params is None:
            from core.automl.cluster import run_on_cluster  # imports distributed: only here
            return run_on_cluster(data, dask, **options)
        return _Search(data, **options).run()


class _Search:
    def __init__(self, data: TrainingData, *, budget: float, seed: int,
                 estimators: list[str] | None, sampler: str, ensemble: bool,
                 max_trials: int | None, on_trial: Any, should_stop: Any, pause_gate: Any,
                 fixed_params: Params | None,
                 search_space: Mapping[str, Mapping[str, Any]] | None = None,
                 portfolio: bool = True) -> None:
        if sampler not in (*SAMPLERS, "grid"):
            raise WorkbenchError(f"Unknown search method {sampler!r}: use tpe, random or grid.")
        if fixed_params is not None and (not estimators or len(estimators) != 1):
            raise WorkbenchError("Training one configuration needs exactly one estimator.")
        data = _cap_trial_rows(data, seed)
        self.data, self.seed, self.sampler = data, seed, sampler
        # The refit uses every row; trials used at most MAX_TRIAL_TRAIN_ROWS of them.
        self.refit_scale = len(data.y) / np.mean([len(tr) for tr, _ in data.splits])
        self.started = time.monotonic()
        self.end = self.started + budget
        self.budget = budget
        self.use_ensemble = ensemble and fixed_params is None
        self.max_trials = 1 if fixed_params is not None else max_trials
        self.on_trial, self.should_stop, self.pause_gate = on_trial, should_stop, pause_gate
        self.fixed_params = fixed_params
        self.rng = np.random.default_rng(seed)
        specs = ([get_spec(k, data.task) for k in estimators] if estimators
                 else specs_for(data.task))
        check_search_space(search_space, data.task, tuple(s.key for s in specs))
        specs = [s.with_overrides(data.task, (search_space or {}).get(s.key)) for s in specs]
        if any(s.family in ("deep", "sequence") for s in specs):  # a PyTorch network:
            import core.automl.deep.base  # noqa: F401  torch's import (seconds) is spent
            # here, on the budget's clock, so the first fit's time limit already accounts for it
        # zero-shot seeding: the portfolio's configurations (families allowed here, inside
        # any user override) are enqueued first and run first, in the portfolio's order
        use = portfolio and sampler != "grid" and fixed_params is None
        self.portfolio = zero_shot.points(specs, data.task) if use else []
        self.arms = [self._arm(spec, i) for i, spec in enumerate(specs)]
        self.seed_queue = [a for e, _ in self.portfolio for a in self.arms if a.spec.key == e]
        self.trials: list[TrialResult] = []
        self.incumbent: TrialResult | None = None
        self.pace = Pace()  # the machine's measured progress (core.automl.budget)
        self.refit_notes: list[str] = []
        # small shuffled k-fold tables: the best trials' fold models are kept, to be bagged
        # (ensembles allowed only: `ensemble=False` asks for one pipeline refitted, as before)
        self.keep_folds = self.use_ensemble and _partitioned(data) and stk.bagging_possible(
            len(data.y), len(data.splits), data.time_column is not None)

    # -- studies ---------------------------------------------------------------------------
    def _arm(self, spec: EstimatorSpec, index: int) -> Arm:
        """An Optuna study per estimator; defaults (or, for grid search, every grid point)
        are enqueued so they are asked first."""
        sampler = self._sampler(self.seed + index)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        if self.fixed_params is not None:
            return Arm(spec, study)
        points = _grid(spec) if self.sampler == "grid" else spec.defaults
        seeded = [p for e, p in self.portfolio if e == spec.key]
        for point in [*seeded, *(p for p in points if p not in seeded)]:
            study.enqueue_trial(point)
        return Arm(spec, study, grid_size=len(points) if self.sampler == "grid" else None)

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return SAMPLERS["random" if self.sampler == "grid" else self.sampler](seed)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> SearchResult:
        while not self._done():
            refit = self._refit_reserve()
            arm = self._next_seed(self.end - time.monotonic() - refit) or choose(
                self.arms, self.end - time.monotonic() - refit, self.rng,
                estimate=self._expected_s)
            if arm is None:
                if self.trials:
                    break
                arm = min(self.arms, key=lambda a: a.spec.cost)  # always try one candidate
            self._run_trial(arm)
        if self.should_stop is not None and self.should_stop():
            raise SearchCancelled()
        return self._finish()

    def _next_seed(self, remaining_s: float) -> Arm | None:
        """The arm of the portfolio's next configuration, skipping those not expected to
        end in time (the sampler goes on after the queue is empty)."""
        while self.seed_queue:
            arm = self.seed_queue.pop(0)
            if not arm.dead and self._expected_s(arm) <= remaining_s:
                return arm  # (one passed over stays enqueued: its arm's next trial runs it)
        return None

    def _done(self) -> bool:
        if self.pause_gate is not None:
            self.end += self.pause_gate()
        if self.max_trials is not None and len(self.trials) >= self.max_trials:
            return True
        if self.should_stop is not None and self.should_stop():
            return True
        return bool(self.trials) and time.monotonic() >= self.end

    def _expected_s(self, arm: Arm) -> float:
        """Wall seconds the arm's next trial is expected to take at the current pace."""
        return self.pace.wall(expected_cpu(arm, self.arms, len(self.data.splits)))

    def _refit_s_of(self, trials: list[TrialResult]) -> float:
        """Wall seconds to refit `trials` on every row, from their measured folds."""
        cpu = sum(float(np.mean(t.cv.fold_cpu)) for t in trials if t.cv and t.cv.fold_cpu)
        return self.pace.wall(cpu * self.refit_scale)

    def _refit_reserve(self) -> float:
        """What the end needs, kept back from the trials: refitting the best trials (the
        ensemble's likely members), permutation importance, and the finishing work."""
        if self.incumbent is None or self.incumbent.cv is None:
            return 0.0
        members = self._unbagged(self._top(3 if self.use_ensemble else 1))  # bags: no refit
        importance = self._importance_reserve(self.incumbent)
        finish = self.pace.wall(bud.FINISH_S + bud.FINISH_S_PER_ROW * len(self.data.y))
        return REFIT_SAFETY * (self._refit_s_of(members) + importance) + finish

    def _top(self, n: int) -> list[TrialResult]:
        ok = [t for t in self.trials if t.status == TrialState.OK]
        return sorted(ok, key=lambda t: self.data.metric.oriented(t.score), reverse=True)[:n]

    def _trial_deadline(self) -> float | None:
        """Trials end where the refit's reserve begins; the first trial is never cut (there
        must be a model)."""
        if self.incumbent is None or self.fixed_params is not None:
            return None
        return self.end - self._refit_reserve()

    def _importance_reserve(self, best: TrialResult) -> float:
        """Seconds to keep for permutation importance: none when it will be skipped."""
        needed = _importance_seconds(self.data, best)
        if self._skip_importance(needed):
            return 0.0
        return min(self.pace.wall(needed), bud.IMPORTANCE_RESERVE_SHARE * self.budget)

    def _skip_importance(self, needed: float) -> bool:
        return needed > max(IMPORTANCE_MAX_SHARE * self.budget, IMPORTANCE_MIN_S)

    def _run_trial(self, arm: Arm) -> None:
        number = len(self.trials)
        trial = arm.study.ask(arm.spec.space)
        params = dict(trial.params)
        if self.fixed_params is not None:  # may name parameters outside the search space
            params = {**arm.spec.defaults[0], **self.fixed_params}
        started = time.monotonic()
        result = self._evaluate(number, arm, params)
        result.seconds = time.monotonic() - started
        self._tell(arm, trial, result)

    def _tell(self, arm: Arm, trial: optuna.trial.Trial, result: TrialResult) -> None:
        """Record a finished trial: the leaderboard, its study, the arm's statistics; then
        release what is no longer needed (memory)."""
        self.trials.append(result)
        if result.cv is not None:
            arm.fold_cpu.extend(result.cv.fold_cpu)
        if result.status == TrialState.OK:
            arm.study.tell(trial, self.data.metric.oriented(result.score))
            arm.scores.append(self.data.metric.oriented(result.score))
            arm.stds.append(result.cv.std)
            arm.seconds.append(result.seconds)
            if self.incumbent is None or self._better(result, self.incumbent):
                if self.incumbent is not None and self.incumbent.cv is not None:
                    self.incumbent.cv.release(predictions=False)
                self.incumbent = result
        elif result.status == TrialState.PRUNED:
            arm.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            arm.seconds.append(result.seconds)
        else:
            arm.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            arm.failures += 1
        if self.on_trial:
            self.on_trial(result, self.data)
        self._release(result)

    def _release(self, result: TrialResult) -> None:
        """Keep a fold model for the incumbent only (importance, the refit's fallback) and
        out-of-fold predictions only for trials that can still join the ensemble."""
        if result.cv is not None and result is not self.incumbent:
            result.cv.release(predictions=result.status != TrialState.OK)
        keep = {id(t) for t in self._top(ens.MAX_CANDIDATES if self.use_ensemble else 1)}
        for t in self.trials:
            if t.cv is not None and t.cv.oof_pred is not None and id(t) not in keep \
                    and t is not self.incumbent:
                t.cv.release(predictions=True)
        bags = {id(t) for t in self._top(stk.BAGGING.members)}
        for t in self.trials:
            if t.cv is not None and t.cv.fold_models is not None and id(t) not in bags:
                t.cv.fold_models = None
        gc.collect(1)  # a trial's own cycles; a full collection costs seconds under load

    def _better(self, a: TrialResult, b: TrialResult) -> bool:
        return self.data.metric.oriented(a.score) > self.data.metric.oriented(b.score)

    def _evaluate(self, number: int, arm: Arm, params: Params) -> TrialResult:
        """One trial; an estimator that fails is recorded with its reason, never fatal."""

        deadline = self._trial_deadline()

        def stop(fold: int, scores: list[float]) -> str | None:
            if self.should_stop is not None and self.should_stop():
                return "cancelled"
            if deadline is not None and time.monotonic() >= deadline:
                return "out of time"
            if self._weaker_than_incumbent(fold, scores):
                return f"pruned after fold {fold + 1}: behind the best trial"
            return None

        # a network's each fit may train for a share of what is left of the budget (the
        # rest pays for building inputs and predicting the fold)
        until = self.end if deadline is None else deadline
        seconds = 0.6 * (until - time.monotonic()) / max(len(self.data.splits), 1)
        return evaluate_trial(self.data, arm.spec, params, seed=self.seed, number=number,
                              stop=stop, seconds=seconds, deadline=deadline, pace=self.pace,
                              keep_folds=self.keep_folds)

    def _weaker_than_incumbent(self, fold: int, scores: list[float]) -> bool:
        best = self.incumbent
        if best is None or best.cv is None or self.fixed_params is not None:
            return False
        return behind(self.data.metric, fold, scores, best.cv.scores, best.cv.std)

    def _params(self, spec: EstimatorSpec, params: Params, seconds: float) -> Params:
        return context_params(spec, _with_seed(spec, params, self.seed), self.data, seconds)

    def _refit_s(self) -> float:
        """A refit's own clock (networks, boosters' `max_time_s`): what is left until the refit
        limit less a margin, so the estimator stops itself before `interrupt_at`'s alarm
        (CatBoost checks its clock only between iterations)."""
        left = self._refit_limit() - time.monotonic()
        return left - min(REFIT_CLOCK_MARGIN * left, 0.02 * self.budget + 0.2)

    # -- the end ---------------------------------------------------------------------------
    def _finish(self) -> SearchResult:
        ok = [t for t in self.trials if t.status == TrialState.OK]
        if not ok:
            reasons = "; ".join(f"{t.estimator}: {t.reason}" for t in self.trials)
            raise WorkbenchError("Every candidate failed to train, so no model was produced. "
                                 f"Reasons: {reasons}")
        best = max(ok, key=lambda t: self.data.metric.oriented(t.score))
        chosen, pipeline = best, None
        if self.use_ensemble and len(ok) > 1:
            chosen, pipeline = self._ensemble(ok, best)
        if pipeline is None:
            pipeline = self._refit(best)
        for t in self.trials:  # the model holds the fold models it bagged; drop the rest
            if t.cv is not None:
                t.cv.fold_models = None
        evaluation = evaluate(self.data, chosen.cv)
        importance, skipped = self._importance(best)  # after the model: it may be cut short
        evaluation = {**evaluation, "feature_importance": importance}
        elapsed = time.monotonic() - self.started
        result = SearchResult(data=self.data, trials=self.trials, best=chosen,
                              pipeline=pipeline, evaluation=evaluation, elapsed_s=elapsed,
                              budget_s=self.budget,
                              notes=[*self.data.notes, *skipped, *self.refit_notes],
                              best_single=best)
        result.suggestions = suggestions(result)
        return result

    def _refit_limit(self) -> float:
        return self.end + bud.REFIT_MARGIN * self.budget

    def _refit(self, best: TrialResult) -> Any:
        """The best configuration fitted on every row; when that is predicted not to end,
        or does not end, by the refit limit, its last fold's model instead (with a note).
        With its fold models kept (small tables), their bag instead of any refit."""
        if (bagged := self._bag(best)) is not None:
            return bagged
        spec = get_spec(best.estimator)
        pipeline = build_pipeline(spec, self.data.task,
                                  self._params(spec, best.params, self._refit_s()),
                                  self.data.schema)
        fold_model = best.cv.last_model if self.fixed_params is None else None
        if fold_model is not None and not self._knows_every_class(fold_model):
            return self._refit_over_time(pipeline)
        if fold_model is None:
            return fit_final(pipeline, self.data)
        if time.monotonic() + self._refit_s_of([best]) <= self._refit_limit():
            try:
                with interrupt_at(self._refit_limit()):
                    return fit_final(pipeline, self.data)
            except OutOfTime:
                pass
        rows = len(self.data.splits[-1][0])
        self.refit_notes.append(
            f"The budget left no time to refit the best pipeline on all {len(self.data.y)} "
            f"rows, so its model from the last validation fold (trained on about {rows} rows) "
            "was kept. Give a larger budget to refit on every row.")
        return fold_model

    def _knows_every_class(self, model: Any) -> bool:
        """Whether a fold model answers for every class the version will declare (serving
        maps probabilities to `problem.classes`; a class missing from the last fold's
        training rows would break every request)."""
        if self.data.task == Task.REGRESSION:
            return True
        return list(getattr(model, "classes_", [])) == list(self.data.problem.classes)

    def _refit_over_time(self, pipeline: Any) -> Any:
        """The full refit, not interrupted: the fold model cannot stand in for it."""
        fitted = fit_final(pipeline, self.data)
        over = time.monotonic() - self._refit_limit()
        if over > 0:
            self.refit_notes.append(
                f"Refitting the best pipeline on all {len(self.data.y)} rows ran {over:.1f} s "
                "past the budget: its model from the last validation fold lacks some classes, "
                "so it could not be kept instead.")
        return fitted

    def _importance(self, best: TrialResult) -> tuple[list[dict[str, Any]], list[str]]:
        """Permutation importance (reserved in the loop), or a note saying why not."""
        needed = _importance_seconds(self.data, best)
        if self._skip_importance(needed):
            return [], [f"Feature importance was not computed: shuffling each of the "
                        f"{self.data.X.shape[1]} columns would take about {needed:.0f} s, "
                        f"more than half of the {self.budget:g} s budget. Give a larger "
                        "budget to see it."]
        model = best.cv.last_model if best.cv else None
        if model is not None and not self._knows_every_class(model):
            return [], ["Feature importance was not computed: the last validation fold's "
                        "model did not see every class (time-ordered rows), so its scores "
                        "cannot be compared."]
        try:
            until = max(self.end + bud.IMPORTANCE_MARGIN * self.budget,
                        time.monotonic() + bud.IMPORTANCE_FLOOR_S)
            with interrupt_at(until):
                return feature_importance(self.data, best.cv, self.seed), []
        except OutOfTime:
            return [], ["Feature importance was not computed: the budget ran out before it "
                        "finished. Give a larger budget to see it."]

    def _ensemble(self, ok: list[TrialResult], best: TrialResult
                  ) -> tuple[TrialResult, Any]:
        m, data = self.data.metric, self.data
        covered = best.cv.covered
        pool = sorted((t for t in ok if t.cv.oof_pred is not None
                       and np.array_equal(t.cv.covered, covered)),
                      key=lambda t: m.oriented(t.score), reverse=True)[:ens.MAX_CANDIDATES]
        if len(pool) < 2:
            return best, None
        classification = data.task != Task.REGRESSION
        preds = [(t.cv.oof_proba if classification else t.cv.oof_pred)[covered].astype(float)
                 for t in pool]
        y = data.y.to_numpy()[covered]
        classes = data.problem.classes if classification else None
        selection = ens.select(m, y, preds, classes)
        gain = m.oriented(selection.score) - m.oriented(best.score)
        greedy = len(selection.members) >= 2 and \
            gain > ENSEMBLE_MIN_GAIN * max(abs(best.score), 1e-9)
        stacked, chosen = self._stacker(pool, preds, y, selection, greedy, best)
        if stacked is None and not greedy:
            return best, None
        members = [pool[i] for i in chosen]
        kind = "A stacked ensemble" if stacked is not None else "An ensemble"
        if time.monotonic() + self._refit_s_of(self._unbagged(members)) > self._refit_limit():
            self.refit_notes.append(f"{kind} of {len(members)} pipelines scored better, "
                                    "but the budget left no time to refit them all: the best "
                                    "single pipeline is kept.")
            return best, None
        pipelines = []
        try:
            with interrupt_at(self._refit_limit()):
                for t in members:
                    bagged = self._bag(t)
                    pipelines.append(bagged if bagged is not None else self._refit_member(t))
        except OutOfTime:
            self.refit_notes.append(f"Refitting the {'stacked ' if stacked else ''}ensemble "
                                    "ran out of time: the best single pipeline is kept.")
            return best, None
        bagged = sum(type(p) is ens.WeightedEnsemble for p in pipelines)
        params: Params = {"members": [f"{t.estimator}#{t.number}" for t in members]}
        if stacked is not None:
            model = stk.StackedEnsemble(pipelines, stacked.coef, stacked.intercept, data.task)
            blended, score = stacked.oof, stacked.score
            params["combiner"] = "stacker"
            reason = (f"a stacker on the members' out-of-fold predictions scores "
                      f"{_fmt(score)} on rows it did not learn from")
        else:
            model = stk.flatten(pipelines, selection.weights, data.task)
            blended = sum(w * p for w, p in zip(selection.weights,
                                                [preds[i] for i in chosen], strict=True))
            score = selection.score
            params["weights"] = [round(w, 3) for w in selection.weights]
            reason = f"beats the best single pipeline by {abs(gain):.4g}"
        if bagged:
            params["bagged"] = f"{bagged} of {len(members)} members: fold models averaged"
        cv = _ensemble_cv(members, covered, blended, data)
        result = TrialResult(len(self.trials), "ensemble", params, "ok", cv=cv, reason=reason)
        result.cv.scores = [score]
        return result, model

    def _stacker(self, pool: list[TrialResult], preds: list[np.ndarray], y: np.ndarray,
                 selection: ens.EnsembleSelection, greedy: bool, best: TrialResult
                 ) -> tuple[stk.StackerFit | None, list[int]]:
        """A stacker over the greedy ensemble's members (or the best few pipelines), kept when
        its cross-validated score beats the greedy ensemble's in-sample one (or the best single
        pipeline's) by core.automl.stacking.STACKING's margin; and the members to use."""
        m, data = self.data.metric, self.data
        reference = selection.score if greedy else best.score
        chosen = (selection.members if len(selection.members) >= 2
                  else list(range(min(stk.STACKING.members, len(pool)))))
        if len(chosen) < 2:
            return None, selection.members
        refit_s = self._refit_s_of(self._unbagged([pool[i] for i in chosen]))
        classes = data.problem.classes if data.task != Task.REGRESSION else None
        try:
            fit = stk.cross_validated_stacker(m, y, [preds[i] for i in chosen], data.task,
                                              classes, seed=self.seed,
                                              deadline=self._refit_limit() - refit_s)
        except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate combiner fit
            log.info("stacker not fitted: %s", exc)
            fit = None
        return (fit, chosen) if stk.keeps(m, fit, reference) else (None, selection.members)

    def _bag(self, t: TrialResult) -> Any:
        """The trial's fold models as one bagged member, when kept and every one of them knows
        every class; else None."""
        folds = t.cv.fold_models if t.cv is not None else None
        if not self.keep_folds or not folds or len(folds) != len(self.data.splits):
            return None
        if not all(self._knows_every_class(f) for f in folds):
            return None
        return stk.bag(folds, self.data.task)

    def _unbagged(self, trials: list[TrialResult]) -> list[TrialResult]:
        return [t for t in trials if self._bag(t) is None]

    def _refit_member(self, t: TrialResult) -> Any:
        spec = get_spec(t.estimator)
        return fit_final(build_pipeline(spec, self.data.task,
                                        self._params(spec, t.params, self._refit_s()),
                                        self.data.schema), self.data)


def evaluate_trial(data: TrainingData, spec: EstimatorSpec, params: Params, *, seed: int,
                   number: int, stop: Callable[[int, list[float]], str | None],
                   seconds: float | None = None, deadline: float | None = None,
                   pace: Pace | None = None, keep_folds: bool = False) -> TrialResult:
    """Cross-validate one configuration; an estimator that fails is recorded with its reason,
    never fatal. `stop(fold, scores)` returns why to stop after that fold, or None; `seconds`
    caps each fit of a network (core.automl.train.context_params); `deadline` (monotonic)
    stops the trial inside a fold (core.automl.budget). Used here and, on a Dask worker, by
    core.automl.cluster (so both evaluate alike)."""
    stop_reason: list[str] = []

    def should_stop(fold: int, scores: list[float]) -> bool:
        reason = stop(fold, scores)
        if reason:
            stop_reason.append(reason)
        return bool(reason)

    try:
        pipeline = build_pipeline(spec, data.task,
                                  context_params(spec, _with_seed(spec, params, seed), data,
                                                 seconds), data.schema)
        cv = cross_validate(pipeline, data, should_stop=should_stop, deadline=deadline,
                            pace=pace, keep_folds=keep_folds)
    except WorkbenchError as exc:
        return TrialResult(number, spec.key, params, "failed", reason=exc.message)
    except Exception as exc:  # an estimator crashing must not abort the search
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return TrialResult(number, spec.key, params, "failed", reason=last[:500])
    if not cv.complete:
        return TrialResult(number, spec.key, params, "pruned", cv=cv,
                           reason=(stop_reason or [cv.stopped or "pruned"])[0])
    if not np.isfinite(cv.mean):
        return TrialResult(number, spec.key, params, "failed", cv=cv,
                           reason="the metric was not finite on some fold")
    return TrialResult(number, spec.key, params, "ok", cv=cv)


def behind(metric: Any, fold: int, scores: list[float], best_scores: list[float],
           best_std: float) -> bool:
    """Whether a trial's running mean trails the best trial's running mean on the same folds
    by the margins of the rule for this fold (core.automl.budget.PRUNE_RULES: far behind
    after one fold, or behind by the best's spread after two or more)."""
    rules = [r for r in bud.PRUNE_RULES if r.after_fold <= fold]
    if not rules or len(best_scores) <= fold:
        return False
    rule = max(rules, key=lambda r: r.after_fold)
    ours = metric.oriented(float(np.mean(scores)))
    theirs = metric.oriented(float(np.mean(best_scores[:fold + 1])))
    return bud.hopeless(ours, theirs, best_std, rule)


def _ensemble_cv(members: list[TrialResult], covered: np.ndarray, blended: np.ndarray,
                 data: TrainingData) -> CVResult:
    n = len(data.y)
    if data.task == Task.REGRESSION:
        pred = np.full(n, np.nan)
        pred[covered] = blended
        proba = None
    else:
        classes = np.asarray(data.problem.classes)
        proba = np.full((n, len(classes)), np.nan)
        proba[covered] = blended
        pred = classes[np.zeros(n, dtype=int)]
        pred[covered] = classes[np.argmax(blended, axis=1)]
    return CVResult(scores=[], fit_time_s=sum(t.cv.fit_time_s for t in members),
                    predict_ms_per_1k=sum(t.cv.predict_ms_per_1k for t in members),
                    oof_pred=pred, oof_proba=proba, covered=covered)


def _partitioned(data: TrainingData) -> bool:
    """Whether the validation folds cover every row exactly once (k-fold: bags possible)."""
    rows = np.concatenate([va for _, va in data.splits]) if data.splits else np.empty(0)
    return len(data.splits) >= 2 and len(rows) == len(data.y) and \
        len(np.unique(rows)) == len(data.y)


def _cap_trial_rows(data: TrainingData, seed: int) -> TrainingData:
    """Trials fit on at most MAX_TRIAL_TRAIN_ROWS training rows per fold (validation rows are
    kept whole): on large tables this buys many more configurations per budget, and the
    winner is still refitted on every row."""
    rng = np.random.default_rng(seed)
    capped = [(np.sort(rng.choice(tr, MAX_TRIAL_TRAIN_ROWS, replace=False))
               if len(tr) > MAX_TRIAL_TRAIN_ROWS else tr, va) for tr, va in data.splits]
    if all(len(a) == len(b) for (a, _), (b, _) in zip(capped, data.splits, strict=True)):
        return data
    return dataclasses.replace(data, splits=capped)


def _importance_seconds(data: TrainingData, best: TrialResult) -> float:
    """Permutation importance predicts the validation rows once per column and repeat."""
    rows = min(len(best.cv.last_valid) if best.cv.last_valid is not None else 0, 2000)
    return data.X.shape[1] * 4 * rows / 1000 * best.cv.predict_ms_per_1k / 1000


def _with_seed(spec: EstimatorSpec, params: Params, seed: int) -> Params:
    if "random_state" in spec.fixed and "random_state" not in params:
        return {**params, "random_state": seed}
    return params


def _grid(spec: EstimatorSpec) -> list[Params]:
    """Every combination of a few values per parameter (GRID_POINTS per numeric one)."""
    axes = _grid_axes(spec)
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def _grid_axes(spec: EstimatorSpec) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for name, dist in spec.space.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            grid[name] = list(dist.choices)
            continue
        low, high = dist.low, dist.high
        pts = (np.geomspace(low, high, GRID_POINTS) if dist.log
               else np.linspace(low, high, GRID_POINTS))
        if isinstance(dist, optuna.distributions.IntDistribution):
            grid[name] = sorted({int(round(p)) for p in pts})
        else:
            grid[name] = [float(p) for p in pts]
    return grid
