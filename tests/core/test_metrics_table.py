"""Issue 15 item 6: the metric table's new entries agree with scikit-learn's own functions on
fixed examples, the old names keep their meaning, and "imbalanced" is decided by data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from core.automl.metrics import (
    IMBALANCED_MINORITY_SHARE,
    METRICS,
    all_scores,
    class_balance,
    get_metric,
    shown_metrics,
    stored_imbalance,
)

# a fixed binary example: classes sorted, "yes" is the positive class
Y_BIN = np.array(["no", "no", "yes", "yes", "no", "yes", "no", "no", "yes", "no"], dtype=object)
P_BIN = np.array(["no", "yes", "yes", "no", "no", "yes", "no", "no", "yes", "yes"], dtype=object)
PROBA_YES = np.array([0.1, 0.6, 0.8, 0.4, 0.2, 0.9, 0.3, 0.05, 0.7, 0.55])
PROBA_BIN = np.column_stack([1 - PROBA_YES, PROBA_YES])
BIN = ["no", "yes"]

# a fixed multiclass example
Y_MC = np.array(["a", "b", "c", "a", "b", "c", "a", "a", "b", "c"], dtype=object)
P_MC = np.array(["a", "b", "b", "a", "c", "c", "a", "b", "b", "a"], dtype=object)
PROBA_MC = np.array([[.7, .2, .1], [.1, .6, .3], [.2, .5, .3], [.8, .1, .1], [.2, .3, .5],
                     [.1, .2, .7], [.6, .3, .1], [.3, .4, .3], [.2, .7, .1], [.5, .2, .3]])
MC = ["a", "b", "c"]

Y_REG = np.array([3.0, -0.5, 2.0, 7.0, 4.2, 10.0])
P_REG = np.array([2.5, 0.0, 2.1, 7.8, 3.9, 8.0])


def _score(name: str, y, pred=None, proba=None, classes=None) -> float:
    return METRICS[name].score(y, pred, proba, classes)


def test_the_old_metric_names_are_all_still_there() -> None:
    assert {"roc_auc", "log_loss", "accuracy", "f1", "rmse", "mae", "r2"} <= set(METRICS)
    assert get_metric(None, "regression").name == "rmse"  # defaults unchanged


def test_precision_recall_f1_binary_are_for_the_positive_class() -> None:
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):
        assert _score(name, Y_BIN, P_BIN, classes=BIN) == pytest.approx(
            fn(Y_BIN, P_BIN, pos_label="yes"))
    # a sample holding only negatives is still scored for the model's positive class
    only_no = np.array(["no", "no"], dtype=object)
    assert _score("recall", only_no, np.array(["no", "yes"], dtype=object), classes=BIN) == 0


def test_precision_recall_f1_multiclass_are_macro() -> None:
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):
        assert _score(name, Y_MC, P_MC, classes=MC) == pytest.approx(
            fn(Y_MC, P_MC, average="macro"))


def test_balanced_accuracy_and_pr_auc_match_scikit_learn() -> None:
    assert _score("balanced_accuracy", Y_BIN, P_BIN) == pytest.approx(
        skm.balanced_accuracy_score(Y_BIN, P_BIN))
    assert _score("balanced_accuracy", Y_MC, P_MC) == pytest.approx(
        skm.balanced_accuracy_score(Y_MC, P_MC))
    assert _score("pr_auc", Y_BIN, proba=PROBA_BIN, classes=BIN) == pytest.approx(
        skm.average_precision_score(Y_BIN == "yes", PROBA_YES))
    onehot = np.column_stack([Y_MC == c for c in MC])
    assert _score("pr_auc", Y_MC, proba=PROBA_MC, classes=MC) == pytest.approx(
        skm.average_precision_score(onehot, PROBA_MC, average="macro"))


def test_mse_and_mape_match_scikit_learn() -> None:
    assert _score("mse", Y_REG, P_REG) == pytest.approx(skm.mean_squared_error(Y_REG, P_REG))
    assert _score("mape", Y_REG, P_REG) == pytest.approx(
        skm.mean_absolute_percentage_error(Y_REG, P_REG))


def test_mape_leaves_out_rows_whose_actual_value_is_zero() -> None:
    y, p = np.array([0.0, 2.0, 4.0, 0.0]), np.array([1.0, 1.0, 5.0, -3.0])
    assert _score("mape", y, p) == pytest.approx(0.375)  # (|1|/2 + |1|/4) / 2
    assert skm.mean_absolute_percentage_error(y, p) > 1e14  # what we avoid
    # every actual value 0: undefined, so left out of the scores rather than a huge number
    assert "mape" not in all_scores("regression", np.zeros(3), np.ones(3))


def test_all_scores_carries_every_metric_of_the_task() -> None:
    assert set(all_scores("regression", Y_REG, P_REG)) == {"rmse", "mae", "mse", "mape", "r2"}
    assert set(all_scores("binary", Y_BIN, P_BIN, PROBA_BIN, BIN)) == {
        "roc_auc", "log_loss", "accuracy", "f1", "precision", "recall", "balanced_accuracy",
        "pr_auc"}
    assert set(all_scores("multiclass", Y_MC, P_MC, PROBA_MC, MC)) == set(
        all_scores("binary", Y_BIN, P_BIN, PROBA_BIN, BIN))


def test_new_metrics_can_drive_a_search_in_the_right_direction() -> None:
    assert not get_metric("mape", "regression").greater_is_better
    assert not get_metric("mse", "regression").greater_is_better
    assert get_metric("pr_auc", "binary").greater_is_better
    assert get_metric("balanced_accuracy", "multiclass").greater_is_better


def test_imbalanced_means_a_rarest_class_under_the_threshold() -> None:
    assert IMBALANCED_MINORITY_SHARE == 0.2
    assert class_balance(["a"] * 81 + ["b"] * 19) == {"minority_share": 0.19,
                                                       "imbalanced": True}
    assert class_balance(["a"] * 80 + ["b"] * 20)["imbalanced"] is False
    assert class_balance([1] * 50 + [2] * 45 + [3] * 5)["imbalanced"] is True
    # with the model's classes, one missing from the rows is the rarest (0 rows)
    assert class_balance(["no"] * 10, ["no", "yes"]) == {"minority_share": 0.0,
                                                        "imbalanced": True}
    assert class_balance([0, 1, 1, 0], [0, 1])["minority_share"] == 0.5


def test_pages_show_balanced_accuracy_and_pr_auc_only_for_imbalanced_targets() -> None:
    scores = {"accuracy": 0.9, "balanced_accuracy": 0.6, "pr_auc": 0.4, "sharpe": 1.2}
    assert shown_metrics(scores, imbalanced=True) == scores
    assert shown_metrics(scores, imbalanced=False) == {"accuracy": 0.9, "sharpe": 1.2}
    # stored with the evaluation since issue 15; older versions: their confusion matrix
    assert stored_imbalance({"class_balance": {"imbalanced": True}})
    assert stored_imbalance({"confusion_matrix": {"matrix": [[90, 2], [5, 3]]}})  # 8 %
    assert not stored_imbalance({"confusion_matrix": {"matrix": [[50, 10], [10, 30]]}})
    assert not stored_imbalance({}) and not stored_imbalance(None)


def test_metrics_undefined_on_the_rows_are_left_out_not_nan() -> None:
    only_no = np.array(["no"] * 4, dtype=object)
    pred = np.array(["no", "yes", "no", "no"], dtype=object)
    proba = np.column_stack([np.full(4, 0.7), np.full(4, 0.3)])
    scores = all_scores("binary", only_no, pred, proba, BIN)
    assert "roc_auc" not in scores and "pr_auc" not in scores  # no positive row
    assert scores["accuracy"] == 0.75 and all(np.isfinite(list(scores.values())))
