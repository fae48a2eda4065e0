"""The estimator catalogue, declared as data.

Each entry says which tasks it serves, which preprocessing family it needs, how costly it is,
its known-good default configurations (tried first), and its search space. Adding an estimator
is adding one entry here; the search and the CLI read this table and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
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

from core.enums import Task
from core.errors import WorkbenchError
from core.store.shapes import Params

CLASSIFICATION = frozenset({Task.BINARY, Task.MULTICLASS})
REGRESSION = frozenset({"regression"})
BOTH = CLASSIFICATION | REGRESSION


@dataclass(frozen=True)
class EstimatorSpec:
    key: str
    label: str
    tasks: frozenset[str]
    family: str  # preprocessing family: "linear" (scaled, one-hot) or "tree" (ordinal)
    cost: int  # 1 cheap … 3 expensive: cheap ones are tried first when the budget is short
    classifier: Callable[..., BaseEstimator] | None
    regressor: Callable[..., BaseEstimator] | None
    defaults: list[Params]
    space: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: Params = field(default_factory=dict)  # always passed, never searched

    def make(self, task: str, params: Params) -> BaseEstimator:
        """The estimator with `params` over the fixed ones; unknown names are refused with
        the list of names the estimator accepts."""
        factory = self.regressor if task == Task.REGRESSION else self.classifier
        if factory is None:
            raise WorkbenchError(f"The estimator {self.key!r} does not support {task} problems.")
        known = set(factory(**self.fixed).get_params()) | set(self.space)
        unknown = sorted(set(params) - known)
        if unknown:
            raise WorkbenchError(
                f"Unknown parameter(s) for {self.key!r}: {', '.join(unknown)}. "
                f"Searched: {', '.join(sorted(self.space))}; also accepted: "
                f"{', '.join(sorted(known - set(self.space)))}.")
        return factory(**{**self.fixed, **params})


def _linear_classifier(C: float = 1.0, **kw: Any) -> BaseEstimator:
    return LogisticRegression(C=C, max_iter=2000, **kw)


FOREST_DEFAULTS = [{"n_estimators": 200, "max_features": "sqrt", "min_samples_leaf": 1}]
FOREST_SPACE: dict[str, BaseDistribution] = {
    "n_estimators": IntDistribution(50, 500, log=True),
    "max_features": CategoricalDistribution(["sqrt", "log2", 0.5, 1.0]),
    "min_samples_leaf": IntDistribution(1, 20, log=True),
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
        "rf", "Random forest", BOTH, "tree", 2,
        classifier=RandomForestClassifier, regressor=RandomForestRegressor,
        defaults=FOREST_DEFAULTS, space=FOREST_SPACE, fixed={"n_jobs": 1, "random_state": 0},
    ),
    EstimatorSpec(
        "extra_trees", "Extra trees", BOTH, "tree", 2,
        classifier=ExtraTreesClassifier, regressor=ExtraTreesRegressor,
        defaults=FOREST_DEFAULTS, space=FOREST_SPACE, fixed={"n_jobs": 1, "random_state": 0},
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


def get_spec(key: str, task: str | None = None) -> EstimatorSpec:
    spec = CATALOG.get(key)
    if spec is None:
        raise WorkbenchError(f"Unknown estimator {key!r}. Choose one of: {', '.join(CATALOG)}.")
    if task is not None and task not in spec.tasks:
        raise WorkbenchError(f"The estimator {key!r} does not support {task} problems.")
    return spec


def specs_for(task: str) -> list[EstimatorSpec]:
    return sorted((s for s in CATALOG.values() if task in s.tasks), key=lambda s: s.cost)
