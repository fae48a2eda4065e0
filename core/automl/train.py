"""Training one configuration: build the pipeline, cross-validate it, fit it on all rows.

The AutoML search (core.automl.search) and `workbench train` both go through here, so a
searched model and a hand-configured one are evaluated and registered the same way.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

from core.automl.budget import FoldClock, OutOfTime, Pace, folds_for, interrupt_at, next_fold_fits
from core.automl.catalog import EstimatorSpec
from core.automl.intervals import calibrate
from core.automl.memory import compact, trial_cap_bytes
from core.automl.metrics import Metric, all_scores, class_balance, get_metric
from core.automl.watchdog import OverMemory, last_reason
from core.automl.wrappers import LabelEncodedClassifier
from core.data.profile import ProblemType, check_target, detect_problem_type, input_schema
from core.data.splits import DEFAULT_FOLDS, DEFAULT_GAP, make_splits, walk_forward
from core.enums import Task
from core.errors import InvalidDataError, ResourceLimitError
from core.features.finance import INDICATOR_NAMES, find_column, parse_time
from core.features.kinds import scored_as_number
from core.features.preprocess import build_preprocessor, used_columns
from core.features.schema import align_to_schema
from core.store.shapes import Evaluation, Params, SchemaColumn


@dataclass
class TrainingData:
    """A validated table split into features and target, with everything decided about it."""

    X: pd.DataFrame
    y: pd.Series
    schema: list[SchemaColumn]
    problem: ProblemType
    metric: Metric
    splits: list[tuple[np.ndarray, np.ndarray]]
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # set when validated in time order (walk-forward); see core.data.splits.walk_forward
    time_column: str | None = None
    time: pd.Series | None = None          # parsed timestamps, aligned with X
    ticker_column: str | None = None
    holdout: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    gap: int = 0
    folds: list[dict[str, object]] = field(default_factory=list)  # fold boundaries, for display

    @property
    def task(self) -> str:
        return self.problem.task


def prepare(frame: pd.DataFrame, target: str, *, task: str | None = None,
            metric: str | None = None, seed: int = 0,
            time_column: str | None = None, detect_time: bool = True,
            ticker_column: str | None = None, gap: int | None = None,
            holdout: float | int | None = None,
            exclude: tuple[str, ...] | list[str] = ()) -> TrainingData:
    """Check the target, detect the task, and drop rows whose target is missing.

    Time order (see core.data.splits.walk_forward): with `time_column`, or when the table looks
    like market data (a datetime column plus a ticker or price/volume columns) and
    `detect_time` is on, validation is walk-forward with an embargo of `gap` timestamps
    (default 1; pass the target's horizon) and the most recent `holdout` share or count of
    timestamps kept out of every fold (default one block). Leakage guards add notes.

    `exclude` names columns left out of the features (the time column may be one of them:
    it still orders the folds)."""
    y = check_target(frame, target)
    notes: list[str] = []
    missing = int(y.isna().sum())
    if missing:
        notes.append(f"{missing} rows with an empty target were left out of training.")
        frame = frame.loc[y.notna()].reset_index(drop=True)
        y = frame[target]
    problem = detect_problem_type(y, task)
    chosen = get_metric(metric, problem.task)
    if time_column is not None and time_column not in frame.columns:
        raise InvalidDataError(f"The time column {time_column!r} is not in the data.")
    missing_cols = [c for c in exclude if c not in frame.columns]
    if missing_cols:
        raise InvalidDataError("Cannot leave out " + ", ".join(repr(c) for c in missing_cols)
                               + ": not a column of the data.")
    if target in exclude:
        raise InvalidDataError(f"The target {target!r} cannot be left out: it is what the "
                               "model predicts. Choose another target or keep it.")
    X = frame.drop(columns=[target, *exclude])
    if exclude:
        notes.append("Left out of the features on request: "
                     + ", ".join(repr(c) for c in exclude) + ".")
    empty = [str(c) for c in X.columns if X[c].isna().all()]
    if empty:
        notes.extend(f"Column {c!r} is empty in every row and was left out." for c in empty)
        X = X.drop(columns=empty)
    if X.shape[1] == 0:
        raise InvalidDataError("The table has no columns besides the target: add feature "
                               "columns to learn from.")
    schema = input_schema(X)
    # time detection looks at every date, including those left out of the features
    everything = input_schema(frame.drop(columns=[target])) if exclude else schema
    _, dropped = used_columns(schema)
    dropped.update({str(c): "left out on request" for c in exclude})
    if len(dropped) == len(schema) + len(exclude):
        raise InvalidDataError("Every feature column is an identifier or free text, so there is "
                               "nothing to learn from: " + ", ".join(repr(c) for c in dropped))
    X = compact(align_to_schema(X, schema), schema)  # float32 numbers, category codes
    if problem.task != Task.REGRESSION and y.value_counts().min() < 2:
        rare = y.value_counts()
        raise InvalidDataError(
            f"The class {rare.idxmin()!r} of {target!r} occurs only once: each class needs at "
            "least two rows to be validated. Remove or merge that class.")
    if time_column is None and detect_time:
        time_column = _detect_time_column(frame.drop(columns=[target]), everything)
        if time_column is not None:
            notes.append(f"Validating in time order by {time_column!r}, which looks like the "
                         "time of market data: shuffled folds would train on the future. "
                         "Name another time column to change it.")
        else:
            notes.extend(_time_column_hint(schema))  # only dates still among the features
    if time_column is None:
        splits = make_splits(y, problem.task, seed=seed, folds=folds_for(len(y)))
        return TrainingData(X=X, y=y, schema=schema, problem=problem, metric=chosen,
                            splits=splits, dropped=dropped, notes=notes)
    times = parse_time(frame[time_column])
    if ticker_column is not None and ticker_column not in frame.columns:
        raise InvalidDataError(f"The ticker column {ticker_column!r} is not in the data.")
    ticker_column = ticker_column or _detect_ticker_column(frame, target, time_column)
    notes.extend(_correlated_features(X, y, problem, schema))
    notes.extend(_time_leaks(frame.drop(columns=[target]), times, time_column, ticker_column,
                             schema))
    wf = walk_forward(times, folds=DEFAULT_FOLDS, gap=DEFAULT_GAP if gap is None else gap,
                      holdout=1 / (DEFAULT_FOLDS + 2) if holdout is None else holdout)
    notes.append("Validation: " + wf.describe())
    return TrainingData(X=X, y=y, schema=schema, problem=problem, metric=chosen,
                        splits=wf.splits, dropped=dropped, notes=notes, time_column=time_column,
                        time=times, ticker_column=ticker_column, holdout=wf.holdout,
                        gap=wf.gap, folds=wf.boundaries)


# -- time order: detection and leakage guards (notes, never errors) ----------------------------

MARKET_COLUMNS = {"open", "high", "low", "close", "adj_close", "adj close", "volume",
                  *INDICATOR_NAMES}
LEAK_CORRELATION = 0.98   # |correlation| of one feature with a numeric target
LEAK_AUC = 0.99           # one feature alone separating a binary target this well
GUARD_SAMPLE_ROWS = 50_000


def _datetime_columns(schema: list[SchemaColumn]) -> list[str]:
    return [c["name"] for c in schema if c["kind"] == "datetime"]


def _detect_time_column(features: pd.DataFrame, schema: list[SchemaColumn]) -> str | None:
    """A datetime column, but only in tables that look like market data (a ticker column, or
    price/volume/indicator columns): there, shuffled folds certainly leak the future. Elsewhere
    a date (a customer's signup day) need not be the order the predictions are made in."""
    dated = _datetime_columns(schema)
    names = {str(c).strip().lower() for c in features.columns}
    market = bool(names & MARKET_COLUMNS) or find_column(list(features.columns),
                                                         "ticker") is not None
    if not dated or not market:
        return None
    preferred = find_column(dated, "time")
    return preferred if preferred is not None else dated[0]


def _time_column_hint(schema: list[SchemaColumn]) -> list[str]:
    dated = _datetime_columns(schema)
    if not dated:
        return []
    return [f"Column {dated[0]!r} holds dates and is used as a predictor (its year, month, "
            "day and weekday). If the rows are observations over time (prices, sales, sensor "
            "readings, visits), validate in time order: choose it as the time column (CLI: "
            f"--time-column {dated[0]}); shuffled folds let a model learn from the future. If "
            "the date only says when a row was recorded, leave it out (CLI: --exclude "
            f"{dated[0]}): a model may otherwise learn the order the rows were collected in."]


def _detect_ticker_column(frame: pd.DataFrame, target: str, time_column: str) -> str | None:
    candidates = [c for c in frame.columns if c not in (target, time_column)]
    return find_column([str(c) for c in candidates], "ticker")


def _correlated_features(X: pd.DataFrame, y: pd.Series, problem: ProblemType,
                         schema: list[SchemaColumn]) -> list[str]:
    """Numeric features that almost determine the target on their own: usually the target
    (or something computed from the future) under another name."""
    numeric = [c["name"] for c in schema if scored_as_number(c)
               and pd.api.types.is_numeric_dtype(X[c["name"]])]
    task = problem.task
    if not numeric or task == Task.MULTICLASS:
        return []
    rows = X.index if len(X) <= GUARD_SAMPLE_ROWS else X.sample(
        GUARD_SAMPLE_ROWS, random_state=0).index
    notes = []
    for col in numeric:
        x = X.loc[rows, col].astype("float64")
        ok = x.notna().to_numpy() & y.loc[rows].notna().to_numpy()
        if ok.sum() < 10 or x[ok].nunique() < 2:
            continue
        if task == Task.REGRESSION:
            yy = y.loc[rows][ok].astype("float64")
            strength = max(abs(x[ok].corr(yy)), abs(x[ok].corr(yy, method="spearman")))
            leak = strength >= LEAK_CORRELATION
            how = f"correlation {strength:.3f}"
        else:
            from sklearn.metrics import roc_auc_score

            positive = (y.loc[rows][ok] == problem.classes[-1]).to_numpy()
            if positive.all() or not positive.any():
                continue
            auc = roc_auc_score(positive, x[ok])
            leak = max(auc, 1 - auc) >= LEAK_AUC
            how = f"ROC AUC {max(auc, 1 - auc):.3f} on its own"
        if leak:
            notes.append(f"Possible leak: feature {col!r} almost determines the target "
                         f"({how}). If it is computed from the future or from the target "
                         "itself, remove it.")
    return notes


def _time_leaks(features: pd.DataFrame, times: pd.Series, time_column: str,
                ticker_column: str | None, schema: list[SchemaColumn]) -> list[str]:
    """Timestamps after the prediction time, and repeated timestamps per ticker."""
    notes = []
    unreadable = int(times.isna().sum())
    if unreadable:
        notes.append(f"{unreadable} rows have no readable time in {time_column!r}: they are "
                     "left out of validation.")
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    future = int((times > now).sum())
    if future:
        notes.append(f"{future} rows have a time in {time_column!r} after today: check the "
                     "time column (time zone, day/month order).")
    for col in _datetime_columns(schema):
        if col == time_column:
            continue
        later = int((parse_time(features[col]) > times).sum())
        if later:
            notes.append(f"Possible leak: {col!r} is after the prediction time "
                         f"{time_column!r} in {later} rows. A value recorded later than the "
                         "prediction is made is not known then; remove the column unless it "
                         "is fixed in advance (a scheduled date).")
    if ticker_column is not None:
        dup = int(pd.DataFrame({"k": features[ticker_column].astype(str).to_numpy(),
                                "t": times.to_numpy()}).dropna().duplicated().sum())
        if dup:
            notes.append(f"{dup} rows repeat a ({ticker_column!r}, {time_column!r}) pair: "
                         "duplicated timestamps of one ticker make lags and returns wrong "
                         "and can put one moment on both sides of a split. Remove the "
                         "duplicates.")
    else:
        dup = int(times.dropna().duplicated().sum())
        names = {str(c).strip().lower() for c in features.columns}
        if dup and names & MARKET_COLUMNS:
            notes.append(f"{dup} rows share a timestamp with another row and there is no "
                         "ticker column: if they are different series, name the ticker "
                         "column; if one series, remove the duplicates.")
    return notes

def context_params(spec: EstimatorSpec, params: Params, data: TrainingData,
                   seconds: float | None = None) -> Params:
    """`params` plus what the search supplies rather than the user: a network's time limit per
    fit (`seconds`, what is left of the budget for it) and a sequence model's time and ticker
    columns."""
    extra: Params = {}
    if "max_time_s" in spec.fixed and seconds is not None:
        extra["max_time_s"] = max(float(seconds), 0.5)
    if spec.needs_time:
        extra.update(time_column=data.time_column, ticker_column=data.ticker_column)
    return {**params, **{k: v for k, v in extra.items() if k not in params}}


def build_pipeline(spec: EstimatorSpec, task: str, params: Params,
                   schema: list[SchemaColumn]) -> Pipeline:
    model = spec.make(task, params, schema)
    if task != Task.REGRESSION:
        model = LabelEncodedClassifier(model)
    return Pipeline([("preprocess", build_preprocessor(schema, spec.family)), ("model", model)])


@dataclass
class CVResult:
    scores: list[float]
    fit_time_s: float
    predict_ms_per_1k: float
    oof_pred: np.ndarray | None  # labels (classification) or values; meaningful where `covered`
    oof_proba: np.ndarray | None  # float32; both None once the search released them
    covered: np.ndarray  # rows that were in some validation fold (not all are, in time order)
    complete: bool = True  # False when stopped early (pruned or out of time)
    last_model: Any = None  # the last fold's fitted pipeline, for permutation importance
    last_valid: np.ndarray | None = None
    fold_cpu: list[float] = field(default_factory=list)   # CPU seconds per fold (fit+predict)
    fold_wall: list[float] = field(default_factory=list)  # wall seconds per fold
    stopped: str = ""  # why cross_validate itself stopped early (the deadline), if it did
    fold_models: list[Any] | None = None  # every fold's model, when kept (bagged members)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    def release(self, *, predictions: bool) -> None:
        """Drop the fold model (and the out-of-fold predictions): a search keeps them only
        for the trials that may still be used (memory)."""
        self.last_model = self.last_valid = None
        if predictions:  # fold models are kept for the best few only (core.automl.search)
            self.oof_pred = self.oof_proba = self.fold_models = None


def cross_validate(pipeline: Pipeline, data: TrainingData, should_stop: Any = None, *,
                   deadline: float | None = None, pace: Pace | None = None,
                   keep_folds: bool = False, memory_cap: int | None | bool = True
                   ) -> CVResult:
    """Fit a fresh clone per fold (preprocessing included: no leakage across folds) and keep
    out-of-fold predictions for evaluation and ensembling. `should_stop(fold, scores)` is asked
    after every fold but the last and may end the evaluation early (pruning, deadline).

    With a `deadline` (monotonic seconds) a fold that would not end before it is not started,
    and a fit still running at it is interrupted (core.automl.budget.interrupt_at); `pace`
    learns from every fold's wall and CPU time. `keep_folds` keeps every fold's model
    (`fold_models`: members bagged instead of refitted, core.automl.stacking).

    A fold that grows the process by more than `memory_cap` bytes (True: the setting or the
    automatic cap of core.automl.memory; None: no cap) is stopped and the evaluation fails
    with a `ResourceLimitError` saying how much it used: the search records the trial as
    failed and goes on."""
    n, classification = len(data.y), data.task != Task.REGRESSION
    classes = np.asarray(data.problem.classes)
    oof_pred = (np.full(n, np.nan, dtype=np.float32) if not classification
                else classes[np.zeros(n, dtype=int)])
    oof_proba = (np.full((n, len(classes)), np.nan, dtype=np.float32) if classification
                 else None)
    covered = np.zeros(n, dtype=bool)
    cv = CVResult([], 0.0, 0.0, oof_pred, oof_proba, covered, complete=False,
                  fold_models=[] if keep_folds else None)
    cap = trial_cap_bytes(data.X) if memory_cap is True else memory_cap or None
    with warnings.catch_warnings():  # convergence chatter belongs in the score, not the log
        warnings.simplefilter("ignore", ConvergenceWarning)
        over = _folds(pipeline, data, should_stop, classification, classes, cv, deadline, pace,
                      cap)
    if over:  # raised here, once the fold's frames (and its half-fitted model) are gone
        raise ResourceLimitError(over)
    if not cv.complete:
        cv.fold_models = None
    return cv


def _folds(pipeline: Pipeline, data: TrainingData, should_stop: Any, classification: bool,
           classes: np.ndarray, cv: CVResult, deadline: float | None,
           pace: Pace | None, cap: int | None) -> str:
    """Run the folds into `cv`; returns why a fold was stopped over the memory cap, or ""."""
    predict_time, predicted_rows = 0.0, 0
    last = len(data.splits) - 1
    for fold, (tr, va) in enumerate(data.splits):
        if not next_fold_fits(cv.fold_wall, deadline):
            cv.stopped = f"out of time: fold {fold + 1} would not end before the deadline"
            break
        clock = FoldClock()
        try:
            with interrupt_at(deadline, memory_cap=cap):
                model = clone(pipeline)
                t0 = time.perf_counter()
                model.fit(data.X.iloc[tr], data.y.iloc[tr])
                t1 = time.perf_counter()
                X_va, y_va = data.X.iloc[va], data.y.iloc[va]
                proba = None
                if classification:
                    proba = _full_proba(model, X_va, data.problem.classes)
                    pred = classes[np.argmax(proba, axis=1)]
                else:
                    pred = model.predict(X_va)
                t2 = time.perf_counter()
        except OutOfTime:
            cv.stopped = f"out of time: stopped during fold {fold + 1} at the deadline"
            break
        except OverMemory:
            return (f"{last_reason() or 'stopped: over the memory cap'} (fold {fold + 1}; "
                    "the growth of the process's memory a trial may use: setting "
                    "WORKBENCH_TRIAL_MEMORY_MB)")
        wall, cpu = clock.read()
        cv.fold_wall.append(wall)
        cv.fold_cpu.append(cpu)
        if pace is not None:
            pace.add(wall, cpu)
        if proba is not None:
            cv.oof_proba[va] = proba
        cv.oof_pred[va] = pred
        cv.covered[va] = True
        cv.fit_time_s += t1 - t0
        predict_time += t2 - t1
        predicted_rows += len(va)
        cv.predict_ms_per_1k = _per_1k(predict_time, predicted_rows)
        cv.scores.append(data.metric.score(y_va.to_numpy(), pred, proba, data.problem.classes))
        if cv.fold_models is not None:
            cv.fold_models.append(model)
        if fold == last:
            cv.complete, cv.last_model, cv.last_valid = True, model, va
        elif should_stop is not None and should_stop(fold, cv.scores):
            break
        del model
    return ""


def _per_1k(seconds: float, rows: int) -> float:
    """Milliseconds to predict 1,000 rows."""
    return 1e6 * seconds / max(rows, 1)


def _full_proba(model: Pipeline, X: pd.DataFrame, classes: list[Any]) -> np.ndarray:
    """Probabilities over all classes, even if a training fold lacked some of them."""
    proba = model.predict_proba(X)
    fitted = list(model.classes_)
    if fitted == list(classes):
        return proba
    full = np.zeros((len(X), len(classes)))
    for j, c in enumerate(fitted):
        full[:, classes.index(c)] = proba[:, j]
    return full


def evaluate(data: TrainingData, cv: CVResult) -> Evaluation:
    """Every metric for the task on the out-of-fold predictions, plus the curves users chart;
    for regression the prediction intervals calibrated on the same out-of-fold residuals (no
    extra fit: they are the chosen configuration's own validation errors), for
    classification the class balance that decides which metrics pages show."""
    from sklearn import metrics as skm

    covered = cv.covered
    y = data.y.to_numpy()[covered]
    pred = cv.oof_pred[covered]
    if data.task == Task.REGRESSION:
        pred = pred.astype(float)
        scores = all_scores("regression", y.astype(float), pred)
        residuals = (y.astype(float) - pred)
        out: Evaluation = {"metrics": scores, "n_validation_rows": int(covered.sum()),
                           "residuals": _sample({"actual": y.astype(float), "predicted": pred,
                                                 "residual": residuals})}
        calibrated = calibrate(residuals)
        if calibrated is not None:
            out["intervals"] = calibrated
        return out
    classes = data.problem.classes
    proba = cv.oof_proba[covered]
    scores = all_scores(data.task, y, pred, proba, classes)
    cm = skm.confusion_matrix(y, pred, labels=classes)
    out = {
        "metrics": scores, "n_validation_rows": int(covered.sum()),
        "confusion_matrix": {"labels": [str(c) for c in classes], "matrix": cm.tolist()},
        "class_balance": class_balance(y, classes),  # type: ignore[typeddict-item]
    }
    if len(classes) == 2:
        positive = y == classes[1]
        fpr, tpr, _ = skm.roc_curve(positive, proba[:, 1])
        prec, rec, _ = skm.precision_recall_curve(positive, proba[:, 1])
        out["roc_curve"] = _thin({"fpr": fpr, "tpr": tpr})
        out["pr_curve"] = _thin({"precision": prec, "recall": rec})
    return out


def _thin(curve: dict[str, np.ndarray], points: int = 200) -> dict[str, list[float]]:
    n = len(next(iter(curve.values())))
    idx = np.unique(np.linspace(0, n - 1, min(points, n)).astype(int))
    return {k: [round(float(v), 6) for v in arr[idx]] for k, arr in curve.items()}


def _sample(cols: dict[str, np.ndarray], points: int = 500) -> dict[str, list[float]]:
    n = len(next(iter(cols.values())))
    idx = np.random.default_rng(0).choice(n, size=min(points, n), replace=False)
    return {k: [round(float(v), 6) for v in arr[np.sort(idx)]] for k, arr in cols.items()}


def fit_final(pipeline: Pipeline, data: TrainingData) -> Pipeline:
    return clone(pipeline).fit(data.X, data.y)
