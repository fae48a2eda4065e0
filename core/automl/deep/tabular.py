"""The tabular network: numbers plus learned category embeddings, normalised and dropped-out
hidden layers, early stopping on rows held out of the training rows, seeded and repeatable."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin

from core.automl.deep import nets
from core.automl.deep.base import (
    NetworkBase,
    ProbaMixin,
    fit_prep,
    repeatable,
    split_validation,
    train_module,
    transform_prep,
)


class _TabularNet(NetworkBase):
    def __init__(self, hidden_units: int = 64, n_layers: int = 2, norm: str = "layer",
                 dropout: float = 0.1, learning_rate: float = 3e-3, weight_decay: float = 1e-5,
                 batch_size: int = 128, max_epochs: int = 100, patience: int = 8,
                 validation_fraction: float = 0.15, max_embedding_dim: int = 16,
                 min_category_count: int = 2, random_state: int = 0,
                 max_time_s: float | None = None) -> None:
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

    def fit(self, X: Any, y: Any) -> _TabularNet:
        self._validate_params()
        frame = self._record_input(X)
        target, n_outputs = self._encode_target(y, len(frame))
        self.prep_ = fit_prep(frame, self.min_category_count)
        self.arch_ = self._arch_fields(self.prep_, n_outputs)
        num, cat = transform_prep(self.prep_, frame)
        train, valid = split_validation(len(frame), self.validation_fraction,
                                        self.random_state)
        with repeatable(self.random_state):
            self.module_ = nets.build(self.arch_)
            self.training_ = train_module(
                self.module_, (torch.as_tensor(num), torch.as_tensor(cat)), target, train,
                valid, self._loss(), est=self, seed=self.random_state)
        return self

    def _inputs(self, frame, fitting: bool) -> tuple[np.ndarray, ...]:
        return transform_prep(self.prep_, frame)


class TabularNetClassifier(ProbaMixin, ClassifierMixin, _TabularNet):
    """Binary and multiclass; probabilities are a softmax over `classes_`."""

    classifier = True


class TabularNetRegressor(RegressorMixin, _TabularNet):
    """Regression on a standardised target (scaled back in `predict`)."""


__all__ = ["TabularNetClassifier", "TabularNetRegressor"]
