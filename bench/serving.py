"""Serving benchmark: throughput and p50/p99 latency on loopback for 1-row and 100-row
requests at concurrency 1, 8 and 32, against `workbench serve` (1, 2 and 4 workers) and, in the
same run, `mlflow models serve` and MLServer (V2 protocol, pandas codec) of the identical
pipeline, plus the in-process predict time as the floor.

    .venv/bin/python bench/serving.py                       # ours + in-process floor
    .venv/bin/python bench/serving.py --mlflow-python /tmp/mlflow-venv/bin/python \
        --mlserver-python /tmp/mlserver-venv/bin/python     # + MLflow + MLServer
    .venv/bin/python bench/serving.py --quick --workers 1   # short cells: a smoke run
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
import signal
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


def deployed_model() -> tuple:
    """The benchmark's data, its fitted pipeline registered and deployed as version 1 on the
    lean path in the current WORKBENCH_HOME: (X, pipeline). For the A/B scripts beside this
    one."""
    from core.deploy.deployments import deploy
    from core.registry import register_version
    from core.store import Database

    X, y = make_data()
    pipe = make_pipeline().fit(X, y)
    with Database().session() as s:
        register_version(pipe, session=s, name=MODEL, task="binary", target="y",
                         input_schema=schema_of(X), classes=["no", "yes"])
        deploy(MODEL, 1, session=s, runtime="python")  # the lean path (see wb-onnx)
    return X, pipe


def schema_of(X: pd.DataFrame) -> list[dict]:
    return [{"name": c, "kind": "numeric" if c.startswith("num") else "categorical",
             "dtype": "float64" if c.startswith("num") else "object"} for c in X.columns]


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


def floor(pipe, X: pd.DataFrame, lean=None, repeat: int = 200) -> dict:
    """In-process time, one thread: the pipeline's predict_proba on a DataFrame, and the
    server's lean path (records → arrays → compiled preprocessing → estimator)."""
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(1):
        for rows in (1, 100):
            batch = X.iloc[:rows]
            times = []
            for _ in range(repeat if rows == 1 else repeat // 4):
                t0 = time.perf_counter()
                pipe.predict_proba(batch)
                times.append(time.perf_counter() - t0)
            out[f"{rows}_row_ms"] = 1000 * statistics.median(times)
            if lean is not None:
                recs = json.loads(batch.to_json(orient="records"))
                times = []
                for _ in range(repeat if rows == 1 else repeat // 4):
                    t0 = time.perf_counter()
                    lean.predict_records(recs)
                    times.append(time.perf_counter() - t0)
                out[f"{rows}_row_lean_ms"] = 1000 * statistics.median(times)
    return out


def onnx_floor(X: pd.DataFrame, repeat: int = 200) -> dict:
    """In-process time, one thread, of the same version exported to ONNX (parity-checked)
    and answered by onnxruntime, beside the lean path; {"skipped": why} without the extra
    `onnx` or when the version cannot be exported."""
    from core.errors import WorkbenchError
    from core.store.db import Database

    try:
        from core.onnx.export import export_onnx
        from core.registry.onnx_model import OnnxModel

        with Database().session() as s:
            model = OnnxModel(export_onnx(f"{MODEL}:1", session=s).data, "bench")
    except (ImportError, WorkbenchError) as exc:
        return {"skipped": str(exc)}
    out = {}
    for rows in (1, 100):
        batch = X.iloc[:rows]
        times = []
        for _ in range(repeat if rows == 1 else repeat // 4):
            t0 = time.perf_counter()
            model.predict_proba(batch)
            times.append(time.perf_counter() - t0)
        out[f"{rows}_row_onnx_ms"] = 1000 * statistics.median(times)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to report server CPU per
    request: steadier than throughput on a shared machine, where the client competes too."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU so far of `pid` and every live descendant (a supervisor and its workers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0.0
    for p in tree:
        try:
            total += cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


# wrk (Debian package `wrk`), a C load generator: one thread, epoll, keep-alive connections.
# On 2 shared cores the Python client's own CPU caps what several workers can show (see
# docs/serving/workers.md), so the workers cells use wrk when it is installed.
WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for _, path in ipairs({%(bodies)s}) do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
wrk.body = bodies[1]
if #bodies > 1 then  -- each request the next body in turn
  local n = 0
  request = function()
    n = n %% #bodies + 1
    return wrk.format(nil, nil, nil, bodies[n])
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "status_errors": %%d, '
    .. '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n', summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def load_wrk(port: int, path: str, body: bytes | list[bytes], concurrency: int,
             seconds: float, workdir: Path) -> dict:
    """One cell with wrk (bounded by --seconds, whole seconds, at least 1), sending `body`
    (or each of a list of bodies in turn); its own CPU from the kernel's accounting of the
    finished process. Non-200 answers count as errors (wrk does not wait on Retry-After: not
    for the load-shedding cells)."""
    files = []
    for k, one in enumerate([body] if isinstance(body, bytes) else body):
        files.append(workdir / f"wrk-body-{k}.json")
        files[-1].write_bytes(one)
    script = workdir / "wrk-post.lua"
    script.write_text(WRK_LUA % {"bodies": ", ".join(f'"{f}"' for f in files)})
    url = f"http://127.0.0.1:{port}{path}"
    before = _children_cpu()
    proc = subprocess.Popen(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = proc.communicate()  # reaped: its CPU is now in RUSAGE_CHILDREN
    usage = _children_cpu() - before
    line = next((x for x in out.decode().splitlines()[::-1] if x.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.decode()[-500:]}")
    w = json.loads(line)
    elapsed = w["duration_us"] / 1e6
    ok = w["requests"] - w["status_errors"]
    return {"requests": ok, "errors": w["status_errors"] + w["socket_errors"],
            "first_error": [], "refused": 0, "refused_max_ms": None, "rps": ok / elapsed,
            "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000, "elapsed_s": elapsed,
            "client": "wrk", "client_cpu_s": usage}


def _children_cpu() -> float:
    """CPU of this process's reaped children so far (the servers are reaped only at the end,
    so between two calls around one wrk run this is wrk's)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def start_ours(home: Path, port: int, workers: int, root: Path = ROOT,
               **extra_env: str) -> subprocess.Popen:
    """`workbench serve --workers N` as a user runs it (without the alert monitor, which
    would only add noise); `root` another checkout (--against): its code, same command."""
    env = {**os.environ, "WORKBENCH_HOME": str(home), **extra_env}
    if root != ROOT:
        env["PYTHONPATH"] = str(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--no-monitor"], cwd=root, env=env,
        stderr=subprocess.DEVNULL)
    return proc  # not yet ready: the caller starts the others, then waits (wait_ready)


# The peers predict with one OpenMP thread, as our server does: with the default (one per
# core) a predict on the shared 2-core machine waits on busy cores, and MLServer's 1-row
# throughput fell several-fold; this is the fairer and, for our ratios, the harder setting.
PEER_ENV = {"OMP_NUM_THREADS": "1"}


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
    env = {**os.environ, **PEER_ENV, "MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}",
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([mlflow_bin, "models", "serve", "-m", str(model_dir), "-h",
                             "127.0.0.1", "-p", str(port), "-w", "1", "--env-manager", "local"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, "/ping", proc, timeout=180)
    return proc


def start_mlserver(python: str, pipe, workdir: Path, port: int) -> subprocess.Popen:
    """MLServer's sklearn runtime on a joblib copy of the pipeline (a benchmark-only copy in
    the temporary directory), inference in the server process (`parallel_workers: 0`, as in
    the issue's reference), metrics on a port of their own, nothing but 127.0.0.1."""
    import joblib

    root = workdir / "mlserver"
    model_dir = root / MODEL
    model_dir.mkdir(parents=True)
    joblib.dump(pipe, model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"}}))
    (root / "settings.json").write_text(json.dumps({
        "debug": False, "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port(), "parallel_workers": 0}))
    env = {**os.environ, **PEER_ENV,
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([str(Path(python).with_name("mlserver")), "start", str(root)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, f"/v2/models/{MODEL}/ready", proc, timeout=180)
    return proc


MODEL = "bench"
SETTLE_S = 1.2  # between cells: our servers flush telemetry and the log once a second


# -- request bodies and how to read each server's predictions ------------------------------
def v2_pandas_request(records: list[dict]) -> dict:
    """An Open Inference Protocol (V2) request with MLServer's pandas codec: one input per
    column, FP64 for numbers, BYTES for strings; no `outputs`, so the answer is `predict`."""
    cols = list(records[0])
    inputs = []
    for col in cols:
        data = [r[col] for r in records]
        text = any(isinstance(v, str) for v in data)
        inputs.append({"name": col, "shape": [len(data)],
                       "datatype": "BYTES" if text else "FP64", "data": data})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def _v2_predictions(body: dict) -> list:
    out = next(o for o in body["outputs"] if o["name"] == "predict")
    return list(out["data"])


# endpoint kind -> (path, request body for records, predictions read from the answer)
ENDPOINTS = {
    "predict": (f"/v1/models/{MODEL}/predict", lambda rs: {"records": rs},
                lambda b: b["predictions"]),
    "invocations": ("/invocations", lambda rs: {"dataframe_records": rs},
                    lambda b: b["predictions"]),
    "v2": (f"/v2/models/{MODEL}/infer", v2_pandas_request, _v2_predictions),
}
# wb-onnx: the same pipeline registered again as MODEL_ONNX, exported (parity checked) and
# deployed with runtime onnx on the same server: onnxruntime beside the lean path (MODEL is
# deployed with runtime python, so it stays the lean path whatever auto would pick)
MODEL_ONNX, WB_ONNX = "bench-onnx", "wb-onnx /predict"
ENDPOINTS["onnx"] = (f"/v1/models/{MODEL_ONNX}/predict", lambda rs: {"records": rs},
                     lambda b: b["predictions"])


def deploy_onnx(pipe, schema: list[dict]) -> str | None:
    """Register, export and deploy MODEL_ONNX with runtime onnx; why not, or None. With two
    models deployed, /invocations needs the default named: MODEL (servers inherit it)."""
    os.environ.setdefault("WORKBENCH_DEFAULT_MODEL", MODEL)
    from core.deploy.deployments import deploy
    from core.onnx.export import export_onnx
    from core.registry import register_version
    from core.store import Database

    try:
        with Database().session() as session:
            register_version(pipe, session=session, name=MODEL_ONNX, task="binary",
                             target="y", input_schema=schema, classes=["no", "yes"])
            export_onnx(f"{MODEL_ONNX}:1", session=session)
            deploy(MODEL_ONNX, 1, session=session, warm=None, runtime="onnx")
    except Exception as exc:  # noqa: BLE001 - the extra `onnx` absent, a refused export
        return f"{type(exc).__name__}: {exc}"
    return None


def print_onnx(servers: dict) -> None:
    """wb-onnx (onnxruntime) over the lean path (workbench /predict), cell by cell."""
    lean, onnx = servers.get("workbench /predict", {}), servers.get(WB_ONNX, {})
    if not onnx:
        return
    print("wb-onnx (runtime onnx) vs workbench /predict (lean path), rows/s and p50:")
    for cell, o in onnx.items():
        if cell in lean:
            print(f"  {cell:11s} lean {lean[cell]['rows_per_s']:9.0f} p50 "
                  f"{lean[cell]['p50_ms']:6.2f} ms | onnx {o['rows_per_s']:9.0f} p50 "
                  f"{o['p50_ms']:6.2f} ms | onnx/lean ×{_ratio(o, lean[cell]):.2f}")


def check_answers(port: int, kind: str, records: list[dict], expected: list) -> None:
    """The server's predictions for a few rows equal the in-process pipeline's: a benchmark
    of a server that answers wrongly (e.g. strings decoded as bytes) would mean nothing."""
    import httpx

    path, payload, read = ENDPOINTS[kind]
    r = httpx.post(f"http://127.0.0.1:{port}{path}", json=payload(records), timeout=60)
    r.raise_for_status()
    got = [str(v) for v in read(r.json())]
    if got != [str(v) for v in expected]:
        raise RuntimeError(f"{kind} on port {port} answered {got}, the pipeline {expected}")


def has_v2(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def warm_up(port: int, kind: str, records: list[dict], seconds: float) -> None:
    """Every worker loads the model and sees both batch sizes before the first cell."""
    path, payload, _ = ENDPOINTS[kind]
    for rows in (1, len(records)):
        asyncio.run(_load(port, path, json.dumps(payload(records[:rows])).encode(), 8,
                          seconds, 10_000))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per cell (bounded)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="per cell (bounded)")
    ap.add_argument("--quick", action="store_true",
                    help="short cells (0.5 s, 2,000 requests): a smoke run, not a measurement")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--rows", default="1,100")
    ap.add_argument("--workers", default="1,2,4", help="our server's worker processes: the "
                    "first is the reference server (every endpoint); each other count gets "
                    "its own server, measured on /invocations, scaling printed against it")
    ap.add_argument("--mlflow-python", help="a Python with mlflow installed (a separate "
                    "venv, see bench/README.md); omitted: MLflow is skipped")
    ap.add_argument("--mlserver-python", help="a Python with mlserver and mlserver-sklearn "
                    "installed (a separate venv, see bench/README.md); omitted: skipped")
    ap.add_argument("--unbounded", action="store_true", help="also run a server without the "
                    "bound of pending predictions (load shedding off), cell by cell")
    ap.add_argument("--against", type=Path, help="another checkout of this repository (e.g. a "
                    "worktree of an older commit): its server is measured in the same run, "
                    "cell by cell, on the same home; needs the same database schema")
    ap.add_argument("--client", choices=("auto", "python", "wrk"), default="auto",
                    help="load client of every cell: wrk (C, far less CPU on the shared "
                    "cores) when installed with auto, else the Python client; the load-"
                    "shedding cells (--unbounded) always use the Python client, which "
                    "waits on Retry-After")
    ap.add_argument("--rounds", type=int, default=1, help="run every cell this many times "
                    "(servers alternating within each round); a cell's figures are its "
                    "median round by req/s")
    ap.add_argument("--bodies", type=int, default=1, help="distinct request bodies per cell "
                    "(different rows of the data), wrk sending them in turn: with one body "
                    "every request is the same, and a CPU's branch predictors learn its "
                    "rows' paths through the trees (wrk only)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    # stopped by `timeout` or kill: still run `finally`, which stops the servers it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    elif args.client == "wrk" and not shutil.which("wrk"):
        ap.error("--client wrk: wrk is not installed (Debian: apt-get install wrk)")
    if args.quick:
        args.seconds, args.max_requests = min(args.seconds, 0.5), min(args.max_requests, 2000)
    conc = [int(c) for c in args.concurrency.split(",")]
    rows_list = [int(r) for r in args.rows.split(",")]
    workers = [int(w) for w in args.workers.split(",")]

    work = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    os.environ["WORKBENCH_HOME"] = str(work / "home")
    X, pipe = deployed_model()
    onnx_skipped = deploy_onnx(pipe, schema_of(X))
    if args.bodies > 1 and (args.client != "wrk" or args.unbounded):
        sys.exit("--bodies needs --client wrk (and no --unbounded): wrk sends the bodies")
    records = json.loads(X.iloc[:max(rows_list) * args.bodies].to_json(orient="records"))
    # rows spread over the data so both classes appear in the answer check
    probe = json.loads(X.iloc[::500].to_json(orient="records"))
    expected = list(pipe.predict(X.iloc[::500]))
    from core.deploy.service import Serving
    from core.store.db import Database

    lean = Serving(Database()).cache.get(MODEL, 1)
    results: dict = {"floor_in_process": floor(pipe, X, lean, 20 if args.quick else 200),
                     "onnx_in_process": onnx_floor(X, 20 if args.quick else 200),
                     "lean_path": lean.fast is not None, "servers": {}, "workers": workers,
                     "load_average": os.getloadavg(), "wb_onnx_skipped": onnx_skipped}

    # (label, server key, endpoint kind); the servers that lack an endpoint drop it below
    servers = [("workbench /predict", "ours", "predict"),
               ("workbench /invocations", "ours", "invocations"),
               ("workbench /v2 infer", "ours", "v2")]
    if onnx_skipped is None:
        servers.append((WB_ONNX, "ours", "onnx"))
    if args.unbounded:
        servers.append(("workbench, no bound", "unbounded", "predict"))
    if args.against:
        servers += [(f"{label} @reference", "against", kind)
                    for label, which, kind in list(servers) if which == "ours"]
    # the workers cells: every count on its own server (the first is "ours"), /invocations;
    # with wrk the first count is measured again with wrk, so the ratios share one client
    scaling = [(_workers_label(w), f"workers{w}", "invocations") for w in workers[1:]]
    if args.client == "wrk":
        scaling.insert(0, (_workers_label(workers[0]), "ours", "invocations"))
    servers += scaling
    if args.against:
        servers += [(f"{label} @reference", f"against-{which}" if which != "ours"
                     else "against", kind) for label, which, kind in scaling]
    if args.mlflow_python:
        servers.append(("mlflow models serve", "mlflow", "invocations"))
    if args.mlserver_python:
        servers.append(("mlserver v2 infer", "mlserver", "v2"))
    by_wrk = {label for label, which, _ in servers
              if args.client == "wrk" and which != "unbounded"}
    results["client"], results["rounds"] = args.client, args.rounds
    results["bodies"] = args.bodies
    procs: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        port = free_port()
        procs["ours"] = (start_ours(work / "home", port, workers[0]), port)
        if args.unbounded:
            port = free_port()
            procs["unbounded"] = (start_ours(work / "home", port, workers[0],
                                             WORKBENCH_MAX_PENDING_REQUESTS="0",
                                             WORKBENCH_MAX_PENDING_ROWS="0"), port)
        if args.against:
            port = free_port()
            procs["against"] = (start_ours(work / "home", port, workers[0],
                                           root=args.against.resolve()), port)
        for w in workers[1:]:
            port = free_port()
            procs[f"workers{w}"] = (start_ours(work / "home", port, w), port)
            if args.against:
                port = free_port()
                procs[f"against-workers{w}"] = (start_ours(work / "home", port, w,
                                                           root=args.against.resolve()), port)
        if args.mlflow_python:
            port = free_port()
            procs["mlflow"] = (start_mlflow(args.mlflow_python, pipe, work, port), port)
        if args.mlserver_python:
            port = free_port()
            procs["mlserver"] = (start_mlserver(args.mlserver_python, pipe, work, port), port)
        for which, (proc, port) in procs.items():  # ours start side by side: wait for each
            if which not in ("mlflow", "mlserver"):
                wait_ready(port, "/health", proc, timeout=600)
        servers = [s for s in servers
                   if s[2] != "v2" or s[1] == "mlserver" or has_v2(procs[s[1]][1])]
        results["endpoints"] = [label for label, _, _ in servers]
        for _, which, kind in servers:
            check_answers(procs[which][1], kind, probe, expected)
        warmed = set()
        for _, which, kind in servers:
            if (which, kind) not in warmed:
                warm_up(procs[which][1], kind, records, 0.3 if args.quick else 1.0)
                warmed.add((which, kind))
        # Servers take turns cell by cell, so a slow spell of the shared machine hits all of
        # them alike rather than whichever happened to run then.
        runs: dict[tuple[str, str], list[dict]] = {}
        for _, rows, c, (label, which, kind) in itertools.product(
                range(args.rounds), rows_list, conc, servers):
            proc, port = procs[which]
            path, payload, _ = ENDPOINTS[kind]
            body = [json.dumps(payload(records[k * rows:(k + 1) * rows])).encode()
                    for k in range(args.bodies)]
            # every server of ours writes the last second's prediction log after a cell: a
            # cell starts after that (else the next cell on the same process, e.g. /v2 after
            # /invocations, pays for the one before it)
            time.sleep(SETTLE_S)
            cpu0, t0 = tree_cpu_seconds(proc.pid), time.perf_counter()
            if label in by_wrk:
                r = load_wrk(port, path, body, c, args.seconds, work)
                warm = 0
            else:
                client0 = time.process_time()
                r = load(port, path, body[0], c, args.seconds, args.max_requests)
                r["client_cpu_s"], warm = time.process_time() - client0, 50
            wall = time.perf_counter() - t0
            server_cpu = tree_cpu_seconds(proc.pid) - cpu0  # the supervisor and its workers
            r["rows_per_s"] = r["rps"] * rows
            r["server_cpu_ms_per_request"] = (1000 * server_cpu
                                              / max(1, r["requests"] + warm))  # + warm-up
            # cores busy during the cell (the Python client's warm-up included)
            r["server_cores"], r["client_cores"] = server_cpu / wall, r["client_cpu_s"] / wall
            runs.setdefault((label, f"{rows}row_c{c}"), []).append(r)
            if not args.json:
                print(f"{label:36s} rows={rows:<4d} c={c:<3d} "
                      f"req/s={r['rps']:8.1f} rows/s={r['rows_per_s']:9.0f} "
                      f"p50={r['p50_ms']:7.2f}ms p99={r['p99_ms']:7.2f}ms "
                      f"errors={r['errors']} refused={r['refused']} cores: server "
                      f"{r['server_cores']:.2f} client {r['client_cores']:.2f}"
                      f"{' (wrk)' if label in by_wrk else ''}", flush=True)
        for (label, cell), rs in runs.items():
            results["servers"].setdefault(label, {})[cell] = median_run(rs)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    results["targets"] = target_verdicts(results["servers"], workers)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    f = results["floor_in_process"]
    print(f"in-process predict_proba (1 thread): 1 row {f['1_row_ms']:.2f} ms, "
          f"100 rows {f['100_row_ms']:.2f} ms; lean path: 1 row "
          f"{f.get('1_row_lean_ms', float('nan')):.2f} ms, 100 rows "
          f"{f.get('100_row_lean_ms', float('nan')):.2f} ms")
    o = results["onnx_in_process"]
    print(f"onnxruntime (same version exported to ONNX): {o['skipped']}" if "skipped" in o
          else f"onnxruntime (same version exported to ONNX): 1 row {o['1_row_onnx_ms']:.2f} "
               f"ms, 100 rows {o['100_row_onnx_ms']:.2f} ms")
    if args.against:
        print_against(results["servers"])
    print_summary(results["servers"], workers)
    print_workers(results["servers"], workers)
    print_onnx(results["servers"])
    print_targets(results["targets"])


# Who is compared with whom: ours is our V2 endpoint against MLServer's when our server has
# one (same protocol, same payload), else /invocations; /invocations against MLflow's.
MLFLOW, MLSERVER = "mlflow models serve", "mlserver v2 infer"
OURS_VS = {MLFLOW: ("workbench /invocations",),
           MLSERVER: ("workbench /v2 infer", "workbench /invocations")}


def median_run(runs: list[dict]) -> dict:
    """A cell's median round by req/s (the lower of the middle two), with every round's."""
    pick = dict(sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2])
    pick["rounds_rps"] = [round(r["rps"], 1) for r in runs]
    return pick


def _workers_label(w: int) -> str:
    return f"workbench /invocations, {w} workers"


def ours_against(servers: dict, ref: str) -> str | None:
    return next((o for o in OURS_VS[ref] if o in servers), None)


def _ratio(o: dict, r: dict, key: str = "rows_per_s") -> float:
    return o[key] / r[key] if r.get(key) else float("inf")


# The targets, as data: (label, ours, reference, {cell: factor}, check(o, r, factor));
# a reference of None is an absolute target on ours alone.
# "ours"/"reference" name a measured endpoint; OURS_VS resolves "ours vs MLServer/MLflow".
# One row vs MLServer, "no worse than today": issue 20 measured ×22.7 (c=8) and ×27.7 (c=32)
# on a quiet machine; the floor here is 80 % of those (ratios on the shared 2-core machine
# swing by about that much between runs), and never below 1×.
NO_WORSE = 0.8
TARGETS = [
    ("1-row throughput >= 10x MLflow", "ours", MLFLOW, {"1row_c8": 10, "1row_c32": 10},
     lambda o, r, k: o["rps"] >= k * r["rps"]),
    ("1-row p99 <= MLflow p99 / 10", "ours", MLFLOW, {"1row_c8": 10, "1row_c32": 10},
     lambda o, r, k: o["p99_ms"] * k <= r["p99_ms"]),
    ("1-row p50 <= 2 ms at concurrency 1", "workbench /invocations", None, {"1row_c1": 2.0},
     lambda o, r, k: o["p50_ms"] <= k),
    ("100-row rows/s >= 5x MLflow", "ours", MLFLOW,
     {"100row_c1": 5, "100row_c8": 5, "100row_c32": 5},
     lambda o, r, k: o["rows_per_s"] >= k * r["rows_per_s"]),
    ("100-row rows/s >= 10x MLServer", "ours", MLSERVER, {"100row_c8": 10, "100row_c32": 10},
     lambda o, r, k: o["rows_per_s"] >= k * r["rows_per_s"]),
    ("1-row req/s no worse vs MLServer (0.8 x issue's x22.7/x27.7)", "ours", MLSERVER,
     {"1row_c8": max(1.0, NO_WORSE * 22.7), "1row_c32": max(1.0, NO_WORSE * 27.7)},
     lambda o, r, k: o["rps"] >= k * r["rps"]),
    ("--workers 2 >= 1.7x one worker's req/s", _workers_label(2), "workbench /invocations",
     {"1row_c32": 1.7}, lambda o, r, k: o["rps"] >= k * r["rps"]),
]


def target_verdicts(servers: dict, workers: list[int]) -> list[dict]:
    """Each target this run can judge: PASS when every one of its cells passes; the cells'
    ratios beside it. A target whose servers or cells were not run is reported as skipped."""
    out = []
    for label, ours, ref, cells, check in TARGETS:
        o_label = ours_against(servers, ref) if ours == "ours" and ref in OURS_VS else ours
        if ref == "workbench /invocations" and workers[0] != 1:
            o_label = None  # scaling is judged against exactly one worker
        if ref == "workbench /invocations" and _workers_label(1) in servers:
            ref = _workers_label(1)  # one worker measured with the same client (wrk)
        o = servers.get(o_label or "")
        r = o if ref is None else servers.get(ref)  # an absolute target: no reference
        # skipped: a server not run, or none of the target's cells run (e.g. no c=1)
        present = [c for c in cells if c in o and c in r] if o and r else []
        if not present:
            out.append({"target": label, "verdict": "skipped", "ours": o_label, "ref": ref})
            continue
        oks = {c: bool(check(o[c], r[c], cells[c])) for c in present}
        out.append({"target": label, "ours": o_label, "ref": ref,
                    "verdict": "PASS" if all(oks.values()) else "FAIL",
                    "cells": {c: {"ok": oks[c], "need": cells[c],
                                  "rps_ratio": _ratio(o[c], r[c], "rps")} for c in present}})
    return out


def print_summary(servers: dict, workers: list[int]) -> None:
    """One table: rows/s of ours, MLflow and MLServer per cell, our ratio over each, and
    each worker count's throughput over the first's (same run, same cells)."""
    ours = servers.get("workbench /invocations", {})
    v2 = servers.get("workbench /v2 infer", {})
    ml, ms = servers.get(MLFLOW, {}), servers.get(MLSERVER, {})
    o_ms = servers.get(ours_against(servers, MLSERVER) or "", {})
    head = (f"{'cell':11s} {'wb /invoc':>10s} {'wb /v2':>9s} {'mlflow':>8s} {'mlserver':>9s}"
            f" {'×mlflow':>8s} {'×mlserver':>9s}")
    head += "".join(f" {f'{w}w×{workers[0]}w':>8s}" for w in workers[1:])
    print(f"summary, rows/s (× = ours over theirs in rows/s; ×mlserver uses "
          f"{ours_against(servers, MLSERVER) or '-'}; {'/'.join(map(str, workers))} workers "
          f"on /invocations, over {workers[0]} worker):")
    print(head)

    def fig(d: dict, cell: str) -> str:
        return f"{d[cell]['rows_per_s']:.0f}" if cell in d else "-"

    def times(a: dict, b: dict, cell: str) -> str:
        return f"×{_ratio(a[cell], b[cell]):.1f}" if cell in a and cell in b else "-"

    for cell in ours:
        line = (f"{cell:11s} {fig(ours, cell):>10s} {fig(v2, cell):>9s} {fig(ml, cell):>8s} "
                f"{fig(ms, cell):>9s} {times(ours, ml, cell):>8s} {times(o_ms, ms, cell):>9s}")
        base = servers.get(_workers_label(workers[0]), ours)  # same client as the others
        for w in workers[1:]:
            wk = servers.get(_workers_label(w), {})
            line += f" {times(wk, base, cell).replace('×', ''):>8s}"
        print(line)


def print_workers(servers: dict, workers: list[int]) -> None:
    """The workers cells with what each cost: cores used by the server (supervisor and
    workers) and by the load client, per cell (a Python client on the same cores takes its
    share from the servers)."""
    rows = [(w, ref) for w in workers for ref in ("", " @reference")
            if f"{_workers_label(w)}{ref}" in servers]
    if not rows:
        return
    print("workers cells (/invocations): req/s, p99, cores used by the server and the client:")
    for w, ref in rows:
        for cell, r in servers[f"{_workers_label(w)}{ref}"].items():
            print(f"  {w} workers{ref:12s} {cell:11s} req/s {r['rps']:8.0f}  p99 "
                  f"{r['p99_ms']:7.2f} ms  server {r['server_cores']:.2f}  client "
                  f"{r['client_cores']:.2f} ({r.get('client', 'python')})"
                  + (f"  rounds {r['rounds_rps']}" if len(r["rounds_rps"]) > 1 else ""))


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


def print_targets(verdicts: list[dict]) -> None:
    print("targets (this run):")
    for v in verdicts:
        if v["verdict"] == "skipped":
            print(f"  {v['target']:62s} skipped (not measured: {v['ours'] or '-'} / {v['ref']})")
            continue
        cells = ", ".join(f"{c} ×{x['rps_ratio']:.1f}" for c, x in v["cells"].items())
        print(f"  {v['target']:62s} {v['verdict']:4s}  {v['ours']} vs {v['ref']}: {cells}")


if __name__ == "__main__":
    main()
