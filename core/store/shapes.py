"""The shapes of the JSON documents kept in the tables' JSON columns.

They are TypedDicts, not models: a stored document stays a plain dict (no migration, no copy on
read), while the type checker and the next engineer see which keys exist. Keys are optional
(`total=False`) where documents written by older versions lack them. Open-ended documents keep
a named alias (`Record`, `Params`) that says what they hold.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

Record = dict[str, Any]
"""One input row as a client sends it: column name → value (any JSON scalar)."""

Params = dict[str, Any]
"""An estimator's hyperparameters: names and values depend on the estimator family."""


class SchemaColumn(TypedDict):
    """One column a model expects at predict time (`ModelVersion.input_schema`)."""

    name: str
    kind: str  # a core.enums.ColumnKind value
    dtype: str


class DatasetColumn(TypedDict):
    """One column of an uploaded dataset's profile (`Dataset.columns`)."""

    name: str
    kind: str
    dtype: str
    missing: int
    unique: int
    reason: str


class ConfusionMatrix(TypedDict):
    labels: list[str]
    matrix: list[list[int]]


class ColumnReference(TypedDict, total=False):
    """One column of a drift reference (core.monitor.reference.column_profile). Numeric
    columns keep a sample and decile edges; categorical ones their frequencies."""

    type: str  # "numeric" | "categorical"
    missing: float
    n: int
    sample: list[float]
    edges: list[float]
    mean: float | None
    std: float | None
    frequencies: dict[str, float]


class DriftReference(TypedDict, total=False):
    """`Evaluation.reference`: the training data's profile every later batch is compared with."""

    features: dict[str, ColumnReference]
    target: ColumnReference
    prediction: ColumnReference
    n_rows: int


class IntervalsDoc(TypedDict, total=False):
    """`Evaluation.intervals` (regression): split-conformal half-widths of the prediction
    intervals per coverage level ("0.9" → q: the interval is prediction ± q), from
    `n_residuals` out-of-fold residuals; `coverage` is the level served by default
    (core.automl.intervals)."""

    method: str
    coverage: float
    n_residuals: int
    half_widths: dict[str, float]


class ClassBalanceDoc(TypedDict, total=False):
    """`Evaluation.class_balance` (classification): the rarest class's share of the rows and
    whether that makes the target imbalanced (core.automl.metrics.class_balance)."""

    minority_share: float
    imbalanced: bool


class Evaluation(TypedDict, total=False):
    """`ModelVersion.evaluation`: what the search measured on out-of-fold predictions, plus what
    training adds (notes, drift reference, market settings and backtest)."""

    metrics: dict[str, float]
    n_validation_rows: int
    residuals: dict[str, list[float]]
    confusion_matrix: ConfusionMatrix
    roc_curve: dict[str, list[float]]
    pr_curve: dict[str, list[float]]
    feature_importance: list[dict[str, float | str]]
    suggestions: list[str]
    notes: list[str]
    elapsed_s: float
    task_reason: str
    dropped_columns: list[str]
    reference: DriftReference
    market: dict[str, Any]     # indicator settings a market model rebuilds at predict time
    backtest: dict[str, Any]   # core.automl.backtest.BacktestReport.to_dict
    intervals: IntervalsDoc    # regression versions trained since issue 15
    class_balance: ClassBalanceDoc  # classification versions trained since issue 15


class GuardRailsDoc(TypedDict, total=False):
    """`Deployment.guard_rails`: the rollback thresholds set for this deployment; a rail not
    set is core.deploy.rails.DEFAULT_GUARD_RAILS's."""

    max_error_rate: float
    max_p99_ms: float
    min_requests: int


class GateDoc(TypedDict, total=False):
    """`Job.gate`: the promotion gate's verdict on a retrain (core.usecases.promotion_gate)."""

    passed: bool
    reason: str
    metric: str
    candidate_version: int
    candidate_score: float
    production_version: int | None
    production_score: float | None
    min_abs: float
    min_rel: float
    action: str  # what followed: "canary", "none", …


class ProgressDoc(TypedDict, total=False):
    """`Job.progress`, as the worker updates it trial by trial (core.usecases.training)."""

    trials_done: int
    metric: str
    best_score: float | None
    last_estimator: str
    budget_s: float
    notes: list[str]


__all__ = ["ClassBalanceDoc", "ColumnReference", "ConfusionMatrix", "DatasetColumn",
           "DriftReference", "Evaluation", "GateDoc", "GuardRailsDoc", "IntervalsDoc", "Params",
           "ProgressDoc", "Record", "SchemaColumn"]
