"""A version's reference profile: what its training data (and its predictions) looked like.

Stored with the version at registration so any later batch can be compared with it, offline
or live. Numeric features keep a seeded sample (for KS and Wasserstein) and decile edges
(for PSI); categorical ones keep category frequencies (for chi-square, Jensen-Shannon, PSI).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.enums import ColumnKind, Task
from core.store.shapes import ColumnReference, DriftReference, SchemaColumn

SAMPLE_SIZE = 1000
MAX_CATEGORIES = 50
OTHER = "__other__"


PROFILED_AS_NUMBERS = (ColumnKind.NUMERIC, ColumnKind.DATETIME)  # KS / Wasserstein / deciles
NOT_PROFILED = (ColumnKind.ID, ColumnKind.TEXT)  # never features of a model


def numeric_kind(kind: str) -> bool:
    return kind in PROFILED_AS_NUMBERS


def _numeric_values(s: pd.Series, kind: str) -> np.ndarray:
    if kind == ColumnKind.DATETIME:
        ts = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
        return (ts.astype("int64") / 1e9).where(ts.notna()).dropna().to_numpy(dtype=float)
    return pd.to_numeric(s, errors="coerce").dropna().to_numpy(dtype=float)


def column_profile(s: pd.Series, kind: str, seed: int = 0) -> ColumnReference:
    missing = float(s.isna().mean())
    if numeric_kind(kind):
        values = _numeric_values(s, kind)
        rng = np.random.default_rng(seed)
        sample = values if len(values) <= SAMPLE_SIZE else rng.choice(values, SAMPLE_SIZE,
                                                                       replace=False)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, 11))) if len(values) else []
        return {"type": "numeric", "missing": missing, "sample": np.round(sample, 8).tolist(),
                "edges": [float(e) for e in edges], "n": int(len(values)),
                "mean": float(values.mean()) if len(values) else None,
                "std": float(values.std()) if len(values) else None}
    counts = s.dropna().astype(str).value_counts()
    top = counts.head(MAX_CATEGORIES)
    freqs = (top / counts.sum()).to_dict() if counts.sum() else {}
    rest = counts.iloc[MAX_CATEGORIES:].sum()
    if rest:
        freqs[OTHER] = float(rest / counts.sum())
    return {"type": "categorical", "missing": missing, "n": int(counts.sum()),
            "frequencies": {str(k): float(v) for k, v in freqs.items()}}


def build_reference(X: pd.DataFrame, schema: list[SchemaColumn], y: pd.Series,
                    task: str, predictions: np.ndarray | None = None) -> DriftReference:
    target_kind = ColumnKind.CATEGORICAL if Task(task).is_classification else ColumnKind.NUMERIC
    ref: DriftReference = {
        "features": {c["name"]: column_profile(X[c["name"]], c["kind"]) for c in schema
                     if c["kind"] not in NOT_PROFILED and c["name"] in X.columns},
        "target": column_profile(y, target_kind),
        "n_rows": int(len(X)),
    }
    if predictions is not None:
        ref["prediction"] = column_profile(pd.Series(predictions), target_kind)
    return ref
