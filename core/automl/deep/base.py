"""What the PyTorch estimators share: preprocessing as plain data, a seeded training loop with
early stopping and a time limit, and their saved form (architecture + preprocessing as a
JSON-able dict, weights as tensors; core/registry/deep.py writes them as JSON + safetensors).

Preprocessing lives in the estimator, not in a scikit-learn step, because an embedding needs
the category vocabulary it was trained on: numbers are median-imputed (with a missing-value
indicator where training saw gaps) and standardised; categories map to codes 1..K of the
training vocabulary, 0 for anything unseen. Columns named `category__*` (the workbench's "deep"
preprocessing) or holding text are categories; `time__*` columns and datetimes are left to
the sequence models; everything else is a number.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_array, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from core.automl.deep import nets
from core.errors import ArtifactIntegrityError, InvalidDataError

CATEGORY_PREFIX, TIME_PREFIX = "category__", "time__"
NUMBER_PREFIXES = ("numeric__", "datetime__")
MIN_VALIDATION_ROWS = 8
PREDICT_BATCH = 4096


# -- preprocessing as data ---------------------------------------------------------------------

def as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    values = np.asarray(X)
    if values.ndim != 2:
        raise ValueError(f"Expected a 2D table of rows and columns, got shape {values.shape}.")
    return pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])])


def column_kind(name: str, values: pd.Series) -> str:
    """number, category or time (left out of the row features)."""
    if name.startswith(TIME_PREFIX) or pd.api.types.is_datetime64_any_dtype(values):
        return "time"
    if name.startswith(NUMBER_PREFIXES):
        return "number"
    if name.startswith(CATEGORY_PREFIX) or not pd.api.types.is_numeric_dtype(values) \
            or pd.api.types.is_bool_dtype(values):
        return "category"
    return "number"


def _labels(values: pd.Series) -> np.ndarray:
    return values.astype(object).where(values.notna(), "__missing__").astype(str).to_numpy()


def fit_prep(frame: pd.DataFrame, min_count: int, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The preprocessing learned from training rows, as plain data."""
    numeric, categorical = [], []
    for name in frame.columns:
        col = frame[name]
        kind = column_kind(str(name), col)
        if str(name) in skip or kind == "time":
            continue
        if kind == "category":
            counts = pd.Series(_labels(col)).value_counts()
            vocab = sorted(str(v) for v, n in counts.items() if n >= min_count)
            categorical.append({"name": str(name), "vocabulary": vocab})
            continue
        x = pd.to_numeric(col, errors="coerce").astype("float64")
        median = float(x.median()) if x.notna().any() else 0.0
        filled = x.fillna(median)
        std = float(filled.std(ddof=0))
        numeric.append({"name": str(name), "median": median, "mean": float(filled.mean()),
                        "std": std if std > 1e-12 else 1.0, "indicator": bool(x.isna().any())})
    return {"columns": [str(c) for c in frame.columns], "numeric": numeric,
            "categorical": categorical}


def n_numeric(prep: dict[str, Any]) -> int:
    return len(prep["numeric"]) + sum(1 for c in prep["numeric"] if c["indicator"])


def transform_prep(prep: dict[str, Any], frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(numbers float32 [n, n_numeric], category codes int64 [n, n_categorical])."""
    missing = [c for c in prep["columns"] if c not in frame.columns]
    if missing:
        raise InvalidDataError("Columns missing from the rows to predict: "
                               + ", ".join(repr(c) for c in missing) + ".")
    n = len(frame)
    cols, flags = [], []
    for spec in prep["numeric"]:
        x = pd.to_numeric(frame[spec["name"]], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        gap = np.isnan(x)
        cols.append((np.where(gap, spec["median"], x) - spec["mean"]) / spec["std"])
        if spec["indicator"]:
            flags.append(gap.astype("float64"))
    num = np.column_stack(cols + flags) if cols else np.zeros((n, 0))
    codes = []
    for spec in prep["categorical"]:
        lookup = {v: i + 1 for i, v in enumerate(spec["vocabulary"])}
        codes.append(np.fromiter((lookup.get(v, 0) for v in _labels(frame[spec["name"]])),
                                 dtype=np.int64, count=n))
    cat = np.column_stack(codes) if codes else np.zeros((n, 0), dtype=np.int64)
    return np.nan_to_num(num.astype(np.float32)), cat


def check_prep(prep: Any, arch: dict[str, Any], where: str) -> dict[str, Any]:
    """Saved preprocessing must be plain data that agrees with the architecture."""
    try:
        columns = [str(c) for c in prep["columns"]]
        for spec in prep["numeric"]:
            for key in ("median", "mean", "std"):
                if not isinstance(spec[key], int | float) or not np.isfinite(spec[key]):
                    raise TypeError(key)
            if not isinstance(spec["indicator"], bool) or spec["name"] not in columns:
                raise TypeError("indicator")
        for spec in prep["categorical"]:
            if spec["name"] not in columns or not all(
                    isinstance(v, str) for v in spec["vocabulary"]):
                raise TypeError("vocabulary")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ArtifactIntegrityError(f"{where}: the saved preprocessing is malformed ({exc}); "
                                     "the file is corrupt or crafted.") from None
    expected = [len(c["vocabulary"]) + 1 for c in prep["categorical"]]
    if n_numeric(prep) != arch["n_numeric"] or expected != arch["cardinalities"]:
        raise ArtifactIntegrityError(f"{where}: the saved preprocessing does not match the "
                                     "network's inputs; the file is corrupt or crafted.")
    return prep


# -- repeatable training -----------------------------------------------------------------------

def _deterministic(mode: bool) -> None:
    """torch.use_deterministic_algorithms without its import of torch._inductor (10+ s on a
    small machine, only to configure torch.compile, which the networks do not use): the same
    switch of the kernels' mode."""
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None:  # another torch than the pinned one: the public call
        torch.use_deterministic_algorithms(mode)
    else:
        switch(mode)


@contextmanager
def repeatable(seed: int) -> Iterator[None]:
    """One thread, deterministic kernels, and a seeded RNG that leaves the caller's untouched."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    _deterministic(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)
        _deterministic(deterministic)


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW computes it.

    Our own few lines because torch.optim's constructor imports torch._dynamo, which took 10 s
    per process on this size of machine: every search and training worker would pay it on the
    budget's clock."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.betas, self.eps, self.steps = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        fix1, fix2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v / fix2).sqrt_().add_(self.eps), value=-self.lr / fix1)


def train_module(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], y: torch.Tensor,
                 train_idx: np.ndarray, valid_idx: np.ndarray, loss_fn: Callable[..., Any], *,
                 est: BaseEstimator, seed: int) -> dict[str, Any]:
    """Mini-batch AdamW; keep the weights of the epoch with the lowest validation loss; stop
    after `patience` epochs without improvement, after `max_epochs`, or when `max_time_s` is
    spent (checked after every batch, so one long epoch cannot overrun the budget)."""
    started = time.monotonic()
    deadline = started + est.max_time_s if est.max_time_s is not None else float("inf")
    gen = torch.Generator().manual_seed(seed)
    opt = AdamW(list(module.parameters()), lr=est.learning_rate,
                weight_decay=est.weight_decay)
    tr = torch.as_tensor(train_idx)
    va = torch.as_tensor(valid_idx)
    best, best_state, best_epoch, stale, stopped = float("inf"), None, 0, 0, "max_epochs"
    epoch = 0
    for epoch in range(1, est.max_epochs + 1):
        module.train()
        perm = tr[torch.randperm(len(tr), generator=gen)]
        out_of_time = False
        for start in range(0, len(perm), est.batch_size):
            batch = perm[start:start + est.batch_size]
            if len(batch) < 2:  # batch norm needs two rows; one row teaches little anyway
                continue
            opt.zero_grad()
            loss = loss_fn(module(*(t[batch] for t in inputs)), y[batch])
            loss.backward()
            opt.step()
            if time.monotonic() >= deadline:
                out_of_time = True
                break
        module.eval()
        with torch.no_grad():
            val = float(loss_fn(module(*(t[va] for t in inputs)), y[va]))
        if val < best - 1e-7 or best_state is None:
            best, best_epoch, stale = val, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
        if out_of_time:
            stopped = "time limit"
            break
        if stale >= est.patience:
            stopped = "early stopping"
            break
    module.load_state_dict(best_state)
    module.eval()
    return {"epochs": epoch, "best_epoch": best_epoch, "validation_loss": best,
            "stopped": stopped, "seconds": round(time.monotonic() - started, 3)}


def split_validation(n: int, fraction: float, seed: int,
                     order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and rows to stop early on, all from the rows given to `fit` (never the
    search's validation fold: stopping on it would make its score optimistic). With `order`
    (positions from oldest to newest) the newest rows validate: no training on the future."""
    n_valid = int(round(n * fraction))
    if n_valid < MIN_VALIDATION_ROWS or n - n_valid < MIN_VALIDATION_ROWS:
        everything = np.arange(n)
        return everything, everything  # too few rows to hold any out: stop on training loss
    ranked = order if order is not None else np.random.default_rng(seed).permutation(n)
    return np.sort(ranked[:-n_valid]), np.sort(ranked[-n_valid:])


def predict_batches(module: torch.nn.Module, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs[0]), PREDICT_BATCH):
            part = (torch.as_tensor(a[start:start + PREDICT_BATCH]) for a in inputs)
            out.append(module(*part).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1))


# -- the estimators' common surface ------------------------------------------------------------

def _checked(X: Any, fitting: bool = True) -> pd.DataFrame:
    """X as a frame, refused as scikit-learn refuses it (1-D, sparse, complex, empty at fit);
    text and missing values pass: the networks encode them."""
    values = check_array(X, dtype=None, accept_sparse=False, ensure_all_finite=False,
                         ensure_min_samples=1 if fitting else 0)
    if np.iscomplexobj(values):
        raise ValueError("Complex data not supported.")
    if isinstance(X, pd.DataFrame):  # column names as text, as the saved preprocessing has them
        return X.reset_index(drop=True).set_axis([str(c) for c in X.columns], axis=1)
    return as_frame(values)


class NetworkBase(BaseEstimator):
    """Hyper-parameters, fitting, prediction and the saved form; subclasses say how rows become
    network inputs (`_inputs`) and which architecture they train (`_arch`)."""

    _workbench_network_ = True  # core/registry/deep.py saves such objects as data + tensors
    _parameter_constraints: dict = {
        "hidden_units": [Interval(Integral, 1, nets.LIMITS["width"], closed="both")],
        "n_layers": [Interval(Integral, 1, nets.LIMITS["layers"], closed="both")],
        "norm": [StrOptions(set(nets.NORMS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "max_embedding_dim": [Interval(Integral, 1, nets.LIMITS["embedding_dim"],
                                       closed="both")],
        "min_category_count": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "max_time_s": [Interval(Real, 0, None, closed="neither"), None],
    }
    classifier = False

    def _loss(self) -> Callable[..., Any]:
        return torch.nn.CrossEntropyLoss() if self.classifier else torch.nn.MSELoss()

    def _arch_fields(self, prep: dict[str, Any], n_outputs: int) -> dict[str, Any]:
        cards = [len(c["vocabulary"]) + 1 for c in prep["categorical"]]
        return {"kind": "tabular", "n_numeric": n_numeric(prep), "cardinalities": cards,
                "embedding_dims": [nets.embedding_dim(c, self.max_embedding_dim) for c in cards],
                "hidden": [int(self.hidden_units)] * int(self.n_layers), "norm": self.norm,
                "dropout": float(self.dropout), "n_outputs": int(n_outputs)}

    def _encode_target(self, y: Any, n_rows: int) -> tuple[torch.Tensor, int]:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty(n_rows), y)
        if self.classifier:
            check_classification_targets(y)
            self.classes_, codes = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError("Classifier can't train when only one class is present.")
            self.target_ = None
            return torch.as_tensor(codes, dtype=torch.long), len(self.classes_)
        values = y.astype("float64")
        if not np.isfinite(values).all():
            raise ValueError("Input y contains NaN or infinity.")
        std = float(values.std()) or 1.0
        self.target_ = {"mean": float(values.mean()), "std": std}
        scaled = (values - self.target_["mean"]) / std
        return torch.as_tensor(scaled, dtype=torch.float32).unsqueeze(1), 1

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        if self.classifier:
            return self.classes_[np.argmax(raw, axis=1)]
        return raw[:, 0] * self.target_["std"] + self.target_["mean"]

    def _proba(self, raw: np.ndarray) -> np.ndarray:
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def _record_input(self, X: Any) -> pd.DataFrame:
        frame = _checked(X)
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return frame

    # saved form -------------------------------------------------------------------------------
    def to_artifact(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(plain data, tensors): everything needed to predict again, no code."""
        doc: dict[str, Any] = {"params": self.get_params(deep=False), "state": None}
        if not hasattr(self, "module_"):
            return doc, {}
        state = {"arch": self.arch_, "prep": self.prep_, "target": self.target_,
                 "n_features_in": int(self.n_features_in_), "training": self.training_,
                 "feature_names_in": (list(self.feature_names_in_)
                                      if hasattr(self, "feature_names_in_") else None)}
        if self.classifier:
            state["classes"] = {"values": self.classes_.tolist(),
                                "dtype": self.classes_.dtype.str}
        doc["state"] = {**state, **self._extra_state()}
        tensors = {f"module.{k}": v.detach().clone().contiguous()
                   for k, v in self.module_.state_dict().items()}
        return doc, {**tensors, **self._extra_tensors()}

    @classmethod
    def from_artifact(cls, doc: dict[str, Any], tensors: dict[str, torch.Tensor],
                      where: str) -> NetworkBase:
        """Rebuild from `to_artifact`'s output, checking every piece (parameters against the
        constraints, architecture against nets.LIMITS, tensors' names, shapes and types
        against the module the architecture builds)."""
        params = doc.get("params") if isinstance(doc, dict) else None
        if not isinstance(params, dict) or set(params) - set(cls().get_params()):
            raise ArtifactIntegrityError(f"{where}: the saved parameters are malformed; the "
                                         "file is corrupt or crafted.")
        est = cls(**params)
        try:
            est._validate_params()
        except (ValueError, TypeError) as exc:
            raise ArtifactIntegrityError(f"{where}: a saved parameter is invalid ({exc}).") \
                from None
        state = doc.get("state")
        if state is None:
            return est
        try:
            arch = nets.check(state["arch"], where)
            prep = check_prep(state["prep"], arch, where)
            module = nets.build(arch, where)
            expected = {f"module.{k}": v for k, v in module.state_dict().items()}
            own = {k: v for k, v in tensors.items() if k.startswith("module.")}
            if set(own) != set(expected) or any(
                    own[k].shape != v.shape or own[k].dtype != v.dtype
                    for k, v in expected.items()):
                wrong = sorted(set(own) ^ set(expected)) or sorted(
                    k for k, v in expected.items() if own[k].shape != v.shape
                    or own[k].dtype != v.dtype)
                raise ArtifactIntegrityError(
                    f"{where}: the weights do not fit the architecture ({', '.join(wrong[:5])}); "
                    "the file is corrupt or crafted, so it was not loaded.")
            module.load_state_dict({k[len("module."):]: v for k, v in own.items()})
            module.eval()
            est.arch_, est.prep_, est.module_ = arch, prep, module
            est.target_ = state["target"]
            est.training_ = state["training"]
            est.n_features_in_ = int(state["n_features_in"])
            if state.get("feature_names_in") is not None:
                est.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
            if cls.classifier:
                classes = state["classes"]
                if np.dtype(classes["dtype"]).kind not in "biuUO" or \
                        len(classes["values"]) != arch["n_outputs"]:
                    raise ArtifactIntegrityError(f"{where}: the saved classes are malformed.")
                est.classes_ = np.asarray(classes["values"], dtype=np.dtype(classes["dtype"]))
            elif not (isinstance(est.target_, dict) and set(est.target_) == {"mean", "std"}):
                raise ArtifactIntegrityError(f"{where}: the saved target scale is malformed.")
            est._restore_extra(state, tensors, where)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactIntegrityError(f"{where}: the saved network is malformed ({exc!r}); "
                                         "the file is corrupt or crafted.") from None
        return est

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _restore_extra(self, state: dict[str, Any], tensors: dict[str, torch.Tensor],
                       where: str) -> None:
        return None

    # scikit-learn surface ---------------------------------------------------------------------
    def _raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "module_")
        frame = _checked(X, fitting=False)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return predict_batches(self.module_, self._inputs(frame, fitting=False))

    def predict(self, X: Any) -> np.ndarray:
        return self._decode(self._raw(X))

    def _inputs(self, frame: pd.DataFrame, fitting: bool) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


class ProbaMixin:
    """predict_proba for the classifiers (softmax over the classes, in `classes_` order)."""

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._proba(self._raw(X))


__all__ = ["CATEGORY_PREFIX", "TIME_PREFIX", "NetworkBase", "ProbaMixin", "as_frame",
           "check_prep", "fit_prep", "predict_batches", "repeatable", "split_validation",
           "train_module", "transform_prep"]
