"""Sequence models for market data: an LSTM or a small temporal convolution network over each
row's window of earlier rows of its ticker, beside the row's own features.

Windows come from `core.automl.deep.windows.past_rows` (strictly earlier rows of the same
ticker: no lookahead). The early-stopping rows are the newest of the training rows, so the
network never stops on a period older than one it trained on. The last `window` rows per
ticker seen in training are kept (as data) so that the first rows predicted after training,
the walk-forward validation block or a request to a deployment, have their history; rows given
to `predict` extend it, each row still seeing only rows strictly before it.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions

from core.automl.deep import nets
from core.automl.deep.base import (
    CATEGORY_PREFIX,
    TIME_PREFIX,
    NetworkBase,
    ProbaMixin,
    fit_prep,
    repeatable,
    split_validation,
    train_module,
    transform_prep,
)
from core.automl.deep.windows import past_rows
from core.errors import ArtifactIntegrityError, InvalidDataError
from core.features.finance import parse_time

MAX_HISTORY_ROWS = 1_000_000


def _find(frame: pd.DataFrame, name: str | None, prefix: str) -> str | None:
    if name is None:
        return None
    for candidate in (prefix + name, name):
        if candidate in frame.columns:
            return candidate
    return None


class _SequenceNet(NetworkBase):
    _parameter_constraints: dict = {
        **NetworkBase._parameter_constraints,
        "cell": [StrOptions({"lstm", "tcn"})],
        "window": [Interval(Integral, 1, nets.LIMITS["window"], closed="both")],
        "seq_hidden": [Interval(Integral, 1, nets.LIMITS["width"], closed="both")],
        "seq_layers": [Interval(Integral, 1, nets.LIMITS["layers"], closed="both")],
        "time_column": [str, None],
        "ticker_column": [str, None],
    }

    def __init__(self, cell: str = "lstm", window: int = 20, seq_hidden: int = 32,
                 seq_layers: int = 1, time_column: str | None = None,
                 ticker_column: str | None = None, hidden_units: int = 32, n_layers: int = 1,
                 norm: str = "layer", dropout: float = 0.1, learning_rate: float = 3e-3,
                 weight_decay: float = 1e-5, batch_size: int = 128, max_epochs: int = 60,
                 patience: int = 6, validation_fraction: float = 0.15,
                 max_embedding_dim: int = 8, min_category_count: int = 2,
                 random_state: int = 0, max_time_s: float | None = None) -> None:
        self.cell = cell
        self.window = window
        self.seq_hidden = seq_hidden
        self.seq_layers = seq_layers
        self.time_column = time_column
        self.ticker_column = ticker_column
        self.hidden_units = hidden_units
        self.n_layers = n_layers
        self.norm = norm
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_embedding_dim = max_embedding_dim
        self.min_category_count = min_category_count
        self.random_state = random_state
        self.max_time_s = max_time_s

    # which columns order the rows --------------------------------------------------------------
    def _columns(self, frame: pd.DataFrame) -> tuple[str, str | None]:
        time_col = _find(frame, self.time_column, TIME_PREFIX)
        if time_col is None and self.time_column is None:
            time_col = next((c for c in frame.columns if str(c).startswith(TIME_PREFIX)
                             or pd.api.types.is_datetime64_any_dtype(frame[c])), None)
        if time_col is None:
            raise InvalidDataError(
                "The sequence models (lstm, tcn) need the time of each row to build windows of "
                f"earlier rows{f' (no column {self.time_column!r})' if self.time_column else ''}"
                ": train on market data validated in time order (Train page: Time column; CLI: "
                "--time-column), and keep the time column among the features.")
        ticker_col = _find(frame, self.ticker_column, CATEGORY_PREFIX)
        if self.ticker_column is not None and ticker_col is None:
            raise InvalidDataError(f"The ticker column {self.ticker_column!r} is not among the "
                                   "features: keep it, or leave the ticker unset for one series.")
        return str(time_col), None if ticker_col is None else str(ticker_col)

    def _keys(self, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series | None]:
        times = parse_time(frame[self.time_col_]).reset_index(drop=True)
        tickers = (frame[self.ticker_col_].astype(str).reset_index(drop=True)
                   if self.ticker_col_ else None)
        return times, tickers

    def _steps(self, num: np.ndarray) -> np.ndarray:
        """Per-step inputs: the row's numbers and a 1 marking a real (not padded) step."""
        return np.hstack([num, np.ones((len(num), 1), dtype=np.float32)])

    @staticmethod
    def _gather(steps: np.ndarray, idx: np.ndarray) -> np.ndarray:
        padded = np.vstack([steps, np.zeros((1, steps.shape[1]), dtype=np.float32)])
        return padded[np.where(idx < 0, len(steps), idx)]

    # fit and predict ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> _SequenceNet:
        self._validate_params()
        frame = self._record_input(X)
        self.time_col_, self.ticker_col_ = self._columns(frame)
        target, n_outputs = self._encode_target(y, len(frame))
        self.prep_ = fit_prep(frame, self.min_category_count, skip=(self.time_col_,))
        num, cat = transform_prep(self.prep_, frame)
        steps = self._steps(num)
        times, tickers = self._keys(frame)
        windows = self._gather(steps, past_rows(times, tickers, self.window))
        stamps = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)  # NaT: the oldest
        oldest_first = np.argsort(stamps, kind="stable")
        train, valid = split_validation(len(frame), self.validation_fraction,
                                        self.random_state, order=oldest_first)
        self.arch_ = {**self._arch_fields(self.prep_, n_outputs), "kind": self.cell,
                      "n_step": steps.shape[1], "window": int(self.window),
                      "seq_hidden": int(self.seq_hidden), "seq_layers": int(self.seq_layers)}
        with repeatable(self.random_state):
            self.module_ = nets.build(self.arch_)
            self.training_ = train_module(
                self.module_, tuple(torch.as_tensor(a) for a in (num, cat, windows)), target,
                train, valid, self._loss(), est=self, seed=self.random_state)
        self._keep_history(steps, times, tickers)
        return self

    def _keep_history(self, steps: np.ndarray, times: pd.Series,
                      tickers: pd.Series | None) -> None:
        """The last `window` rows of each ticker (with a known time), oldest first."""
        keys = pd.DataFrame({"k": tickers if tickers is not None else "",
                             "t": times, "pos": np.arange(len(times))}).dropna(subset=["t"])
        keys = keys.sort_values(["k", "t"], kind="stable").groupby("k").tail(self.window)
        rows = keys["pos"].to_numpy()
        self.history_ = {"steps": steps[rows], "times": keys["t"].to_numpy(
            dtype="datetime64[ns]").astype(np.int64), "tickers": keys["k"].astype(str).tolist()}

    def _inputs(self, frame: pd.DataFrame, fitting: bool) -> tuple[np.ndarray, ...]:
        num, cat = transform_prep(self.prep_, frame)
        steps = self._steps(num)
        times, tickers = self._keys(frame)
        hist = self.history_
        h_times = pd.Series(pd.to_datetime(hist["times"], unit="ns"))
        h_tickers = pd.Series(hist["tickers"], dtype=object)
        given = set(zip(tickers if tickers is not None else [""] * len(frame), times,
                        strict=True))
        keep = np.fromiter(((k, t) not in given for k, t in zip(h_tickers, h_times,
                                                                   strict=True)),
                           dtype=bool, count=len(h_times))
        all_steps = np.vstack([hist["steps"][keep], steps]).astype(np.float32)
        all_times = pd.concat([h_times[keep], times], ignore_index=True)
        all_tickers = pd.concat([h_tickers[keep], tickers if tickers is not None
                                 else pd.Series([""] * len(frame))], ignore_index=True)
        idx = past_rows(all_times, all_tickers, self.window)[int(keep.sum()):]
        return num, cat, self._gather(all_steps, idx)

    # saved form --------------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {"sequence": {"time_column": self.time_col_, "ticker_column": self.ticker_col_,
                             "history_tickers": list(self.history_["tickers"])}}

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return {"history.steps": torch.as_tensor(self.history_["steps"]).contiguous(),
                "history.times": torch.as_tensor(self.history_["times"]).contiguous()}

    def _restore_extra(self, state: dict[str, Any], tensors: dict[str, torch.Tensor],
                       where: str) -> None:
        seq = state["sequence"]
        steps, times = tensors.get("history.steps"), tensors.get("history.times")
        tickers = seq["history_tickers"]
        n_step = state["arch"]["n_step"]
        if steps is None or times is None or not isinstance(tickers, list) \
                or steps.dtype != torch.float32 or times.dtype != torch.int64 \
                or steps.ndim != 2 or steps.shape[1] != n_step \
                or len(times) != len(steps) or len(tickers) != len(steps) \
                or len(steps) > MAX_HISTORY_ROWS \
                or not all(isinstance(t, str) for t in tickers) \
                or not isinstance(seq["time_column"], str) \
                or not isinstance(seq["ticker_column"], str | None):
            raise ArtifactIntegrityError(f"{where}: the saved sequence history is malformed; "
                                         "the file is corrupt or crafted.")
        self.time_col_, self.ticker_col_ = seq["time_column"], seq["ticker_column"]
        self.history_ = {"steps": steps.numpy(), "times": times.numpy(), "tickers": tickers}


class SequenceNetClassifier(ProbaMixin, ClassifierMixin, _SequenceNet):
    """Direction (or any class) of the next move from the ticker's recent rows."""

    classifier = True


class SequenceNetRegressor(RegressorMixin, _SequenceNet):
    """A value (e.g. the forward return) from the ticker's recent rows."""


__all__ = ["SequenceNetClassifier", "SequenceNetRegressor"]
