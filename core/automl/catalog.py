"""The estimator catalogue, declared as data.

Each entry says which tasks it serves, which preprocessing family it needs, how costly it is,
its known-good default configurations (tried first), and its search space. Adding an estimator
is adding one entry here; the search and the CLI read this table and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from xgboost import XGBClassifier, XGBRegressor

from core.automl.boosters import (
    CatBoostClassifier,
    CatBoostRegressor,
    LightGBMClassifier,
    LightGBMRegressor,
)
from core.automl.deep import INSTALL_HINT as DEEP_INSTALL_HINT
from core.automl.deep import available as deep_available
from core.enums import Task
from core.errors import InvalidDataError, WorkbenchError
from core.features.preprocess import categorical_count
from core.store.shapes import Params, SchemaColumn

CLASSIFICATION = frozenset({Task.BINARY, Task.MULTICLASS})
REGRESSION = frozenset({"regression"})
BOTH = CLASSIFICATION | REGRESSION


@dataclass(frozen=True)
class EstimatorSpec:
    key: str
    label: str
    tasks: frozenset[str]
    family: str  # preprocessing family: "linear" (scaled, one-hot), "tree" (ordinal), "native"
    # (ordinal, category columns first: boosters with native categorical splits)
    cost: int  # 1 cheap … 3 expensive: cheap ones are tried first when the budget is short
    classifier: Callable[..., BaseEstimator] | None
    regressor: Callable[..., BaseEstimator] | None
    defaults: list[Params]
    space: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: Params = field(default_factory=dict)  # always passed, never searched
    # parameters a user may add to the search space (`search_space`), by task family
    # ("classification" / "regression"); the default search leaves them at their default
    optional: dict[str, dict[str, BaseDistribution]] = field(default_factory=dict)
    # a sequence model: the search passes it the time and ticker columns
    needs_time: bool = False
    # searched when no estimators are named; the networks are opt-in (torch's import and
    # training are slow for small budgets, and a search's timing should not change with it)
    in_default_search: bool = True
    # the estimator parameter told how many leading columns hold category codes (family
    # "native"): set from the schema when the pipeline is built, never searched
    categorical_param: str | None = None

    def searchable(self, task: str | None = None) -> dict[str, BaseDistribution]:
        """What a user may override for `task` (None: any task, choices of both merged):
        the searched parameters with the catalogue's bounds, and the optional ones."""
        families = [_family(task)] if task is not None else ["classification", "regression"]
        extra: dict[str, BaseDistribution] = {}
        for fam in families:
            for name, dist in self.optional.get(fam, {}).items():
                if name in extra and isinstance(dist, CategoricalDistribution):
                    # both families: the union of their choices
                    choices = [*extra[name].choices,
                               *(c for c in dist.choices if c not in extra[name].choices)]
                    dist = CategoricalDistribution(choices)
                extra[name] = dist
        return {**self.space, **extra}

    def with_overrides(self, task: str | None, overrides: Mapping[str, Any] | None
                       ) -> EstimatorSpec:
        """This entry with the user's ranges / fixed values over its search space (checked
        against the catalogue; see `override_distribution`); the known-good defaults are
        moved inside the overrides so the first trials respect them too."""
        if not overrides:
            return self
        allowed = self.searchable(task)
        space = dict(self.space)
        for name, value in overrides.items():
            if name not in allowed:
                raise InvalidDataError(
                    f"Unknown parameter {self.key}.{name} in the search space. Parameters of "
                    f"{self.key!r} you can set: {', '.join(sorted(allowed))}.")
            space[name] = override_distribution(f"{self.key}.{name}", allowed[name], value)
        defaults = _dedupe([{**point, **{n: _inside(space[n], point.get(n))
                                         for n in overrides}} for point in self.defaults])
        return dataclasses.replace(self, space=space, defaults=defaults)

    def make(self, task: str, params: Params,
             schema: list[SchemaColumn] | None = None) -> BaseEstimator:
        """The estimator with `params` over the fixed ones; unknown names are refused with
        the list of names the estimator accepts. With `schema`, an entry that reads category
        codes natively is told how many there are (`categorical_param`)."""
        factory = self.regressor if task == Task.REGRESSION else self.classifier
        if factory is None:
            raise WorkbenchError(f"The estimator {self.key!r} does not support {task} problems.")
        known = set(factory(**self.fixed).get_params()) | set(self.space)
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidDataError(
                f"Unknown parameter(s) for {self.key!r}: {', '.join(unknown)}. "
                f"Searched: {', '.join(sorted(self.space))}; also accepted: "
                f"{', '.join(sorted(known - set(self.space)))}.")
        if self.categorical_param is not None and schema is not None:
            params = {**params, self.categorical_param: categorical_count(schema)}
        return factory(**{**self.fixed, **params})


def _family(task: str) -> str:
    return "regression" if task == "regression" else "classification"


def describe(dist: BaseDistribution) -> str:
    """How a parameter's allowed values read in a message: `2..10 (integer)`, `a, b`."""
    if isinstance(dist, CategoricalDistribution):
        return "one of " + ", ".join(str(c) for c in dist.choices)
    kind = "integer" if isinstance(dist, IntDistribution) else "number"
    return f"{dist.low:g}..{dist.high:g} ({kind})"


def override_distribution(where: str, allowed: BaseDistribution, value: Any
                          ) -> BaseDistribution:
    """A user's override as an Optuna distribution: `{"low", "high"}` a range inside the
    catalogue's bounds (log scale kept), a list a set of choices, a plain value a fixed one
    (a single choice). Anything else is an `InputError` naming `where` and what is allowed."""
    if isinstance(value, Mapping):
        if set(value) != {"low", "high"}:
            raise InvalidDataError(f"{where}: a range needs exactly 'low' and 'high', got "
                             f"{', '.join(map(str, value)) or 'nothing'}.")
        if isinstance(allowed, CategoricalDistribution):
            raise InvalidDataError(f"{where} takes choices, not a range: {describe(allowed)}.")
        low, high = (_number(where, allowed, value[k]) for k in ("low", "high"))
        if low > high:
            raise InvalidDataError(f"{where}: low ({low:g}) is above high ({high:g}).")
        if low < allowed.low or high > allowed.high:
            raise InvalidDataError(f"{where}: the range {low:g}..{high:g} is outside the allowed "
                             f"{describe(allowed)}.")
        if isinstance(allowed, IntDistribution):
            return IntDistribution(int(low), int(high), log=allowed.log)
        return FloatDistribution(float(low), float(high), log=allowed.log)
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        raise InvalidDataError(f"{where}: give at least one value ({describe(allowed)}).")
    choices = [_choice(where, allowed, v) for v in values]
    return CategoricalDistribution(list(dict.fromkeys(choices)))


def _number(where: str, allowed: BaseDistribution, raw: Any) -> float | int:
    integer = isinstance(allowed, IntDistribution)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidDataError(f"{where}: {raw!r} is not a number; allowed: {describe(allowed)}.")
    if integer and not float(raw).is_integer():
        raise InvalidDataError(f"{where}: {raw!r} is not a whole number; allowed: "
                         f"{describe(allowed)}.")
    return int(raw) if integer else float(raw)


def _choice(where: str, allowed: BaseDistribution, raw: Any) -> Any:
    if isinstance(allowed, CategoricalDistribution):
        for choice in allowed.choices:  # 1 and 1.0 are the same choice; True is not 1
            if type(choice) is type(raw) and choice == raw or (
                    isinstance(choice, float) and isinstance(raw, int | float)
                    and not isinstance(raw, bool) and float(raw) == choice):
                return choice
        raise InvalidDataError(f"{where}: {raw!r} is not allowed; choose {describe(allowed)}.")
    number = _number(where, allowed, raw)
    if not allowed.low <= number <= allowed.high:
        raise InvalidDataError(f"{where}: {number:g} is outside the allowed {describe(allowed)}.")
    return number


def _inside(dist: BaseDistribution, value: Any) -> Any:
    """`value` if `dist` contains it, else the nearest value it does (a default moved inside
    the user's range)."""
    if isinstance(dist, CategoricalDistribution):
        return value if value in dist.choices else dist.choices[0]
    if value is None:
        return dist.low
    return min(max(value, dist.low), dist.high)


def _dedupe(points: list[Params]) -> list[Params]:
    seen: list[Params] = []
    for point in points:
        if point not in seen:
            seen.append(point)
    return seen


def check_search_space(overrides: Mapping[str, Any] | None, task: str | None = None,
                       estimators: tuple[str, ...] | None = None) -> None:
    """Refuse an override of an unknown estimator (or of one outside `estimators`) or
    parameter, a range outside the catalogue's bounds or of the wrong type, low > high:
    each `InputError` names the parameter and what is allowed."""
    for key, params in (overrides or {}).items():
        if key not in CATALOG:
            raise InvalidDataError(f"Unknown estimator {key!r} in the search space. Choose one of: "
                             f"{', '.join(CATALOG)}.")
        if estimators and key not in estimators:
            raise InvalidDataError(f"The search space sets {key!r}, which is not among the "
                             f"estimators searched ({', '.join(estimators)}): add it to the "
                             "estimators or drop its overrides.")
        if not isinstance(params, Mapping):
            raise InvalidDataError(f"The search space of {key!r} must map parameter names to a "
                             "range, a list of values or one value.")
        CATALOG[key].with_overrides(task, params)


def _linear_classifier(C: float = 1.0, **kw: Any) -> BaseEstimator:
    return LogisticRegression(C=C, max_iter=2000, **kw)


FOREST_DEFAULTS = [{"n_estimators": 200, "max_features": "sqrt", "min_samples_leaf": 1}]
FOREST_SPACE: dict[str, BaseDistribution] = {
    "n_estimators": IntDistribution(50, 500, log=True),
    "max_features": CategoricalDistribution(["sqrt", "log2", 0.5, 1.0]),
    "min_samples_leaf": IntDistribution(1, 20, log=True),
}
# not searched by default; users may search or fix them (`--space rf.criterion=gini,entropy`)
FOREST_OPTIONAL: dict[str, dict[str, BaseDistribution]] = {
    "classification": {"criterion": CategoricalDistribution(["gini", "entropy", "log_loss"]),
                       "max_depth": IntDistribution(1, 64)},
    "regression": {"criterion": CategoricalDistribution(["squared_error", "absolute_error",
                                                          "friedman_mse", "poisson"]),
                   "max_depth": IntDistribution(1, 64)},
}

CATALOG: dict[str, EstimatorSpec] = {s.key: s for s in [
    EstimatorSpec(
        "linear", "Logistic / ridge regression", BOTH, "linear", 1,
        classifier=_linear_classifier,
        regressor=lambda C=1.0, **kw: Ridge(alpha=1.0 / C, **kw),
        defaults=[{"C": 1.0}],
        space={"C": FloatDistribution(1e-3, 1e3, log=True)},
    ),
    EstimatorSpec(
        "hgb", "Histogram gradient boosting", BOTH, "tree", 2,
        classifier=HistGradientBoostingClassifier, regressor=HistGradientBoostingRegressor,
        defaults=[{"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                   "l2_regularization": 1e-6}],
        space={"learning_rate": FloatDistribution(0.01, 0.3, log=True),
               "max_leaf_nodes": IntDistribution(8, 128, log=True),
               "min_samples_leaf": IntDistribution(5, 100, log=True),
               "l2_regularization": FloatDistribution(1e-6, 10.0, log=True)},
        fixed={"max_iter": 300, "early_stopping": True, "random_state": 0},
    ),
    EstimatorSpec(
        "xgboost", "XGBoost (hist)", BOTH, "tree", 2,
        classifier=XGBClassifier, regressor=XGBRegressor,
        defaults=[{"n_estimators": 300, "learning_rate": 0.1, "max_depth": 6,
                   "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 1.0}],
        space={"n_estimators": IntDistribution(50, 1000, log=True),
               "learning_rate": FloatDistribution(0.01, 0.3, log=True),
               "max_depth": IntDistribution(2, 10),
               "subsample": FloatDistribution(0.5, 1.0),
               "colsample_bytree": FloatDistribution(0.4, 1.0),
               "min_child_weight": FloatDistribution(0.5, 20.0, log=True)},
        fixed={"tree_method": "hist", "n_jobs": 1, "random_state": 0, "verbosity": 0},
    ),
    EstimatorSpec(
        "lightgbm", "LightGBM (native categories)", BOTH, "native", 2,
        classifier=LightGBMClassifier, regressor=LightGBMRegressor,
        # the library's defaults, then a larger-leaved slower learner (AutoGluon's "GBMLarge"
        # without extra trees); rounds are chosen by early stopping (core/automl/boosters.py)
        defaults=[{"learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
                   "colsample_bytree": 1.0, "subsample": 1.0, "reg_lambda": 1e-6},
                  {"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 3,
                   "colsample_bytree": 0.9, "subsample": 1.0, "reg_lambda": 1e-6}],
        space={"learning_rate": FloatDistribution(0.01, 0.3, log=True),
               "num_leaves": IntDistribution(4, 256, log=True),
               "min_child_samples": IntDistribution(2, 100, log=True),
               "colsample_bytree": FloatDistribution(0.4, 1.0),
               "subsample": FloatDistribution(0.5, 1.0),
               "reg_lambda": FloatDistribution(1e-6, 10.0, log=True)},
        optional={fam: {"min_data_per_group": IntDistribution(5, 200, log=True)}
                  for fam in ("classification", "regression")},
        fixed={"n_estimators": 1000, "early_stopping_rounds": 50, "n_jobs": 1,
               "random_state": 0, "max_time_s": None},
        categorical_param="categorical_columns",
    ),
    EstimatorSpec(
        "catboost", "CatBoost (native categories)", BOTH, "native", 3,
        classifier=CatBoostClassifier, regressor=CatBoostRegressor,
        defaults=[{"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0,
                   "random_strength": 1.0}],
        space={"learning_rate": FloatDistribution(0.01, 0.3, log=True),
               "depth": IntDistribution(4, 10),
               "l2_leaf_reg": FloatDistribution(0.5, 30.0, log=True),
               "random_strength": FloatDistribution(0.1, 10.0, log=True)},
        fixed={"iterations": 500, "early_stopping_rounds": 50, "thread_count": 1,
               "random_state": 0, "max_time_s": None},
        categorical_param="categorical_columns",
    ),
    EstimatorSpec(
        "rf", "Random forest", BOTH, "tree", 2,
        classifier=RandomForestClassifier, regressor=RandomForestRegressor,
        defaults=FOREST_DEFAULTS, space=FOREST_SPACE, fixed={"n_jobs": 1, "random_state": 0},
        optional=FOREST_OPTIONAL,
    ),
    EstimatorSpec(
        "extra_trees", "Extra trees", BOTH, "tree", 2,
        classifier=ExtraTreesClassifier, regressor=ExtraTreesRegressor,
        defaults=FOREST_DEFAULTS, space=FOREST_SPACE, fixed={"n_jobs": 1, "random_state": 0},
        optional=FOREST_OPTIONAL,
    ),
    EstimatorSpec(
        "knn", "k-nearest neighbours", BOTH, "linear", 1,
        classifier=KNeighborsClassifier, regressor=KNeighborsRegressor,
        defaults=[{"n_neighbors": 15, "weights": "distance"}],
        space={"n_neighbors": IntDistribution(3, 100, log=True),
               "weights": CategoricalDistribution(["uniform", "distance"])},
    ),
    EstimatorSpec(
        "mlp", "Neural network (MLP)", BOTH, "linear", 3,
        classifier=MLPClassifier, regressor=MLPRegressor,
        defaults=[{"hidden_layer_sizes": 64, "alpha": 1e-4, "learning_rate_init": 1e-3}],
        space={"hidden_layer_sizes": IntDistribution(16, 256, log=True),
               "alpha": FloatDistribution(1e-6, 1e-1, log=True),
               "learning_rate_init": FloatDistribution(1e-4, 1e-2, log=True)},
        fixed={"max_iter": 300, "early_stopping": True, "random_state": 0},
    ),
]}


# PyTorch networks (core/automl/deep): listed only when the optional 'deep' extra is installed;
# torch is imported when one is first built, never by importing this module.
def _tabular_net(classifier: bool) -> Callable[..., BaseEstimator]:
    def make(**params: Any) -> BaseEstimator:
        from core.automl.deep.tabular import TabularNetClassifier, TabularNetRegressor

        return (TabularNetClassifier if classifier else TabularNetRegressor)(**params)
    return make


def _sequence_net(classifier: bool) -> Callable[..., BaseEstimator]:
    def make(**params: Any) -> BaseEstimator:
        from core.automl.deep.sequence import SequenceNetClassifier, SequenceNetRegressor

        return (SequenceNetClassifier if classifier else SequenceNetRegressor)(**params)
    return make


NETWORK_SPACE: dict[str, BaseDistribution] = {
    "hidden_units": IntDistribution(16, 256, log=True),
    "n_layers": IntDistribution(1, 3),
    "norm": CategoricalDistribution(["layer", "batch"]),
    "dropout": FloatDistribution(0.0, 0.5),
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "weight_decay": FloatDistribution(1e-7, 1e-2, log=True),
    "batch_size": CategoricalDistribution([64, 128, 256]),
}
SEQUENCE_SPACE: dict[str, BaseDistribution] = {
    "window": IntDistribution(5, 60, log=True),
    "seq_hidden": IntDistribution(8, 64, log=True),
    "seq_layers": IntDistribution(1, 3),
    "hidden_units": IntDistribution(16, 128, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "weight_decay": FloatDistribution(1e-7, 1e-2, log=True),
}
SEQUENCE_DEFAULTS: Params = {"window": 20, "seq_hidden": 32, "seq_layers": 1,
                             "hidden_units": 32, "dropout": 0.1, "learning_rate": 3e-3,
                             "weight_decay": 1e-5}
# max_time_s: the search sets each fit's time limit from what is left of the budget
NETWORK_FIXED: Params = {"max_epochs": 100, "patience": 8, "random_state": 0,
                         "max_time_s": None}
DEEP_SPECS = [
    EstimatorSpec(
        "deep_tabular", "PyTorch tabular network (embeddings)", BOTH, "deep", 3,
        classifier=_tabular_net(True), regressor=_tabular_net(False),
        defaults=[{"hidden_units": 64, "n_layers": 2, "norm": "layer", "dropout": 0.1,
                   "learning_rate": 3e-3, "weight_decay": 1e-5, "batch_size": 128}],
        space=NETWORK_SPACE, fixed=NETWORK_FIXED, in_default_search=False,
    ),
    EstimatorSpec(
        "lstm", "PyTorch LSTM over past rows (market data)", BOTH, "sequence", 3,
        classifier=_sequence_net(True), regressor=_sequence_net(False),
        defaults=[SEQUENCE_DEFAULTS], space=SEQUENCE_SPACE,
        fixed={**NETWORK_FIXED, "cell": "lstm", "max_epochs": 60, "patience": 6},
        needs_time=True, in_default_search=False,
    ),
    EstimatorSpec(
        "tcn", "PyTorch temporal convolutions over past rows (market data)", BOTH, "sequence",
        3, classifier=_sequence_net(True), regressor=_sequence_net(False),
        defaults=[SEQUENCE_DEFAULTS], space=SEQUENCE_SPACE,
        fixed={**NETWORK_FIXED, "cell": "tcn", "max_epochs": 60, "patience": 6},
        needs_time=True, in_default_search=False,
    ),
]
if deep_available():
    CATALOG.update({s.key: s for s in DEEP_SPECS})


def get_spec(key: str, task: str | None = None) -> EstimatorSpec:
    spec = CATALOG.get(key)
    if spec is None and key in {s.key for s in DEEP_SPECS}:
        raise InvalidDataError(f"The estimator {key!r} is not installed. {DEEP_INSTALL_HINT}")
    if spec is None:
        raise InvalidDataError(f"Unknown estimator {key!r}. Choose one of: "
                               f"{', '.join(CATALOG)}.")
    if task is not None and task not in spec.tasks:
        raise InvalidDataError(f"The estimator {key!r} does not support {task} problems.")
    return spec


def specs_for(task: str) -> list[EstimatorSpec]:
    """The entries a search tries for `task` when no estimators are named."""
    return sorted((s for s in CATALOG.values() if task in s.tasks and s.in_default_search),
                  key=lambda s: s.cost)
