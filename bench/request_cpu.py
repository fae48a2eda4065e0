"""Time per 100-row `/v2` request through the real app's ASGI entry, one request at a time
(no network, no flush thread), and the telemetry flush's time per request apart: the
minimum over many short rounds, which a busy machine moves far less than a mean.

    .venv/bin/python bench/request_cpu.py [--rounds 60] [--rows 100]

What it separates: "request" is work on the event loop's thread (parse, codec, lean path,
trees, response, bookkeeping); "flush" is the flush thread's. A loaded worker is bound by
the loop's thread (docs/serving/session16.md), so read the two figures apart: a change that
moves work from the flush into the request can lower their sum and still serve less.
To compare two checkouts, run this file from each (`PYTHONPATH=<checkout>`) in turn."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or
            Path(__file__).resolve().parents[1])
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as bench  # noqa: E402
from tree_scoring import _post  # noqa: E402  (one request through the ASGI entry)

sys.path.insert(0, str(ROOT))  # after them: they put this file's checkout first
if "core" in sys.modules:
    sys.exit("the server's code was imported before PYTHONPATH could choose it")


async def measure(rounds: int, rows: int) -> tuple[float, float]:
    import orjson
    from threadpoolctl import threadpool_limits

    from app.api.main import create_app

    threadpool_limits(limits=1)  # as `workbench serve`
    X, _ = bench.deployed_model()
    app = create_app(background=False)
    serving = app.state.serving
    path = f"/v2/models/{bench.MODEL}/infer".encode()
    bodies = [orjson.dumps(bench.v2_pandas_request(
        json.loads(X.iloc[k:k + rows].to_json(orient="records"))))
        for k in range(0, len(X) - rows, max(1, (len(X) - rows) // 100))]
    for body in bodies[:50]:  # loads the model, warms the caches
        await _post(app, path, body)
    serving.flush()
    gc.collect()  # as a server process does (app/api/main.py, tune_gc)
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    best_request = best_flush = float("inf")
    n = 100
    for r in range(rounds):
        t0 = time.perf_counter()
        for i in range(n):
            await _post(app, path, bodies[(r * n + i) % len(bodies)])
        t1 = time.perf_counter()
        serving.flush()
        t2 = time.perf_counter()
        best_request = min(best_request, (t1 - t0) / n * 1e6)
        best_flush = min(best_flush, (t2 - t1) / n * 1e6)
    return best_request, best_flush


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--rows", type=int, default=100)
    args = ap.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-request-cpu-")
    request, flush = asyncio.run(measure(args.rounds, args.rows))
    import core

    print(f"{Path(core.__file__).parents[1]}: {args.rows}-row /v2 request {request:.0f} µs, "
          f"flush {flush:.0f} µs per request, sum {request + flush:.0f} µs "
          f"(min of {args.rounds} rounds of 100)")


if __name__ == "__main__":
    main()
