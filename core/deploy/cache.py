"""Loaded pipelines kept in memory (LRU) and the lean prediction path used by the server."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import select

from core.deploy.columns import Columns, join
from core.deploy.enums import Runtime
from core.deploy.fastpath import EnsembleFast, FastPath, compile_fast
from core.deploy.onnx_runtime import choose, request, settled
from core.enums import Task
from core.errors import SchemaMismatchError
from core.features.inputs import market_spec, model_input, sent_columns
from core.registry.artifacts import load_verified
from core.registry.versions import resolve
from core.store import Deployment, ModelVersion
from core.store.db import Database
from core.store.scope import workspace_of_key
from core.store.shapes import IntervalsDoc, Record

_PLAIN_NUMBERS = frozenset({float, int, bool, type(None)})
_NUMERIC_DTYPES = ("int", "float", "uint", "bool", "Int", "Float", "UInt", "boolean")


@dataclass
class LoadedModel:
    name: str
    version: int
    mv: ModelVersion
    pipeline: Any
    columns: list[str] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)
    classes: list[Any] | None = None
    fast: FastPath | EnsembleFast | None = None
    # A market model's records are price history its indicators are rebuilt from: each request
    # is scored on its own (never batched with others' rows) and never on the lean path.
    market: dict[str, Any] | None = None
    intervals: IntervalsDoc | None = None  # a regression's stored conformal half-widths
    # onnxruntime answering instead of python (core/deploy/onnx_runtime.py decides at load);
    # each runtime request is numbered, and only the latest one's choice is kept
    onnx: Any = None
    runtime_requested: str = "auto"
    runtime_reason: str = ""
    choice_gen: int = 0
    choice_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                        compare=False)
    # what callers derive once per loaded version (e.g. the V2 datatypes of its columns)
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, name: str, mv: ModelVersion, pipeline: Any) -> LoadedModel:
        market = market_spec(mv)
        sent = set(sent_columns(mv))  # a market model's callers send no indicator columns
        schema = [c for c in mv.input_schema or [] if c["name"] in sent]
        numeric = [c["kind"] == "numeric" or (c["kind"] == "boolean"
                                              and str(c["dtype"]).startswith(_NUMERIC_DTYPES))
                   for c in schema]
        classes = None
        if mv.task != Task.REGRESSION:
            classes = [_plain(c) for c in getattr(pipeline, "classes_", mv.classes)]
        return cls(name, mv.version, mv, pipeline, [c["name"] for c in schema], numeric,
                   classes, None if market else compile_fast(pipeline, schema), market,
                   None if classes is not None else (mv.evaluation or {}).get("intervals"))

    def __post_init__(self) -> None:
        self._needed = frozenset(self.columns)
        self._num_cols = [c for c, num in zip(self.columns, self.numeric, strict=True) if num]
        self._obj_cols = [c for c, num in zip(self.columns, self.numeric, strict=True)
                          if not num]
        self._num_get = itemgetter(*self._num_cols) if self._num_cols else None
        self._obj_get = itemgetter(*self._obj_cols) if self._obj_cols else None

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def missing_columns(self, records: list[Record]) -> list[str]:
        needed = self._needed
        if all(needed <= rec.keys() for rec in records):  # the common case, at C speed
            return []
        missing: list[str] = []
        for rec in records:
            for c in self.columns:
                if c not in rec and c not in missing:
                    missing.append(c)
        return missing

    def arrays(self, records: list[Record], *, lean: bool = False
               ) -> dict[str, np.ndarray] | None:
        """Records → one array per schema column (extra keys ignored, the schema's order),
        without the general DataFrame path; None when values need the careful path (numbers
        sent as text, infinities) that explains what is wrong. With `lean` (for the lean
        path, which reads them as lists anyway) a text column sent as a column stays the
        request's own list."""
        if isinstance(records, Columns):
            return self._column_arrays(records, lean)
        try:
            return self._arrays(records)
        except KeyError:  # a record lacks a column: name every one missing
            missing = self.missing_columns(records)
            if not missing:
                raise
            raise _missing(missing) from None

    def _column_arrays(self, cols: Columns, lean: bool = False
                       ) -> dict[str, np.ndarray] | None:
        """`_arrays` for rows sent as columns: each column's list straight to its array,
        with the same rules (numbers only, None -> NaN, anything else to the careful path);
        with `lean`, text columns stay lists (read, never changed)."""
        index = cols.by_name()
        missing = [c for c in self.columns if c not in index]
        if missing:
            raise _missing(missing)
        n = len(cols)
        data: dict[str, np.ndarray] = {}
        numbers = cols.numbers
        try:
            if self._num_cols and all(map(numbers.__contains__, self._num_cols)):
                num = np.stack([numbers[c] for c in self._num_cols])  # made as it was read
                if np.isinf(num).any():
                    return None
                for j, col in enumerate(self._num_cols):
                    data[col] = num[j]
            elif self._num_cols:  # every numeric column in one call: a (columns × rows) matrix
                lists = [index[c] for c in self._num_cols]
                num = np.array(lists)
                if num.dtype.kind == "O":  # None (missing) among them, or huge integers
                    if not _PLAIN_NUMBERS.issuperset(map(type, chain.from_iterable(lists))):
                        return None
                    num = np.array(lists, dtype=np.float64)  # None -> NaN
                elif num.dtype.kind not in "biuf":
                    return None
                num = num.astype(np.float64, copy=False)
                if num.shape != (len(lists), n) or np.isinf(num).any():
                    return None
                for j, col in enumerate(self._num_cols):
                    data[col] = num[j]
            for col in self._obj_cols:
                if lean:
                    data[col] = index[col]
                    continue
                a = np.empty(n, dtype=object)
                a[:] = index[col]
                data[col] = a
        except (ValueError, TypeError, OverflowError):
            return None
        return {c: data[c] for c in self.columns}  # the schema's order

    def _arrays(self, records: list[Record]) -> dict[str, np.ndarray] | None:
        n = len(records)
        data: dict[str, np.ndarray] = {}
        try:
            # one C-level pass per kind of column: every record's numeric values as a tuple,
            # then one float matrix (None -> NaN); likewise the other columns as objects
            if self._num_cols:
                rows = list(map(self._num_get, records))
                if len(self._num_cols) == 1:
                    rows = [(v,) for v in rows]
                num = np.array(rows)  # numbers only: a numeric dtype, no per-cell check
                if num.dtype.kind == "O":  # None (missing) among them, or huge integers
                    if not _PLAIN_NUMBERS.issuperset(map(type, chain.from_iterable(rows))):
                        return None  # lists, dicts...: the careful path names the bad values
                    num = np.array(rows, dtype=np.float64)  # None -> NaN
                elif num.dtype.kind not in "biuf":
                    return None  # text: the careful path names the bad values
                num = num.astype(np.float64, copy=False).reshape(n, len(self._num_cols))
                if np.isinf(num).any():
                    return None
                for j, col in enumerate(self._num_cols):
                    data[col] = num[:, j]
            if self._obj_cols:
                cells = list(map(self._obj_get, records))
                obj = np.empty((n, len(self._obj_cols)), dtype=object)
                if len(self._obj_cols) == 1:
                    obj[:, 0] = cells
                else:
                    for j in range(len(self._obj_cols)):  # a column at a time: a list value
                        obj[:, j] = list(map(itemgetter(j), cells))  # stays one cell
                for j, col in enumerate(self._obj_cols):
                    data[col] = obj[:, j]
        except (ValueError, TypeError, OverflowError):
            return None
        return {c: data[c] for c in self.columns}  # the schema's order

    def frame(self, records: list[Record]) -> pd.DataFrame:
        """The pipeline's input: the CLI's own `model_input` (market indicators rebuilt,
        careful type checks), or the plain arrays when they need neither."""
        data = self.arrays(records) if self.market is None else None
        if data is None:
            if isinstance(records, Columns):
                records = records.records()
            return model_input(self.mv, pd.DataFrame.from_records(records))
        return pd.DataFrame(data, copy=False)

    def predict_records(self, records: list[Record]
                        ) -> tuple[list[Any], np.ndarray | None]:
        """(predicted labels or values, class probabilities as an array or None); the
        per-row probability dicts are built only by callers that answer with them."""
        if self.onnx is not None:
            return self.onnx.predict_records(self, records)
        data = self.arrays(records, lean=True) if self.fast is not None else None
        if data is None:
            return self.predict_frame(self.frame(records))
        return self._predict_arrays(data)

    def predict_parts(self, parts: list[list[Record]]
                      ) -> tuple[list[Any], np.ndarray | None]:
        """`predict_records` of several requests' rows together (the batcher's one call).
        Columns whose numbers were made arrays as the request was read (64 values or more):
        on the lean path each part's arrays are taken apart and concatenated. Otherwise
        (records, small V2 requests) the parts are joined and made arrays in one pass: a
        pass per part cost ~19 µs of fixed numpy work per 1-row request, against ~5 µs a
        request joined at 16 in a batch (docs/serving/session19.md)."""
        if (len(parts) > 1 and self.onnx is None and self.fast is not None
                and any(type(p) is Columns and p.numbers for p in parts)):
            arrays = [self.arrays(p, lean=True) for p in parts]
            if all(a is not None for a in arrays):
                return self._predict_arrays({c: _joined([a[c] for a in arrays])
                                             for c in self.columns})
        return self.predict_records(join(parts))

    def _predict_arrays(self, data: dict[str, np.ndarray]
                        ) -> tuple[list[Any], np.ndarray | None]:
        if self.classes is None:
            return np.asarray(self.fast.predict(data), dtype=float).tolist(), None
        return self._labelled(np.asarray(self.fast.predict_proba(data), dtype=float))

    def predict_frame(self, X: pd.DataFrame) -> tuple[list[Any], np.ndarray | None]:
        if self.classes is None:
            return np.asarray(self.pipeline.predict(X), dtype=float).tolist(), None
        return self._labelled(np.asarray(self.pipeline.predict_proba(X), dtype=float))

    def _labelled(self, proba: np.ndarray) -> tuple[list[Any], np.ndarray]:
        classes = self.classes
        return list(map(classes.__getitem__, np.argmax(proba, axis=1).tolist())), proba


def _joined(parts: list[Any]) -> Any:
    """Several requests' values of one column as one: lists (text sent as columns) stay a
    list of the values as sent (numpy would pick one dtype for them: text beside numbers
    makes every number text)."""
    if any(type(p) is list for p in parts):
        return list(chain.from_iterable(p if type(p) is list else p.tolist() for p in parts))
    return np.concatenate(parts)


def _missing(columns: list[str]) -> SchemaMismatchError:
    return SchemaMismatchError(
        "Columns the model was trained on are missing from the input: "
        + ", ".join(repr(c) for c in columns)
        + ". Add them (null values are allowed) and try again.")


def probability_dicts(classes: list[Any], proba: np.ndarray | None
                      ) -> list[dict[Any, float]] | None:
    """One {class: probability} per row, as the predict response shows them."""
    if proba is None:
        return None
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"{proba.shape} probabilities for {len(classes)} classes")
    return list(map(dict, map(zip, repeat(classes), proba.tolist())))  # no per-row bytecode


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class ModelCache:
    """At most `size` loaded versions; loading is serialised per version so concurrent first
    requests load once. `get` may load (seconds: call it off the event loop); `hit` never
    does. `on_change(n)` hears the number of versions held after every change (a gauge).
    With a `chooser` pool, runtime `auto` is timed there: a load answers with python at once
    (no probing on the request path) and onnxruntime takes over if it is faster."""

    def __init__(self, db: Database, size: int = 8,
                 on_change: Callable[[int], None] | None = None,
                 chooser: Executor | None = None) -> None:
        self.db = db
        self.chooser = chooser
        self.size = size
        self._items: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self.failed: dict[tuple[str, int], str] = {}  # versions that failed to load, and why
        self._on_change = on_change

    def hit(self, name: str, version: int) -> LoadedModel | None:
        """The loaded version, marked recently used; None when it is not loaded."""
        key = (name, version)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def get(self, name: str, version: int) -> LoadedModel:
        """The version, loaded (and verified) first if it is not held."""
        key = (name, version)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                item = self._items.get(key)
            if item is None:
                try:
                    item = self._load(name, version)
                except Exception as exc:
                    self.failed[key] = f"{type(exc).__name__}: {exc}"
                    raise
                self.failed.pop(key, None)
            with self._lock:
                self._items[key] = item
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                held = len(self._items)
            self._changed(held)
            return item

    def _load(self, name: str, version: int) -> LoadedModel:
        with self.db.session(workspace=workspace_of_key(name)) as session:
            _, mv = resolve(f"{name}:{version}", session=session)
            row = session.exec(select(Deployment).where(
                Deployment.model_id == mv.model_id)).first()
        pipeline = load_verified(mv.artifact_path, mv.fingerprint, f"{name}:{version}",
                                 accepted_sklearn=mv.accepted_sklearn,
                                 stored_fingerprint=mv.stored_fingerprint)
        lm = LoadedModel.build(name, mv, pipeline)
        requested = ((row.runtimes if row else None) or {}).get(str(version), Runtime.AUTO)
        gen = request(lm, requested)
        assert gen is not None
        if requested == Runtime.AUTO and self.chooser is not None and \
                settled(lm, requested) is None:
            try:
                self.chooser.submit(choose, lm, requested, gen)
                return lm
            except RuntimeError:  # the pool is shut down (server stopping): choose here
                pass
        choose(lm, requested, gen)
        return lm

    def _changed(self, held: int) -> None:
        if self._on_change is not None:
            self._on_change(held)

    def peek(self, name: str, version: int) -> LoadedModel | None:
        with self._lock:
            return self._items.get((name, version))

    def unload(self, name: str, version: int | None = None) -> list[int]:
        with self._lock:
            keys = [k for k in self._items if k[0] == name and version in (None, k[1])]
            for k in keys:
                del self._items[k]
            held = len(self._items)
        self._changed(held)
        return [k[1] for k in keys]

    def loaded_models(self, name: str) -> list[LoadedModel]:
        with self._lock:
            return sorted((m for (n, _), m in self._items.items() if n == name),
                          key=lambda m: m.version)

    def held(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._items.values())

    def loaded(self) -> list[str]:
        with self._lock:
            return [f"{n}:{v}" for n, v in self._items]
