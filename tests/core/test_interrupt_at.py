"""The in-fit interrupt (core/automl/budget.py `interrupt_at`, review s8 H4/L1): a CatBoost fit
stopped at its deadline ends in `OutOfTime` (CatBoost reports our exception as a Ctrl-C), a
real Ctrl-C stays a Ctrl-C, and once the block has ended its handler no longer raises even if
an alarm is handled late."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from core.automl.boosters import CatBoostRegressor
from core.automl.budget import OutOfTime, interrupt_at


def test_a_catboost_fit_stopped_at_its_deadline_raises_out_of_time() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 10))
    y = X[:, 0] + rng.normal(size=2000)
    model = CatBoostRegressor(iterations=10**6, early_stopping_rounds=10**6)
    try:
        with pytest.raises(OutOfTime), interrupt_at(time.monotonic() + 0.5) as armed:
            assert armed
            model.fit(X, y)
    except KeyboardInterrupt:  # what it was before: the search (and the job) died
        pytest.fail("the deadline reached the caller as a KeyboardInterrupt")


def test_a_real_ctrl_c_inside_the_block_stays_a_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), interrupt_at(time.monotonic() + 60):
        raise KeyboardInterrupt


def test_the_handler_does_nothing_once_the_block_has_ended() -> None:
    """An alarm whose Python handler runs just after the block (the timer expired as it
    ended) must not raise OutOfTime into unrelated code."""
    before = signal.getsignal(signal.SIGALRM)
    with interrupt_at(time.monotonic() + 60) as armed:
        assert armed
        handler = signal.getsignal(signal.SIGALRM)
    assert signal.getsignal(signal.SIGALRM) is before
    handler(signal.SIGALRM, None)  # a late delivery: no exception
