"""One benchmark run in a fresh process: fit one system on one split's files, predict the test
rows, write the figures as JSON. Standalone on purpose (pandas, numpy and the system's own
library only), so the same file runs under our venv and under AutoGluon's own venv.

    python bench/automl_child.py SYSTEM SPLIT_DIR BUDGET_S OUT_JSON

SPLIT_DIR holds train.parquet (features + target), test.parquet (features) and task.json
(target, kind, metric, seed, time_column), written once by bench/automl.py for every system.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Predict = Callable[[pd.DataFrame], np.ndarray]
AG_METRIC = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"}
FLAML_N_JOBS = 2  # the machine's cores; our search fits n_jobs=1 estimators


def fit_workbench(train: pd.DataFrame, task: dict[str, Any], budget: float
                  ) -> tuple[Predict, list[Any] | None]:
    from core.automl.search import search
    from core.features.schema import align_to_schema

    chosen = os.environ.get("WB_BENCH_ESTIMATORS", "")  # bench/automl.py --estimators
    result = search(train, task["target"], budget=budget, metric=task["metric"],
                    task=task["kind"], seed=task["seed"], time_column=task["time_column"],
                    estimators=chosen.split(",") if chosen else None,
                    portfolio=os.environ.get("WB_BENCH_PORTFOLIO", "1") != "0")
    pipe, schema = result.pipeline, result.data.schema
    if task["kind"] == "regression":
        return (lambda X: pipe.predict(align_to_schema(X, schema))), None
    return (lambda X: pipe.predict_proba(align_to_schema(X, schema))), list(pipe.classes_)


def fit_flaml(train: pd.DataFrame, task: dict[str, Any], budget: float
              ) -> tuple[Predict, list[Any] | None]:
    from flaml import AutoML

    automl = AutoML()
    X, y = train.drop(columns=[task["target"]]), train[task["target"]]
    kind = "regression" if task["kind"] == "regression" else "classification"
    extra = {"split_type": "time"} if task["time_column"] else {}  # rows are in time order
    automl.fit(X, y, task=kind, time_budget=budget, metric=task["metric"], seed=task["seed"],
               n_jobs=FLAML_N_JOBS, verbose=0, **extra)
    if task["kind"] == "regression":
        return automl.predict, None
    return automl.predict_proba, list(automl.classes_)


def _fit_autogluon(preset: str) -> Callable[..., tuple[Predict, list[Any] | None]]:
    def fit(train: pd.DataFrame, task: dict[str, Any], budget: float
            ) -> tuple[Predict, list[Any] | None]:
        from autogluon.tabular import TabularPredictor

        path = tempfile.mkdtemp(prefix="ag-")  # the caller runs us in a throwaway directory
        predictor = TabularPredictor(label=task["target"], problem_type=task["kind"],
                                     eval_metric=AG_METRIC[task["metric"]], path=path,
                                     verbosity=0)
        predictor.fit(train, time_limit=budget, presets=preset)
        if task["kind"] == "regression":
            return (lambda X: predictor.predict(X).to_numpy()), None
        classes = list(predictor.class_labels)
        return (lambda X: predictor.predict_proba(X, as_multiclass=True)[classes].to_numpy()
                ), classes
    return fit


LIBRARY = {"workbench": "core.automl.search", "flaml": "flaml", "ag": "autogluon.tabular"}
FITTERS: dict[str, Callable[..., tuple[Predict, list[Any] | None]]] = {
    "workbench": fit_workbench, "flaml": fit_flaml,
    "ag_medium": _fit_autogluon("medium_quality"), "ag_best": _fit_autogluon("best_quality"),
}


def peak_rss_mb() -> float:
    """This process's peak resident memory, or a waited-for child's if that was larger."""
    peak_kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = float(line.split()[1])
    except OSError:
        pass
    children_kb = float(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return max(peak_kb, children_kb) / 1024


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def main(system: str, split_dir: Path, budget: float, out: Path) -> None:
    warnings.filterwarnings("ignore")
    task = json.loads((split_dir / "task.json").read_text())
    train = pd.read_parquet(split_dir / "train.parquet")
    test = pd.read_parquet(split_dir / "test.parquet")
    # the library's import is not the search's: every system imports before the clock starts
    # (the workbench's imports took 20-55 s on a loaded 2-core machine; the promise is
    # search + refit within the budget), and the import time is reported on its own
    t_import = time.perf_counter()
    importlib.import_module(LIBRARY[system.split("_")[0]])
    t0 = time.perf_counter()
    predict, classes = FITTERS[system](train, task, budget)
    t1 = time.perf_counter()
    pred = np.asarray(predict(test), dtype=float)
    t2 = time.perf_counter()
    out.write_text(json.dumps({
        "fit_s": t1 - t0, "predict_s": t2 - t1, "import_s": t0 - t_import,
        "peak_mb": peak_rss_mb(),
        "classes": None if classes is None else [_plain(c) for c in classes],
        "pred": pred.tolist(),
    }))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]))
