"""AutoML benchmark: our search against FLAML at the same wall-clock budget.

Every dataset gets one stratified 75/25 split (seed 0), and both systems get the same budget
and the same metric, as in the AMLB benchmark: ROC AUC for binary tasks, log loss for
multiclass tasks and RMSE for regression. Each (system, dataset) run happens in its own Python
subprocess, so its peak memory is its own and a crash cannot affect the other runs. The
subprocess reports test-set predictions, and this process scores them with the same sklearn
functions for both systems.

    python bench/automl.py --budget 60
    python bench/automl.py --budget 10 --datasets iris,wine --systems workbench

FLAML is an optional extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets as skd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
RESULTS_DIR = ROOT / "bench" / "results"

TEST_SIZE = 0.25
SEED = 0
FLAML_N_JOBS = 2  # the machine's cores; our search fits n_jobs=1 estimators
TIE_TOLERANCE = 0.001  # relative: scores within 0.1 % of each other tie
BUDGET_SLACK = 0.10  # a run keeps its budget if it ends within budget + 10 %
SYSTEMS = ("workbench", "flaml")

METRIC_FOR_TASK = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}


# --- datasets, declared as data ---------------------------------------------------------------

def _sklearn(loader: Callable[..., Any], **kwargs: Any) -> Callable[[], pd.DataFrame]:
    """A bundled scikit-learn dataset (shipped with the package, nothing is downloaded)."""
    return lambda: loader(as_frame=True, **kwargs).frame


def _csv(name: str) -> Callable[[], pd.DataFrame]:
    return lambda: pd.read_csv(DATA_DIR / name)


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str  # binary | multiclass | regression

    @property
    def metric(self) -> str:
        return METRIC_FOR_TASK[self.task]


DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("breast_cancer", _sklearn(skd.load_breast_cancer), "target", "binary"),
    Dataset("wine", _sklearn(skd.load_wine), "target", "multiclass"),
    Dataset("iris", _sklearn(skd.load_iris), "target", "multiclass"),
    Dataset("digits", _sklearn(skd.load_digits), "target", "multiclass"),
    Dataset("diabetes", _sklearn(skd.load_diabetes), "target", "regression"),
    Dataset("breast_cancer_csv", _csv("breast_cancer.csv"), "diagnosis", "binary"),
    Dataset("wine_csv", _csv("wine.csv"), "cultivar", "multiclass"),
    Dataset("diabetes_csv", _csv("diabetes.csv"), "progression", "regression"),
]}


@dataclass
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split(ds: Dataset) -> Split:
    """The one 75/25 split both systems see (stratified for classification)."""
    frame = ds.load()
    X, y = frame.drop(columns=[ds.target]), frame[ds.target]
    strat = y if ds.task != "regression" else None
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_SIZE, random_state=SEED,
                                              stratify=strat)
    return Split(X_tr.reset_index(drop=True), X_te.reset_index(drop=True),
                 y_tr.reset_index(drop=True), y_te.reset_index(drop=True))


def labels_of(y: pd.Series) -> list[Any]:
    """The class labels in a fixed order, as JSON-safe Python values."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.unique(y.to_numpy())]


# --- one run (inside the child process) -------------------------------------------------------

@dataclass
class Fitted:
    """What a system's fit returns: something to predict with, in a common shape."""

    predict: Callable[[pd.DataFrame], np.ndarray]  # regression: values; else proba
    classes: list[Any] | None  # the column order of the probabilities


def fit_workbench(s: Split, ds: Dataset, budget: float) -> Fitted:
    from core.automl.search import search
    from core.features.schema import align_to_schema

    train = s.X_train.assign(**{ds.target: s.y_train})
    result = search(train, ds.target, budget=budget, metric=ds.metric, task=ds.task, seed=SEED)
    pipe, schema = result.pipeline, result.data.schema
    if ds.task == "regression":
        return Fitted(lambda X: pipe.predict(align_to_schema(X, schema)), None)
    return Fitted(lambda X: pipe.predict_proba(align_to_schema(X, schema)),
                  list(pipe.classes_))


def fit_flaml(s: Split, ds: Dataset, budget: float) -> Fitted:
    from flaml import AutoML

    automl = AutoML()
    task = "regression" if ds.task == "regression" else "classification"
    automl.fit(s.X_train, s.y_train, task=task, time_budget=budget, metric=ds.metric,
               seed=SEED, n_jobs=FLAML_N_JOBS, verbose=0)
    if ds.task == "regression":
        return Fitted(automl.predict, None)
    return Fitted(automl.predict_proba, list(automl.classes_))


FITTERS: dict[str, Callable[[Split, Dataset, float], Fitted]] = {
    "workbench": fit_workbench, "flaml": fit_flaml,
}


def peak_rss_mb() -> float:
    """This process's peak resident memory (plus any worker processes it waited for)."""
    peak_kb = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = float(line.split()[1])
    except OSError:
        peak_kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    children_kb = float(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return max(peak_kb, children_kb) / 1024


def run_child(system: str, dataset: str, budget: float, out: Path) -> None:
    """Fit one system on one dataset, predict the test rows, and write the figures to `out`."""
    import warnings

    warnings.filterwarnings("ignore")
    ds = DATASETS[dataset]
    s = split(ds)
    t0 = time.perf_counter()
    fitted = FITTERS[system](s, ds, budget)
    t1 = time.perf_counter()
    pred = np.asarray(fitted.predict(s.X_test), dtype=float)
    t2 = time.perf_counter()
    classes = None if fitted.classes is None else [
        c.item() if isinstance(c, np.generic) else c for c in fitted.classes]
    out.write_text(json.dumps({
        "fit_s": t1 - t0, "predict_s": t2 - t1, "peak_mb": peak_rss_mb(),
        "classes": classes, "pred": pred.tolist(),
    }))


# --- scoring (in the parent, the same code for both systems) ----------------------------------

def score(ds: Dataset, s: Split, pred: np.ndarray, classes: list[Any] | None) -> float:
    """ROC AUC, log loss or RMSE of test-set predictions, with sklearn's functions."""
    if ds.task == "regression":
        return float(skm.root_mean_squared_error(s.y_test, pred))
    labels = labels_of(s.y_train)
    proba = np.zeros((len(pred), len(labels)))  # columns in `labels` order
    for j, c in enumerate(classes or []):
        proba[:, labels.index(c)] = pred[:, j]
    if ds.task == "binary":
        return float(skm.roc_auc_score(s.y_test == labels[1], proba[:, 1]))
    return float(skm.log_loss(s.y_test, proba, labels=labels))  # sklearn clips to float eps


def ratio(metric: str, ours: float, theirs: float) -> float:
    """Our score relative to FLAML's, oriented so > 1 means ours is better."""
    num, den = (ours, theirs) if GREATER_IS_BETTER[metric] else (theirs, ours)
    if den == 0:
        return 1.0 if num == 0 else float("inf")
    return num / den


def is_win_or_tie(metric: str, ours: float, theirs: float) -> bool:
    if abs(ours - theirs) <= TIE_TOLERANCE * abs(theirs):
        return True
    return ours > theirs if GREATER_IS_BETTER[metric] else ours < theirs


# --- running the children ---------------------------------------------------------------------

@dataclass
class Run:
    system: str
    dataset: str
    budget_s: float
    score: float | None = None
    fit_s: float | None = None
    predict_s: float | None = None
    peak_mb: float | None = None
    load_before: float | None = None  # 1-min load average: other work skews the timings
    error: str | None = None

    @property
    def over_budget(self) -> bool:
        return self.fit_s is not None and self.fit_s > self.budget_s * (1 + BUDGET_SLACK)


def run_one(system: str, ds: Dataset, s: Split, budget: float, home: Path) -> Run:
    """One system on one dataset, in a fresh interpreter."""
    run = Run(system, ds.name, budget, load_before=os.getloadavg()[0])
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", system, ds.name,
               str(budget), str(out)]
        env = {**os.environ, "WORKBENCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=budget * 3 + 120)
        except subprocess.TimeoutExpired:
            run.error = f"timed out after {budget * 3 + 120:.0f} s"
            return run
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            run.error = f"exit {proc.returncode}: " + " | ".join(tail)
            return run
        res = json.loads(out.read_text())
    run.fit_s, run.predict_s, run.peak_mb = res["fit_s"], res["predict_s"], res["peak_mb"]
    try:
        run.score = score(ds, s, np.asarray(res["pred"], dtype=float), res["classes"])
    except Exception as exc:  # a malformed prediction is that run's failure, not the bench's
        run.error = f"scoring failed: {exc}"
    return run


def flaml_available() -> bool:
    try:
        import flaml  # noqa: F401
        from flaml import AutoML  # noqa: F401
    except ImportError:
        return False
    return True


# --- report -----------------------------------------------------------------------------------

@dataclass
class Row:
    dataset: str
    task: str
    metric: str
    wb: Run | None
    fl: Run | None
    ratio: float | None = None
    win_or_tie: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_row(ds: Dataset, runs: dict[str, Run]) -> Row:
    wb, fl = runs.get("workbench"), runs.get("flaml")
    row = Row(ds.name, ds.task, ds.metric, wb, fl)
    if wb and fl and wb.score is not None and fl.score is not None:
        row.ratio = ratio(ds.metric, wb.score, fl.score)
        row.win_or_tie = is_win_or_tie(ds.metric, wb.score, fl.score)
    return row


def _f(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _t(run: Run | None) -> str:
    if run is None or run.fit_s is None:
        return "-"
    return f"{run.fit_s:.1f}" + ("!" if run.over_budget else "")


COLUMNS = ["dataset", "task", "metric", "wb_score", "flaml_score", "ratio", "wb_time_s",
           "flaml_time_s", "wb_peak_mb", "flaml_peak_mb"]


def table(rows: list[Row]) -> str:
    body = [[
        r.dataset, r.task, r.metric,
        _f(r.wb.score if r.wb else None, ".4f"), _f(r.fl.score if r.fl else None, ".4f"),
        _f(r.ratio, ".4f") + ("" if r.win_or_tie is None else (" +" if r.win_or_tie else " -")),
        _t(r.wb), _t(r.fl),
        _f(r.wb.peak_mb if r.wb else None, ".0f"), _f(r.fl.peak_mb if r.fl else None, ".0f"),
    ] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(COLUMNS, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(b, widths, strict=True))))
    return "\n".join(lines)


def summarize(rows: list[Row]) -> dict[str, Any] | None:
    """Wins+ties, mean oriented score ratio and mean time ratio over datasets both finished."""
    both = [r for r in rows if r.ratio is not None]
    if not both:
        return None
    time_ratios = [r.wb.fit_s / r.fl.fit_s for r in both if r.fl.fit_s]
    wins = sum(bool(r.win_or_tie) for r in both)
    return {
        "wins_ties": wins, "n": len(both),
        "mean_score_ratio": float(np.mean([r.ratio for r in both])),
        "time_ratio": float(np.mean(time_ratios)) if time_ratios else None,
        "target_quality": wins * 3 >= 2 * len(both),
        "target_ratio": float(np.mean([r.ratio for r in both])) >= 1.0,
    }


def budget_report(runs: list[Run]) -> list[str]:
    lines = []
    for r in runs:
        limit = r.budget_s * (1 + BUDGET_SLACK)
        if r.error:
            lines.append(f"  {r.dataset:<18} {r.system:<9} FAILED (load {r.load_before:.1f}): "
                         f"{r.error}")
            continue
        flag = "OVER BUDGET" if r.over_budget else "ok"
        lines.append(f"  {r.dataset:<18} {r.system:<9} fit {r.fit_s:6.1f} s (limit {limit:.1f} s)"
                     f"  predict {r.predict_s:.3f} s  load {r.load_before:.1f}  {flag}")
    return lines


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("ml-workbench", "flaml", "scikit-learn", "lightgbm", "xgboost-cpu", "xgboost",
                "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def write_json(path: Path, budget: float, systems: list[str], rows: list[Row],
               runs: list[Run], summary: dict[str, Any] | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "created": datetime.now().isoformat(timespec="seconds"),
        "budget_s": budget, "systems": systems,
        "setup": {"test_size": TEST_SIZE, "seed": SEED, "stratified": True,
                  "flaml_n_jobs": FLAML_N_JOBS, "cpu_count": os.cpu_count(),
                  "tie_tolerance": TIE_TOLERANCE, "budget_slack": BUDGET_SLACK,
                  "metrics": METRIC_FOR_TASK},
        "versions": versions(),
        "runs": [{**asdict(r), "over_budget": r.over_budget} for r in runs],
        "datasets": [{"dataset": r.dataset, "task": r.task, "metric": r.metric,
                      "ratio": r.ratio, "win_or_tie": r.win_or_tie} for r in rows],
        "summary": summary,
    }
    path.write_text(json.dumps(payload, indent=2))


# --- entry point ------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="seconds per run (default 60)")
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated, from: {', '.join(DATASETS)}")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="workbench,flaml")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file for all figures (default bench/results/automl-<time>.json)")
    args = p.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [d for d in args.datasets if d not in DATASETS] + [
        s for s in args.systems if s not in SYSTEMS]
    if unknown:
        p.error(f"unknown dataset or system: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = list(args.systems)
    if "flaml" in systems and not flaml_available():
        print("FLAML is not installed, so only the workbench runs. Install the benchmark extra "
              "with: pip install -e '.[bench]'", flush=True)
        systems.remove("flaml")
    if not systems:
        return 1
    out = args.out or RESULTS_DIR / f"automl-{datetime.now():%Y%m%d-%H%M%S}.json"
    print(f"budget {args.budget:g} s per run; {TEST_SIZE:.0%} stratified test split, seed {SEED};"
          f" FLAML n_jobs={FLAML_N_JOBS}; {os.cpu_count()} cores", flush=True)
    home = Path(tempfile.mkdtemp(prefix="bench-workbench-home-"))
    rows, runs = [], []
    try:
        for name in args.datasets:
            ds = DATASETS[name]
            s = split(ds)
            by_system: dict[str, Run] = {}
            for system in systems:
                print(f"  {name} / {system} ...", end=" ", flush=True)
                run = run_one(system, ds, s, args.budget, home)
                print(f"{run.fit_s:.1f} s" if run.error is None else f"FAILED ({run.error})",
                      flush=True)
                by_system[system] = run
                runs.append(run)
            rows.append(make_row(ds, by_system))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    summary = summarize(rows)
    print()
    print(table(rows))
    print("ratio > 1: workbench better (ROC AUC: ours/flaml; log loss, RMSE: flaml/ours); "
          "+ win or tie within 0.1 %; ! fit time over budget + 10 %")
    print()
    print(f"Budget kept (fit wall time <= {args.budget:g} s + 10 %):")
    print("\n".join(budget_report(runs)))
    overruns = [r for r in runs if r.over_budget]
    print(f"  {'all runs kept the budget' if not overruns else f'{len(overruns)} overrun(s)'}")
    print()
    if summary is None:
        print("workbench vs flaml: no dataset where both systems finished")
    else:
        print(f"workbench vs flaml: wins+ties {summary['wins_ties']}/{summary['n']}, "
              f"mean score ratio {summary['mean_score_ratio']:.4f}, "
              f"time ratio {_f(summary['time_ratio'], '.2f')}")
        print(f"targets: wins+ties >= 2/3 {'PASS' if summary['target_quality'] else 'FAIL'}; "
              f"mean score ratio >= 1.00 {'PASS' if summary['target_ratio'] else 'FAIL'}; "
              f"budget kept {'PASS' if not overruns else 'FAIL'}")
    write_json(out, args.budget, systems, rows, runs, summary)
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        run_child(sys.argv[2], sys.argv[3], float(sys.argv[4]), Path(sys.argv[5]))
    else:
        sys.exit(main())
