"""The training request: what to learn from, what to predict, and how to search; one frozen
value shared by the CLI (`automl`, `train`, `submit`), POST /v1/jobs, the Train page, the job
ledger (a job stores its settings), retraining and schedules.

Everything that can be checked without the data is checked here, with the messages the
workbench always gave; what depends on the data (the target's column, the task detected
from it, whether a metric or estimator fits that task) is checked when the request is
prepared (`core.usecases.training`), still before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from core.automl.catalog import check_search_space, get_spec
from core.errors import InputError, InvalidDataError, WorkbenchError
from core.features.targets import TARGET_KINDS
from core.registry import check_model_name
from core.store.shapes import Params

MAX_BUDGET_S = 86_400.0
DEFAULT_BUDGET_S = 60.0
# with a number of trials and no budget, the search still stops after an hour (the cap a
# forgotten `--trials 10000` on a wide table must not exceed); a fixed configuration gets
# the same hour, as `workbench train` always did
TRIALS_ONLY_BUDGET_S = 3600.0
FIXED_BUDGET_S = 3600.0
MAX_TRIALS = 10_000
TASK_CHOICES = ("classification", "regression", "binary", "multiclass")


class SearchMethod(StrEnum):
    TPE = "tpe"
    RANDOM = "random"
    GRID = "grid"


class MarketTarget(BaseModel):
    """Predict a price column's forward move instead of the column itself: indicator
    features, a forward target over `horizon` periods, walk-forward validation with a gap,
    and a backtest at `cost_bps` per trade."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "direction"
    horizon: int = 1
    ticker_column: str | None = None
    gap: int | None = None
    cost_bps: float = 5.0

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in TARGET_KINDS:
            raise InvalidDataError(f"Unknown target kind {kind!r}: use "
                                   f"{', '.join(TARGET_KINDS)}.")
        return kind

    @field_validator("horizon")
    @classmethod
    def _positive_horizon(cls, horizon: int) -> int:
        if horizon < 1:
            raise InputError(f"The horizon must be at least 1 period, got {horizon}.")
        return horizon

    @field_validator("gap")
    @classmethod
    def _gap_not_negative(cls, gap: int | None) -> int | None:
        if gap is not None and gap < 0:
            raise InputError(f"The gap must be zero or more periods, got {gap}.")
        return gap

    @field_validator("cost_bps")
    @classmethod
    def _cost_not_negative(cls, cost_bps: float) -> float:
        if not cost_bps >= 0:
            raise InputError(f"The cost per trade must be zero or more basis points, "
                                 f"got {cost_bps}.")
        return cost_bps

    @model_serializer(mode="wrap")
    def _stored(self, handler: Any) -> Any:
        doc = handler(self)
        if doc.get("gap") is None:  # stored as it always was: no gap key unless one is set
            doc.pop("gap", None)
        return doc


class ParamRange(BaseModel):
    """A range for one searched parameter, inside the catalogue's bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: int | float
    high: int | float


Scalar = bool | int | float | str
# estimator key -> parameter -> a range, a list of choices, or one fixed value
SearchSpace = dict[str, dict[str, ParamRange | list[Scalar] | Scalar]]

# the settings a job stores (and a retrain reuses), in the order they are stored
SETTINGS = ("budget", "seed", "time_column", "task", "metric", "estimators", "params",
            "sampler", "ensemble", "market")
# stored only when set, so a job without them stores exactly what it always stored
OPTIONAL_SETTINGS = ("exclude", "n_trials", "search_space", "portfolio")
# ...and these only when they differ from their default (a retrain must keep a switch turned off)
STORED_UNLESS = {"portfolio": True}


class TrainingRequest(BaseModel):
    """One request to train. `dataset` is a stored dataset's id, name or fingerprint (or
    prefix); in-process callers (the CLI) may give a local file's `Path` instead, which is
    read, checked and only then stored. `task` None means auto; `params` with exactly one
    estimator trains that configuration without a search."""

    # unknown fields are ignored, as POST /v1/jobs always did
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    dataset: int | str | SkipJsonSchema[Path] = Field(
        description="A stored dataset's id, name or fingerprint (upload it first with "
                    "POST /v1/datasets).")
    target: str = Field(min_length=1, description="The column to predict.")
    name: str | None = Field(default=None, description="Model name (default: the data's).")
    task: str | None = Field(default=None, description="auto, classification or regression.",
                             json_schema_extra={"enum": ["auto", "classification",
                                                         "regression"]})
    metric: str | None = Field(default=None, description="roc_auc, log_loss, accuracy, f1, "
                               "rmse, mae or r2 (default: auto, by task).")
    budget: float = Field(default=DEFAULT_BUDGET_S, description="Search time in seconds.",
                          json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_BUDGET_S})
    seed: int = 0
    time_column: str | None = Field(default=None, description="Validate in time order.")
    estimators: tuple[str, ...] | None = Field(
        default=None, description="Estimator keys to search (default: all that fit).")
    params: Params | None = Field(
        default=None, description="One configuration to train (needs exactly one estimator).")
    sampler: SearchMethod = Field(default=SearchMethod.TPE, alias="search",
                                  description="Search method: tpe, random or grid.")
    ensemble: bool = Field(default=True, description="Try an ensemble of the best trials.")
    portfolio: bool = Field(default=True, description="Try the shipped zero-shot portfolio's "
                            "configurations for the task kind first (off: start from the "
                            "catalogue's defaults).")
    market: MarketTarget | None = None
    exclude: tuple[str, ...] | None = Field(
        default=None, description="Columns to leave out of the features (a date that would "
                                  "only encode the row order, an identifier kept as a number).")
    n_trials: int | None = Field(
        default=None, description=f"Stop after this many trials (pruned and failed ones "
        f"count), or at the budget, whichever comes first. Without a budget the search "
        f"stops at {TRIALS_ONLY_BUDGET_S:.0f} s at the latest.",
        json_schema_extra={"minimum": 1, "maximum": MAX_TRIALS})
    search_space: SearchSpace | None = Field(
        default=None, description="Overrides of estimators' search spaces: {estimator: "
        "{parameter: {\"low\": L, \"high\": H} | [choices] | value}}, inside the "
        "catalogue's bounds (GET /v1/catalog lists them).")
    kind: Literal["search", "fixed"] | None = Field(
        default=None, description="fixed: train exactly `params` with `estimator` (no "
        "search, as `workbench train`); search (the default without params).")
    estimator: str | None = Field(default=None, description="The one estimator of a fixed "
                                  "configuration (same as estimators: [key]).")

    @model_validator(mode="before")
    @classmethod
    def _spell_out(cls, data: Any) -> Any:
        """`estimator` as a one-key `estimators`; `kind: fixed` with no params trains the
        estimator's defaults; the budget's default depends on what is asked (see
        TRIALS_ONLY_BUDGET_S, FIXED_BUDGET_S)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        key = data.get("estimator")
        if key is not None:
            keys = data.get("estimators")
            if keys and list(keys) != [key]:
                raise InputError(f"estimator {key!r} and estimators {list(keys)} disagree: "
                                 "give one of them.")
            data["estimators"] = [key]
        fixed = data.get("kind") == "fixed"
        if fixed and data.get("params") is None:
            data["params"] = {}
        if data.get("budget") is None:
            data["budget"] = (FIXED_BUDGET_S if fixed else TRIALS_ONLY_BUDGET_S
                              if data.get("n_trials") is not None else DEFAULT_BUDGET_S)
        return data

    @field_validator("n_trials")
    @classmethod
    def _trials_in_range(cls, n: int | None) -> int | None:
        if n is not None and not 1 <= n <= MAX_TRIALS:
            raise InputError(f"n_trials must be a whole number from 1 to {MAX_TRIALS}, "
                             f"got {n}.")
        return n

    @field_validator("search_space", mode="before")
    @classmethod
    def _known_space(cls, space: Any) -> Any:
        if isinstance(space, Mapping):
            # ranges as plain mappings, so the catalogue checks what the user wrote
            check_search_space({k: {n: (dict(v) if isinstance(v, ParamRange) else v)
                                    for n, v in p.items()} if isinstance(p, Mapping) else p
                                for k, p in space.items()})
        return space or None

    @field_validator("exclude")
    @classmethod
    def _no_empty_exclude(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return tuple(dict.fromkeys(names)) if names else None

    @field_validator("task", mode="before")
    @classmethod
    def _known_task(cls, task: Any) -> str | None:
        if task in (None, "auto"):
            return None
        if task not in TASK_CHOICES:
            raise InvalidDataError(f"Unknown task {task!r}: use auto, classification or "
                                   "regression.")
        return task

    @field_validator("metric", mode="before")
    @classmethod
    def _auto_metric(cls, metric: Any) -> Any:
        return None if metric == "auto" else metric

    @field_validator("sampler", mode="before")
    @classmethod
    def _known_sampler(cls, sampler: Any) -> Any:
        if sampler not in tuple(SearchMethod):
            raise InputError(f"Unknown search method {sampler!r}: use tpe, random or grid.")
        return sampler

    @field_validator("budget")
    @classmethod
    def _budget_in_range(cls, budget: float) -> float:
        if not budget > 0:
            raise InputError(
                f"The budget must be a positive number of seconds, got {budget}.")
        if budget > MAX_BUDGET_S:
            raise InputError(f"The budget must be at most {MAX_BUDGET_S:.0f} seconds "
                                 f"(24 hours), got {budget}.")
        return budget

    @field_validator("seed")
    @classmethod
    def _seed_in_range(cls, seed: int) -> int:
        if not 0 <= seed < 2**32:  # what NumPy's random generators accept
            raise InputError(f"The seed must be a whole number from 0 to {2**32 - 1}, "
                                 f"got {seed}.")
        return seed

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        return None if name is None else check_model_name(name)

    @field_validator("estimators")
    @classmethod
    def _known_estimators(cls, keys: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for key in keys or ():
            get_spec(key)
        return keys or None

    @model_validator(mode="after")
    def _one_configuration(self) -> Self:
        if self.kind == "fixed" and (not self.estimators or len(self.estimators) != 1):
            raise InputError("kind 'fixed' trains one configuration: give its estimator "
                             "(\"estimator\": \"hgb\") and params.")
        if self.kind == "search" and self.params is not None:
            raise InputError("params train one fixed configuration: use kind 'fixed' with "
                             "one estimator, or leave params out to search.")
        if self.params is not None and (not self.estimators or len(self.estimators) != 1):
            raise InputError("Training one configuration needs exactly one estimator.")
        if self.params is not None and (self.search_space or self.n_trials):
            raise InputError("search_space and n_trials control a search; a fixed "
                             "configuration trains its params once.")
        if self.search_space:
            check_search_space(self._space_doc(), estimators=self.estimators)
        return self

    def _space_doc(self) -> dict[str, dict[str, Any]]:
        return self.model_dump(mode="json", include={"search_space"})["search_space"] or {}

    def space_overrides(self) -> dict[str, dict[str, Any]]:
        """The search-space overrides as plain JSON values (what the search takes)."""
        return self._space_doc() if self.search_space else {}

    @classmethod
    def create(cls, **fields: Any) -> TrainingRequest:
        """A validated request, or the first problem as a `WorkbenchError` (the message the
        CLI prints and the pages show), not pydantic's report."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise _as_workbench_error(exc) from None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any],
                      overrides: Mapping[str, Any] | None = None, **fields: Any
                      ) -> TrainingRequest:
        """A request from a job's stored settings (a retrain's starting point), `overrides`
        (a schedule's) on top, where None means "back to the default"; `fields` are the
        dataset, target and name."""
        merged = {**settings, **(overrides or {})}
        stored = {k: merged[k] for k in (*SETTINGS, *OPTIONAL_SETTINGS)
                  if merged.get(k) is not None}
        return cls.create(**stored, **fields)

    @property
    def is_search(self) -> bool:
        return self.params is None

    def settings(self) -> dict[str, Any]:
        """What a job stores as its settings: the same keys and JSON values as ever."""
        doc = self.model_dump(mode="json", include={*SETTINGS, *OPTIONAL_SETTINGS})
        return {key: doc[key] for key in (*SETTINGS, *OPTIONAL_SETTINGS)
                if key in SETTINGS
                or doc.get(key) not in (None, STORED_UNLESS.get(key, None))}


def check_overrides(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings a schedule puts over a model's last ones: known names only, each valid."""
    unknown = sorted(set(settings) - {*SETTINGS, *OPTIONAL_SETTINGS})
    if unknown:
        raise InputError(f"Unknown training setting(s) {', '.join(unknown)}: use "
                             f"{', '.join((*SETTINGS, *OPTIONAL_SETTINGS))}.")
    # each value alone (params are checked with the estimator they end up with)
    given = {k: v for k, v in settings.items() if v is not None and k != "params"}
    TrainingRequest.create(dataset=0, target="_", **given)
    return dict(settings)


def _as_workbench_error(exc: ValidationError) -> WorkbenchError:
    first = exc.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, WorkbenchError):
        return cause
    where = ".".join(str(p) for p in first.get("loc", ())) or "request"
    return InvalidDataError(f"Invalid {where}: {first.get('msg')}.")
