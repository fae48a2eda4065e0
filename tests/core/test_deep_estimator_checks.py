"""scikit-learn's own estimator checks on the PyTorch tabular network (classifier and
regressor): they clone, refit, pickle, refuse bad input (1-D, sparse, complex, empty, no y) and
report their fitted state as scikit-learn's estimators do. Small nets, enough epochs for the
checks' accuracy thresholds."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch", reason="the optional 'deep' extra (PyTorch) is not installed: "
                                    "pip install -e '.[deep]'")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from core.automl.deep.tabular import TabularNetClassifier, TabularNetRegressor  # noqa: E402

SMALL = {"hidden_units": 16, "n_layers": 1, "max_epochs": 60, "patience": 10, "batch_size": 32,
         "learning_rate": 1e-2}


@pytest.mark.slow  # about a hundred small fits
@parametrize_with_checks([TabularNetClassifier(**SMALL), TabularNetRegressor(**SMALL)])
def test_the_tabular_network_follows_scikit_learn_conventions(estimator: Any,
                                                               check: Any) -> None:
    check(estimator)
