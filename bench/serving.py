"""Serving benchmark: throughput and p50/p99 latency on loopback for 1-row and 100-row
requests at concurrency 1, 8 and 32, against `workbench serve` and, in the same run,
`mlflow models serve` of the identical pipeline, plus the in-process predict time as the floor.

    .venv/bin/python bench/serving.py                       # ours + in-process floor
    .venv/bin/python bench/serving.py --mlflow-python /tmp/mlflow-venv/bin/python
                                                            # + mlflow models serve
    .venv/bin/python bench/serving.py --concurrency 128 --unbounded
                                        # load shedding: the default bound against none
    git worktree add /tmp/ref <commit> && .venv/bin/python bench/serving.py --against /tmp/ref
                                        # before/after: another checkout's server, same run

Latency percentiles are of answered (200) requests; a 503 (overloaded) is counted as refused
and its caller waits the Retry-After seconds before its next request, as a client should.

The load is bounded: every cell stops after --seconds or --max-requests, whichever comes
first, and only 127.0.0.1 is contacted. The client is a minimal keep-alive HTTP/1.1 client on
asyncio (one connection per concurrent caller), so it costs the shared CPU as little as
possible. The pipeline: 23 columns (15 numeric, 8 categorical) → one-hot + histogram gradient
boosting, like the issue's reference.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_NUM, N_CAT = 15, 8


def make_data(n: int = 5000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {f"num_{i}": rng.normal(size=n) for i in range(N_NUM)}
    for j in range(N_CAT):
        cols[f"cat_{j}"] = rng.choice([f"c{k}" for k in range(6 + j)], size=n)
    X = pd.DataFrame(cols)
    logit = X["num_0"] - 0.5 * X["num_1"] + (X["cat_0"] == "c1") * 0.8
    y = np.where(logit + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    return X, y


def make_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         [f"cat_{j}" for j in range(N_CAT)]),
        ("num", "passthrough", [f"num_{i}" for i in range(N_NUM)])])
    return Pipeline([("pre", pre), ("gb", HistGradientBoostingClassifier(max_iter=100))])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become ready")


# -- a minimal keep-alive HTTP/1.1 load client -----------------------------------------------
async def _one_conn(port: int, request: bytes, stop_at: float, budget: list[int],
                    lat: list[float], errors: list[str], refused: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length, retry_after = 0, 1.0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                elif line[:12].lower() == b"retry-after:":
                    retry_after = float(line[12:])
            body = await reader.readexactly(length)
            if status == 503:  # overloaded: wait as told, like a well-behaved client
                refused.append(time.perf_counter() - t0)
                await asyncio.sleep(min(retry_after, max(0.0, stop_at - time.perf_counter())))
                continue
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(f"{status} {body[:200]!r}")
    finally:
        writer.close()


async def _load(port: int, path: str, body: bytes, concurrency: int, seconds: float,
                max_requests: int) -> dict:
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    lat: list[float] = []
    errors: list[str] = []
    refused: list[float] = []
    budget = [max_requests]
    t0 = time.perf_counter()
    await asyncio.gather(*[_one_conn(port, request, t0 + seconds, budget, lat, errors,
                                     refused) for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"requests": len(lat), "errors": len(errors), "first_error": errors[:1],
            "refused": len(refused),
            "refused_max_ms": 1000 * max(refused) if refused else None,
            "rps": len(lat) / elapsed,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None}


def load(port: int, path: str, body: bytes, concurrency: int, seconds: float,
         max_requests: int) -> dict:
    # warm-up, then the measured run
    asyncio.run(_load(port, path, body, concurrency, 0.3, 50))
    return asyncio.run(_load(port, path, body, concurrency, seconds, max_requests))


def floor(pipe, X: pd.DataFrame, lean=None) -> dict:
    """In-process time, one thread: the pipeline's predict_proba on a DataFrame, and the
    server's lean path (records → arrays → compiled preprocessing → estimator)."""
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(1):
        for rows in (1, 100):
            batch = X.iloc[:rows]
            times = []
            for _ in range(200 if rows == 1 else 50):
                t0 = time.perf_counter()
                pipe.predict_proba(batch)
                times.append(time.perf_counter() - t0)
            out[f"{rows}_row_ms"] = 1000 * statistics.median(times)
            if lean is not None:
                recs = json.loads(batch.to_json(orient="records"))
                times = []
                for _ in range(200 if rows == 1 else 50):
                    t0 = time.perf_counter()
                    lean.predict_records(recs)
                    times.append(time.perf_counter() - t0)
                out[f"{rows}_row_lean_ms"] = 1000 * statistics.median(times)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to report server CPU per
    request: steadier than throughput on a shared machine, where the client competes too."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_ours(home: Path, port: int, workers: int, root: Path = ROOT,
               **extra_env: str) -> subprocess.Popen:
    """`root` another checkout (--against): the same server command run from its code."""
    env = {**os.environ, "WORKBENCH_HOME": str(home), **extra_env}
    if root != ROOT:
        env["PYTHONPATH"] = str(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.api:app_factory", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
         "--no-access-log"], cwd=root, env=env)
    wait_ready(port, "/health", proc)
    return proc


def start_mlflow(python: str, pipe, workdir: Path, port: int) -> subprocess.Popen:
    import joblib

    joblib.dump(pipe, workdir / "pipe.joblib")
    model_dir = workdir / "mlflow_model"
    subprocess.run([python, "-c", (
        "import joblib, mlflow.sklearn, sys; "
        "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], skops_trusted_types="
        "['sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor'])"),
        str(workdir / "pipe.joblib"), str(model_dir)], check=True)
    mlflow_bin = str(Path(python).with_name("mlflow"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}",
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([mlflow_bin, "models", "serve", "-m", str(model_dir), "-h",
                             "127.0.0.1", "-p", str(port), "-w", "1", "--env-manager", "local"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, "/ping", proc, timeout=180)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per cell (bounded)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="per cell (bounded)")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--rows", default="1,100")
    ap.add_argument("--workers", type=int, default=1, help="our server's worker processes")
    ap.add_argument("--mlflow-python", help="a Python with mlflow installed (the `bench` "
                    "extra, or a separate venv); omitted: MLflow is skipped")
    ap.add_argument("--unbounded", action="store_true", help="also run a server without the "
                    "bound of pending predictions (load shedding off), cell by cell")
    ap.add_argument("--against", type=Path, help="another checkout of this repository (e.g. a "
                    "worktree of an older commit): its server is measured in the same run, "
                    "cell by cell, on the same home; needs the same database schema")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    conc = [int(c) for c in args.concurrency.split(",")]
    rows_list = [int(r) for r in args.rows.split(",")]

    work = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    os.environ["WORKBENCH_HOME"] = str(work / "home")
    from core.deploy.deployments import deploy
    from core.registry import register_version
    from core.store import Database

    X, y = make_data()
    pipe = make_pipeline().fit(X, y)
    schema = [{"name": c, "kind": "numeric" if c.startswith("num") else "categorical",
               "dtype": "float64" if c.startswith("num") else "object"} for c in X.columns]
    with Database().session() as session:
        register_version(pipe, session=session, name="bench", task="binary", target="y",
                         input_schema=schema, classes=["no", "yes"])
        deploy("bench", 1, session=session)
    records = json.loads(X.iloc[:max(rows_list)].to_json(orient="records"))
    from core.deploy.service import Serving
    from core.store.db import Database

    lean = Serving(Database()).cache.get("bench", 1)
    results: dict = {"floor_in_process": floor(pipe, X, lean), "lean_path": lean.fast is not None,
                     "servers": {}}

    servers = [("workbench /predict", "ours", "/v1/models/bench/predict",
                lambda rs: {"records": rs}),
               ("workbench /invocations", "ours", "/invocations",
                lambda rs: {"dataframe_records": rs})]
    if args.unbounded:
        servers.append(("workbench, no bound", "unbounded", "/v1/models/bench/predict",
                        lambda rs: {"records": rs}))
    if args.against:
        servers += [(f"{label} @reference", "against", path, payload)
                    for label, which, path, payload in list(servers) if which == "ours"]
    if args.mlflow_python:
        servers.append(("mlflow models serve", "mlflow", "/invocations",
                        lambda rs: {"dataframe_records": rs}))
    procs: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        port = free_port()
        procs["ours"] = (start_ours(work / "home", port, args.workers), port)
        if args.unbounded:
            port = free_port()
            procs["unbounded"] = (start_ours(work / "home", port, args.workers,
                                             WORKBENCH_MAX_PENDING_REQUESTS="0",
                                             WORKBENCH_MAX_PENDING_ROWS="0"), port)
        if args.against:
            port = free_port()
            procs["against"] = (start_ours(work / "home", port, args.workers,
                                           root=args.against.resolve()), port)
        if args.mlflow_python:
            port = free_port()
            procs["mlflow"] = (start_mlflow(args.mlflow_python, pipe, work, port), port)
        # Servers take turns cell by cell, so a slow spell of the shared machine hits all of
        # them alike rather than whichever happened to run then.
        for rows, c, (label, which, path, payload) in itertools.product(rows_list, conc,
                                                                         servers):
            proc, port = procs[which]
            body = json.dumps(payload(records[:rows])).encode()
            cpu0 = cpu_seconds(proc.pid)
            r = load(port, path, body, c, args.seconds, args.max_requests)
            r["rows_per_s"] = r["rps"] * rows
            # with --workers > 1 the workers are children: this is the supervisor's share only
            r["server_cpu_ms_per_request"] = (1000 * (cpu_seconds(proc.pid) - cpu0)
                                              / max(1, r["requests"] + 50))  # + warm-up
            results["servers"].setdefault(label, {})[f"{rows}row_c{c}"] = r
            if not args.json:
                print(f"{label:24s} rows={rows:<4d} c={c:<3d} "
                      f"req/s={r['rps']:8.1f} rows/s={r['rows_per_s']:9.0f} "
                      f"p50={r['p50_ms']:7.2f}ms p99={r['p99_ms']:7.2f}ms "
                      f"cpu/req={r['server_cpu_ms_per_request']:5.2f}ms "
                      f"errors={r['errors']} refused={r['refused']}", flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        f = results["floor_in_process"]
        print(f"in-process predict_proba (1 thread): 1 row {f['1_row_ms']:.2f} ms, "
              f"100 rows {f['100_row_ms']:.2f} ms; lean path: 1 row "
              f"{f.get('1_row_lean_ms', float('nan')):.2f} ms, 100 rows "
              f"{f.get('100_row_lean_ms', float('nan')):.2f} ms")
        if args.against:
            print_against(results["servers"])
        if args.mlflow_python:
            ours = results["servers"]["workbench /invocations"]
            ml = results["servers"]["mlflow models serve"]
            for cell in ours:
                if cell in ml and ml[cell]["rps"]:
                    print(f"ratio {cell}: throughput ×{ours[cell]['rps'] / ml[cell]['rps']:.1f}, "
                          f"p99 ÷{ml[cell]['p99_ms'] / ours[cell]['p99_ms']:.1f}")
            print_targets(ours, ml)


# The targets, as data: (label, cells, check on (ours, mlflow) cell figures).
TARGETS = [
    ("1-row throughput >= 10x MLflow", ("1row_c8", "1row_c32"),
     lambda o, m: o["rps"] >= 10 * m["rps"]),
    ("1-row p99 <= MLflow p99 / 10", ("1row_c8", "1row_c32"),
     lambda o, m: o["p99_ms"] <= m["p99_ms"] / 10),
    ("1-row p50 <= 2 ms at concurrency 1", ("1row_c1",), lambda o, m: o["p50_ms"] <= 2.0),
    ("100-row rows/s >= 5x MLflow", ("100row_c1", "100row_c8", "100row_c32"),
     lambda o, m: o["rows_per_s"] >= 5 * m["rows_per_s"]),
]


def print_against(servers: dict) -> None:
    """This checkout over the reference one, cell by cell: >1 throughput is better, <1 CPU
    per request is better."""
    print("this checkout / reference (same run): throughput ratio, server CPU per request ratio")
    for label, cells in servers.items():
        ref = servers.get(f"{label} @reference")
        if ref is None:
            continue
        for cell, r in cells.items():
            if cell in ref and ref[cell]["rps"]:
                cpu = r["server_cpu_ms_per_request"] / ref[cell]["server_cpu_ms_per_request"]
                print(f"  {label:24s} {cell:11s} throughput ×{r['rps'] / ref[cell]['rps']:.2f}"
                      f"  cpu/req ×{cpu:.2f}")


def print_targets(ours: dict, ml: dict) -> None:
    print("targets (workbench /invocations vs mlflow models serve, this run):")
    for label, cells, check in TARGETS:
        present = [c for c in cells if c in ours and c in ml]
        if present:
            ok = all(check(ours[c], ml[c]) for c in present)
            print(f"  {label:40s} {', '.join(present):30s} {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
