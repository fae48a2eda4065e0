"""Trees scored by leaf bitmasks against the node-by-node walk, on the serving benchmark's
pipeline (core/deploy/leafmasks.py, docs/serving/session15.md).

Two figures, each with both variants alternating in one process (so machine drift falls on
both alike; live A/Bs on a 2-core VM move ±15 % for unchanged code):
1. the kernel alone: `Forest.add` at 1, 8, 100 and 800 rows (min of the rounds);
2. the whole request: CPU per 100-row `/v2` request through the real app's ASGI entry
   (8 concurrent, no network, telemetry flushed in the same process), the loaded model's
   forest switched between masks and walk each round (median and pairwise ratios).

    .venv/bin/python bench/tree_scoring.py [--rounds 8] [--requests 600] [--rows 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import serving as bench  # noqa: E402  (the serving benchmark's data, pipeline and bodies)


def use_masks(forest, on: bool, masks) -> None:  # type: ignore[no-untyped-def]
    forest.masks = masks if on else None
    forest._chosen = None  # chosen again at the next call


def kernel(pipe, X, rounds: int) -> None:  # type: ignore[no-untyped-def]
    from core.deploy import treewalk

    Z = np.ascontiguousarray(pipe[0].transform(X), dtype=np.float64)
    forest = treewalk.from_hist_gradient_boosting(pipe[-1])
    masks = forest.masks
    if masks is None:
        sys.exit("the benchmark's trees have more than 32 leaves: no masks to compare")
    print("kernel alone (Forest.add, min of rounds):")
    for n in (1, 8, 100, 800):
        reps = max(30, 30_000 // n)
        best = {True: float("inf"), False: float("inf")}
        for _ in range(rounds):
            for on in (True, False):
                use_masks(forest, on, masks)
                t0 = time.perf_counter()
                for i in range(reps):
                    forest.add(Z[(i * n) % (len(Z) - n):][:n], np.zeros((n, 1)))
                best[on] = min(best[on], (time.perf_counter() - t0) / reps * 1e6)
        print(f"  {n:4d} rows: walk {best[False]:8.1f} µs  masks {best[True]:8.1f} µs  "
              f"walk/masks ×{best[False] / best[True]:.2f}")


async def _post(app, path: bytes, body: bytes) -> None:  # type: ignore[no-untyped-def]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path.decode(), "raw_path": path,
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    given = False
    status: list[int] = []

    async def receive() -> dict:
        nonlocal given
        if given:
            await asyncio.Event().wait()  # no disconnect while the answer is written
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"the app answered {status}")


async def whole_request(pipe, X, schema, args) -> None:  # type: ignore[no-untyped-def]
    import orjson
    from threadpoolctl import threadpool_limits

    from app.api.main import create_app
    from core.deploy.deployments import deploy
    from core.registry import register_version
    from core.store import Database

    threadpool_limits(limits=1)  # as `workbench serve`
    with Database().session() as s:
        register_version(pipe, session=s, name=bench.MODEL, task="binary", target="y",
                         input_schema=schema, classes=["no", "yes"])
        deploy(bench.MODEL, 1, session=s, runtime="python")
    app = create_app(background=False)
    serving = app.state.serving
    path = f"/v2/models/{bench.MODEL}/infer".encode()
    rows = args.rows
    bodies = [orjson.dumps(bench.v2_pandas_request(
        json.loads(X.iloc[k:k + rows].to_json(orient="records"))))
        for k in range(0, len(X) - rows, max(1, (len(X) - rows) // 100))]

    async def load(n: int, conc: int = 8) -> None:
        async def client(w: int) -> None:
            for i in range(w, n, conc):
                await _post(app, path, bodies[i % len(bodies)])
        await asyncio.gather(*(client(w) for w in range(conc)))

    await load(200)  # loads the model (its lean path and forest) and warms the caches
    forest = serving.cache.get(bench.MODEL, 1).fast.scorer.native
    masks = forest.masks
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for r in range(args.rounds):
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            use_masks(forest, on, masks)
            t0 = time.process_time()
            await load(args.requests)
            serving.telemetry.flush()
            cpu[on].append((time.process_time() - t0) / args.requests * 1e6)
    m, w = statistics.median(cpu[True]), statistics.median(cpu[False])
    print(f"whole {rows}-row /v2 request in process (c=8, {args.rounds} rounds of "
          f"{args.requests}): CPU per request masks {m:.0f} µs, walk {w:.0f} µs, "
          f"walk/masks ×{w / m:.2f}")
    print("  pairwise walk/masks: " + " ".join(f"{b / a:.2f}"
                                               for a, b in zip(cpu[True], cpu[False], strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--requests", type=int, default=600, help="per round and variant")
    ap.add_argument("--rows", type=int, default=100, help="rows per /v2 request")
    args = ap.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-trees-")
    X, y = bench.make_data()
    pipe = bench.make_pipeline().fit(X, y)
    schema = [{"name": c, "kind": "numeric" if c.startswith("num") else "categorical",
               "dtype": "float64" if c.startswith("num") else "object"} for c in X.columns]
    kernel(pipe, X, min(args.rounds, 5))
    asyncio.run(whole_request(pipe, X, schema, args))


if __name__ == "__main__":
    main()
