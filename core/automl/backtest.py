"""Backtest view data for a search validated in time order.

From the walk-forward out-of-fold predictions (each made by a model trained only on earlier
rows) this builds what a user checks before trusting a market model:

- predictions against actual values over time, and the hit rate (the share of periods whose
  direction was called right);
- a long/flat strategy (hold the asset when the model says "up", else hold cash) as an equity
  curve against buy-and-hold, after a transaction cost per change of position;
- the score per walk-forward fold, in time order (is the edge stable, or one lucky period?);
- the same figures on the holdout: the most recent period, which no fold and no model choice
  ever saw, predicted by the best single pipeline refitted on everything before it.

With several tickers, both the strategy and buy-and-hold are equal-weight portfolios over the
tickers present at each time. With a horizon of h periods, forward returns overlap, so the
curves step every h-th timestamp (non-overlapping returns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from core.automl.train import _full_proba
from core.enums import Task
from core.errors import InvalidDataError

if TYPE_CHECKING:
    from core.automl.search import SearchResult
    from core.automl.train import TrainingData

DEFAULT_COST_BPS = 5.0       # per unit of position changed (a buy or a sell), in basis points
PERIODS_PER_YEAR = 252       # trading days; used to annualise the Sharpe ratio
MAX_POINTS = 500             # points per curve in to_dict(), for charts
UP_LABELS = ("up", "1", "true", "yes", "long", "buy")


@dataclass
class BacktestReport:
    series: pd.DataFrame             # one row per validated row, time order
    equity: pd.DataFrame             # per timestamp: returns and equity of both strategies
    metrics: dict[str, float | int | None]
    folds: list[dict[str, Any]]
    holdout: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self, max_points: int = MAX_POINTS) -> dict[str, Any]:
        """JSON-ready: metrics, folds, holdout, and thinned curves for charts."""
        return {
            "metrics": _clean(self.metrics), "folds": _clean(self.folds),
            "holdout": _clean({k: v for k, v in (self.holdout or {}).items()
                               if k not in ("equity", "series")}) if self.holdout else None,
            "equity": _records(_thin(self.equity, max_points)),
            "predictions": _records(_thin(self.series, max_points)),
            "notes": list(self.notes),
        }


def backtest(result: SearchResult, *, forward_return: pd.Series | np.ndarray | None = None,
             cost_bps: float = DEFAULT_COST_BPS, horizon: int = 1, threshold: float = 0.5,
             holdout: bool = True, periods_per_year: int = PERIODS_PER_YEAR) -> BacktestReport:
    """Backtest figures of `result` (a search run with a time column).

    `forward_return`: the realised simple return over the horizon for each row of the search's
    table (`MarketTable.forward_return` from core.features.targets), needed for the equity
    curves when the target is a direction; for a regression target that *is* the forward
    return it may be left out. `threshold`: the probability of "up" above which the strategy
    is long. `horizon`: the target's horizon in periods."""
    data = result.data
    if data.time is None:
        raise InvalidDataError("A backtest needs a search validated in time order: run it with "
                               "a time column (Train page: Time column; CLI: --time-column).")
    fwd = _forward_returns(data, forward_return)
    cv = result.best.cv
    notes: list[str] = []
    if fwd is None:
        notes.append("No forward returns were given, so there is no equity curve: pass the "
                     "market table's forward_return (or use a return target).")
    rows = np.flatnonzero(cv.covered)
    proba = cv.oof_proba[rows] if cv.oof_proba is not None else None
    series = _series(data, rows, cv.oof_pred[rows], proba, fwd, threshold)
    equity, metrics = _strategy(series, cost_bps, horizon, periods_per_year)
    metrics = {"n_predictions": int(len(series)), "hit_rate": _hit_rate(series),
               f"cv_{data.metric.name}": _mean(cv.scores), **metrics}
    folds = _folds(result)
    hold = None
    if holdout and len(data.holdout):
        hold = _holdout(result, fwd, cost_bps, horizon, threshold, periods_per_year)
        notes.append(f"Holdout: the most recent {len(data.holdout)} rows, never seen by the "
                     f"search, predicted by the best single pipeline ({hold['estimator']}) "
                     "refitted on every earlier row (minus the gap).")
    notes.append(f"Long/flat: long when the model expects a rise, otherwise flat; "
                 f"{cost_bps:g} bps per change of position; buy-and-hold pays it once.")
    return BacktestReport(series=series, equity=equity, metrics=metrics, folds=folds,
                          holdout=hold, notes=notes)


# -- pieces ---------------------------------------------------------------------------------

def _forward_returns(data: TrainingData, given: Any) -> np.ndarray | None:
    if given is not None:
        values = np.asarray(given, dtype="float64")
        if len(values) != len(data.y):
            raise InvalidDataError(f"forward_return has {len(values)} values but the search "
                                   f"used {len(data.y)} rows: pass the one built with the "
                                   "table that was searched.")
        return values
    if data.task == Task.REGRESSION:
        return data.y.to_numpy(dtype="float64")
    return None


def _up_label(classes: list[Any]) -> Any:
    for c in classes:
        if str(c).strip().lower() in UP_LABELS:
            return c
    return classes[-1]


def _series(data: TrainingData, rows: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
            fwd: np.ndarray | None, threshold: float) -> pd.DataFrame:
    frame = pd.DataFrame({"time": data.time.to_numpy()[rows], "row": rows})
    ticker = data.ticker_column
    if ticker is not None and ticker in data.X.columns:
        frame["ticker"] = data.X[ticker].astype(str).to_numpy()[rows]
    frame["actual"] = data.y.to_numpy()[rows]
    frame["predicted"] = pred
    if data.task == Task.REGRESSION:
        frame["predicted"] = frame["predicted"].astype("float64")
        frame["position"] = (frame["predicted"] > 0).astype(float)
        frame["correct"] = np.sign(frame["predicted"]) == np.sign(frame["actual"].astype(float))
    else:
        classes = list(data.problem.classes)
        up = _up_label(classes)
        frame["proba_up"] = proba[:, classes.index(up)] if proba is not None else np.nan
        frame["position"] = ((frame["proba_up"] > threshold) if proba is not None
                             else (frame["predicted"] == up)).astype(float)
        frame["correct"] = frame["predicted"] == frame["actual"]
    if fwd is not None:
        frame["forward_return"] = fwd[rows]
    return frame.sort_values(["time", "row"], kind="stable").reset_index(drop=True)


def _hit_rate(series: pd.DataFrame) -> float | None:
    return float(series["correct"].mean()) if len(series) else None


def _strategy(series: pd.DataFrame, cost_bps: float, horizon: int,
              periods_per_year: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    if "forward_return" not in series or series.empty:
        return pd.DataFrame(columns=["time", "strategy", "buy_and_hold"]), {}
    times = np.sort(series["time"].unique())
    stepped = set(times[::max(horizon, 1)])  # non-overlapping h-period returns
    s = series[series["time"].isin(stepped) & series["forward_return"].notna()].copy()
    if "ticker" not in s:
        s["ticker"] = "_"
    s = s.sort_values(["ticker", "time"], kind="stable")
    cost = cost_bps / 1e4
    change = s.groupby("ticker", sort=False)["position"].diff().abs()
    change = change.fillna(s["position"])  # entering at the first step costs too
    first = ~s["ticker"].duplicated()
    s["strategy"] = s["position"] * s["forward_return"] - change * cost
    s["buy_and_hold"] = s["forward_return"] - first.astype(float) * cost
    per_time = s.groupby("time").agg(strategy_return=("strategy", "mean"),
                                     hold_return=("buy_and_hold", "mean"),
                                     exposure=("position", "mean"),
                                     trades=("position", "size"))
    per_time["trades"] = change.groupby(s["time"]).sum().reindex(per_time.index).to_numpy()
    per_time["strategy"] = (1 + per_time["strategy_return"]).cumprod()
    per_time["buy_and_hold"] = (1 + per_time["hold_return"]).cumprod()
    equity = per_time.reset_index()
    scale = math.sqrt(periods_per_year / max(horizon, 1))
    metrics = {
        "strategy_total_return": _total(equity["strategy"]),
        "buy_and_hold_total_return": _total(equity["buy_and_hold"]),
        "strategy_sharpe": _sharpe(equity["strategy_return"], scale),
        "buy_and_hold_sharpe": _sharpe(equity["hold_return"], scale),
        "strategy_max_drawdown": _drawdown(equity["strategy"]),
        "buy_and_hold_max_drawdown": _drawdown(equity["buy_and_hold"]),
        "exposure": float(equity["exposure"].mean()),
        "trades": int(equity["trades"].sum()),
        "cost_bps": float(cost_bps),
        "periods": int(len(equity)),
    }
    return equity, metrics


def _total(curve: pd.Series) -> float | None:
    return float(curve.iloc[-1] - 1) if len(curve) else None


def _sharpe(returns: pd.Series, scale: float) -> float | None:
    sd = returns.std()
    return float(returns.mean() / sd * scale) if len(returns) > 1 and sd > 0 else None


def _drawdown(curve: pd.Series) -> float | None:
    return float((curve / curve.cummax() - 1).min()) if len(curve) else None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _folds(result: SearchResult) -> list[dict[str, Any]]:
    """The best single pipeline's score per walk-forward fold, in time order."""
    single = result.best_single or result.best
    scores = single.cv.scores if single.cv is not None else []
    return [{**bounds, "score": scores[i] if i < len(scores) else None}
            for i, bounds in enumerate(result.data.folds)]


def _holdout(result: SearchResult, fwd: np.ndarray | None, cost_bps: float, horizon: int,
             threshold: float, periods_per_year: int) -> dict[str, Any]:
    from core.automl.catalog import get_spec
    from core.automl.train import build_pipeline, context_params

    data = result.data
    single = result.best_single or result.best
    spec = get_spec(single.estimator)
    params = dict(single.params)
    if "random_state" in spec.fixed and "random_state" not in params:
        params["random_state"] = 0
    params = context_params(spec, params, data)
    times = data.time.to_numpy()
    distinct = np.unique(times[~pd.isna(times)])
    hold = np.sort(data.holdout)
    start = np.searchsorted(distinct, times[hold].min())
    cutoff = distinct[max(start - data.gap, 0)]
    train = np.flatnonzero(~pd.isna(times) & (times < cutoff))
    model = clone(build_pipeline(spec, data.task, params, data.schema))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        model.fit(data.X.iloc[train], data.y.iloc[train])
        X_h, y_h = data.X.iloc[hold], data.y.iloc[hold].to_numpy()
        if data.task == Task.REGRESSION:
            proba, pred = None, model.predict(X_h)
        else:
            proba = _full_proba(model, X_h, data.problem.classes)
            pred = np.asarray(data.problem.classes)[np.argmax(proba, axis=1)]
    score = data.metric.score(y_h, pred, proba, data.problem.classes)
    series = _series(data, hold, pred, proba, fwd, threshold)
    equity, metrics = _strategy(series, cost_bps, horizon, periods_per_year)
    return {"estimator": single.estimator, "start": pd.Timestamp(distinct[start]).isoformat(),
            "end": pd.Timestamp(distinct[-1]).isoformat(), "rows": int(len(hold)),
            "train_rows": int(len(train)), data.metric.name: float(score),
            "hit_rate": _hit_rate(series), **metrics, "series": series, "equity": equity}


# -- JSON -----------------------------------------------------------------------------------

def _thin(frame: pd.DataFrame, points: int) -> pd.DataFrame:
    if len(frame) <= points:
        return frame
    idx = np.unique(np.linspace(0, len(frame) - 1, points).astype(int))
    return frame.iloc[idx]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return _clean(out.to_dict(orient="records"))


def _clean(value: Any) -> Any:
    """numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = ["DEFAULT_COST_BPS", "BacktestReport", "backtest"]
