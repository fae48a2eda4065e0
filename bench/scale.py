"""Scale benchmarks (issue 19, and the AutoML issue's one-machine check).

    nice .venv/bin/python bench/scale.py                  # dask + servers, a few minutes
    nice .venv/bin/python bench/scale.py dask --budget 120 --workers 1,2,4,8 --rows 20000
    nice .venv/bin/python bench/scale.py servers --servers 4 --rounds 10
    nice .venv/bin/python bench/scale.py table            # 100,000 x 40 on one machine

`dask`: one search of the same table, budget and seed on this machine (no cluster) and on a
Dask cluster of 1, 2 and 4 workers (a `dask scheduler` and `dask worker --nthreads 1`
processes started here; run the bench under `nice`, they inherit it, so the local search
and the workers compete for the CPU alike); prints trials evaluated, trials completed and
the best score per budget, and the speed-up (trials per budget against 1 worker, measured
in the same run). With fewer free cores than workers, the cores bound the speed-up.

`servers`: N `workbench serve` processes on one database; a deployment change (a candidate at
100 %, then a rollback) is made R times and each server is polled until it answers with the
new version; prints the propagation time per server and the maximum, against the contract's
one second (ARCHITECTURE.md, "Routing semantics").

`table`: a 100,000 x 40 table searched within its budget under 3 GB peak memory, and
1,000,000 rows predicted with the winner (wall time against the budget, VmHWM against 3 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def table(rows: int, cols: int, rng: np.random.Generator) -> pd.DataFrame:
    n_cat = cols // 5
    data = {f"x{i}": rng.normal(0, 1, rows) for i in range(cols - n_cat)}
    for j in range(n_cat):
        data[f"c{j}"] = rng.choice([f"level{k}" for k in range(12)], rows)
    frame = pd.DataFrame(data)
    logit = frame["x0"] - 0.5 * frame["x1"] + (frame["c0"] == "level3") + 0.3 * frame["x2"] ** 2
    frame["target"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- dask: one search on 1, 2, 4 workers ----------------------------------------------------
class LocalDask:
    """A scheduler and worker processes on this machine, as `dask` CLIs on a cluster."""

    def __init__(self, logs: Path) -> None:
        self.logs, self.port = logs, free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT),
                    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
        self.procs = [self._start("scheduler", "dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(self.port), "--no-dashboard")]

    def _start(self, name: str, module: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}-{len(getattr(self, 'procs', []))}.log", "wb")
        return subprocess.Popen([sys.executable, "-m", f"distributed.cli.{module}",
                                 *args], cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)

    def grow(self, client, n: int) -> None:
        while len(self.procs) - 1 < n:
            self.procs.append(self._start("worker", "dask_worker", self.address, "--nthreads",
                                          "1", "--no-nanny", "--no-dashboard", "--preload",
                                          "core.automl.cluster", "--local-directory",
                                          str(self.logs)))
        client.wait_for_workers(n, timeout=300)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)


def bench_dask(args: argparse.Namespace) -> dict:
    import distributed

    from core.automl.search import run_search
    from core.automl.train import prepare

    frame = table(args.rows, args.cols, np.random.default_rng(0))
    data = prepare(frame, "target", seed=0)
    counts = [int(w) for w in args.workers.split(",")]
    rows: dict[str, dict] = {}

    def one(label: str, dask) -> None:
        t0 = time.monotonic()
        result = run_search(data, budget=args.budget, seed=0, dask=dask)
        wall = time.monotonic() - t0
        ok = sum(t.status == "ok" for t in result.trials)
        rows[label] = {"trials": len(result.trials), "ok": ok, "wall_s": round(wall, 1),
                       "best_single": result.best_single.score, "best": result.best.score,
                       "winner": result.best.estimator,
                       "workers_used": len({t.worker for t in result.trials if t.worker})}
        r = rows[label]
        print(f"  {label:>10}: {r['trials']:3d} trials ({ok} completed) in {wall:5.1f} s for a "
              f"{args.budget:g} s budget; best single {r['best_single']:.4f}, registered "
              f"{r['winner']} {r['best']:.4f}", flush=True)

    print(f"dask: {args.rows:,} x {args.cols} table, budget {args.budget:g} s, seed 0; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    one("local", None)
    cluster = LocalDask(Path(tempfile.mkdtemp(prefix="wb-dask-")))
    try:
        with distributed.Client(cluster.address, timeout=60, set_as_default=False) as client:
            for n in counts:
                cluster.grow(client, n)
                # new workers' first trial pays one-off costs (first calls into scikit-learn,
                # receiving the data): a short unmeasured search warms them, as the local
                # process is warm from its imports
                run_search(data, budget=5, seed=1, max_trials=2 * n, ensemble=False,
                           dask=client)
                one(f"{n} worker" + ("s" if n > 1 else ""), client)
    finally:
        cluster.close()
    base = rows[f"{counts[0]} worker" + ("s" if counts[0] > 1 else "")]
    print("  speed-up (trials per budget / trials on "
          f"{counts[0]} worker, same run): " + ", ".join(
              f"{label} {r['trials'] / max(base['trials'], 1):.2f}x"
              for label, r in rows.items() if label != "local"), flush=True)
    return rows


# -- servers: a deployment change reaching N servers ----------------------------------------
def bench_servers(args: argparse.Namespace) -> dict:
    import httpx

    from core.deploy.deployments import deploy, rollback
    from core.registry import register_version
    from core.store import Database

    frame = table(2000, 6, np.random.default_rng(0))
    X, y = frame.drop(columns="target"), frame["target"]
    schema = [{"name": c, "kind": "categorical" if c.startswith("c") else "numeric",
               "dtype": "object" if c.startswith("c") else "float64"} for c in X.columns]
    db = Database()
    with db.session() as s:
        for seed in (0, 1):
            register_version(_small_pipeline(seed).fit(X, y), session=s, name="scale",
                             task="binary", target="target", input_schema=schema,
                             classes=["no", "yes"])
        deploy("scale", 1, session=s)
    ports = [free_port() for _ in range(args.servers)]
    procs = [subprocess.Popen([sys.executable, "-m", "app", "serve", "--host",
                               "127.0.0.1", "--port", str(p), "--no-monitor"], cwd=ROOT,
                              env=os.environ.copy(), stderr=subprocess.DEVNULL)
             for p in ports]
    body = {"records": json.loads(X.head(1).to_json(orient="records"))}
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_answering(port, proc, body, "1")
            # both versions in memory, as after `POST /v1/models/scale/load`: what is timed
            # is the state change, not a first load of the artifact (docs/scale/dask.md)
            httpx.post(f"http://127.0.0.1:{port}/v1/models/scale/load", json={"version": 2},
                       timeout=120).raise_for_status()
        print(f"servers: {args.servers} `workbench serve` on one database "
              f"({db.engine.dialect.name}), {args.rounds} changes each way", flush=True)
        worst: list[float] = []
        for r in range(args.rounds):
            for change, expect in (("candidate 2 at 100 %", "2"), ("rollback", "1")):
                with db.session() as s:
                    if expect == "2":
                        deploy("scale", 2, percent=100, session=s)
                    else:
                        rollback("scale", session=s)
                t0 = time.monotonic()
                seen = _until_all(ports, body, expect, t0)
                worst.append(max(seen))
                print(f"  round {r + 1} {change:>22}: " + ", ".join(f"{x * 1000:4.0f}"
                                                                     for x in seen)
                      + " ms", flush=True)
        print(f"  max propagation {max(worst) * 1000:.0f} ms over {len(worst)} changes "
              f"(contract: within 1000 ms) -> {'OK' if max(worst) < 1 else 'LATE'}",
              flush=True)
        return {"servers": args.servers, "max_propagation_s": max(worst),
                "changes": len(worst)}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _small_pipeline(seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["c0"])],
                            remainder="passthrough")
    return Pipeline([("pre", pre), ("lr", LogisticRegression(C=1.0 + seed, max_iter=500))])


def _version(port: int, body: dict, client) -> str | None:
    try:
        r = client.post(f"http://127.0.0.1:{port}/v1/models/scale/predict", json=body)
    except Exception:
        return None
    return r.headers.get("x-model-version") if r.status_code == 200 else None


def _wait_answering(port: int, proc: subprocess.Popen, body: dict, version: str) -> None:
    import httpx

    deadline = time.monotonic() + 180
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server on {port} exited with {proc.returncode}")
            if _version(port, body, client) == version:
                return
            time.sleep(0.3)
    raise RuntimeError(f"the server on {port} did not answer with version {version}")


def _until_all(ports: list[int], body: dict, expect: str, t0: float,
               timeout: float = 30.0) -> list[float]:
    """Seconds from the committed change until each server first answers `expect`."""
    import httpx

    seen: list[float] = [float("nan")] * len(ports)

    def poll(i: int) -> None:
        with httpx.Client(timeout=5) as client:
            while time.monotonic() - t0 < timeout:
                if _version(ports[i], body, client) == expect:
                    seen[i] = time.monotonic() - t0
                    return
                time.sleep(0.005)

    threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(ports))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(np.isnan(seen)):
        raise RuntimeError(f"a server never answered with version {expect} in {timeout:g} s")
    return seen


# -- table: the AutoML issue's one-machine check --------------------------------------------
def bench_table(args: argparse.Namespace) -> None:
    from core.automl.search import search
    from core.features.schema import align_to_schema

    rows, budget = args.table_rows, args.table_budget
    rng = np.random.default_rng(0)
    frame = table(rows, args.cols, rng)
    t0 = time.monotonic()
    result = search(frame, "target", budget=budget, seed=0)
    wall = time.monotonic() - t0
    search_peak = peak_mb()
    ok = sum(t.status == "ok" for t in result.trials)
    print(f"search {rows:,} x {args.cols}: {wall:.1f} s for a {budget:.0f} s budget "
          f"(ratio {wall / budget:.2f}; promise <= 1.10), {len(result.trials)} trials "
          f"({ok} ok), winner {result.best.estimator}, roc_auc {result.best.score:.4f}")
    print(f"peak memory after search: {search_peak:,.0f} MB ({search_peak / 3072:.2f} of 3 GB)")

    t0 = time.perf_counter()
    big = table(args.predict_rows, args.cols, np.random.default_rng(1)).drop(columns="target")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    X = align_to_schema(big, result.data.schema)
    proba = result.pipeline.predict_proba(X)
    predict = time.perf_counter() - t0
    print(f"predict {args.predict_rows:,} rows: {predict:.1f} s "
          f"({predict / build:.1f}x the {build:.1f} s to build those rows as a DataFrame); "
          f"{len(proba):,} probabilities; peak memory {peak_mb():,.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sections", nargs="*", metavar="dask|servers|table",
                    help="what to run (default: dask servers)")
    ap.add_argument("--budget", type=float, default=30.0, help="dask: seconds per search")
    ap.add_argument("--workers", default="1,2,4", help="dask: worker counts, in order")
    ap.add_argument("--rows", type=int, default=5000, help="dask: table rows")
    ap.add_argument("--cols", type=int, default=20, help="dask and table: table columns")
    ap.add_argument("--servers", type=int, default=3, help="servers: how many")
    ap.add_argument("--rounds", type=int, default=3, help="servers: changes each way")
    ap.add_argument("--table-rows", type=int, default=100_000)
    ap.add_argument("--table-budget", type=float, default=60.0)
    ap.add_argument("--predict-rows", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true", help="also print one JSON document")
    args = ap.parse_args()
    sections = args.sections or ["dask", "servers"]
    if set(sections) - {"dask", "servers", "table"}:
        ap.error(f"unknown section(s) {sorted(set(sections) - {'dask', 'servers', 'table'})}: "
                 "choose among dask, servers, table")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally` stops the processes
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-scale-"))
    os.environ.pop("WORKBENCH_DASK_SCHEDULER", None)  # "local" means local
    out: dict[str, object] = {}
    if "dask" in sections:
        out["dask"] = bench_dask(args)
    if "servers" in sections:
        out["servers"] = bench_servers(args)
    if "table" in sections:
        bench_table(args)
    if args.json:
        print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
