"""Does the prediction log keep up with sustained traffic? The real `workbench serve` (one
worker, SQLite store) under wrk for --seconds; every second the prediction log's rows in
the store are counted. Per run it prints the requests served, the share of them already in
the log when the load ends, the seconds after it until every one is logged or counted as
dropped (`workbench_telemetry_dropped_total`: the buffer's bound let the oldest go), that
share dropped, and the server's resident memory growth over the run and per 100,000
requests (a log that falls behind, unbounded, grows without end).

    .venv/bin/python bench/log_lag.py [--seconds 20] [--rows 1] [--concurrency 32] \
        [--rounds 2] [--against /tmp/ref]

--against runs another checkout of this repository the same way, rounds alternating (same
store, same body), so machine drift falls on both alike."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import serving as bench  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")) / 1024


def dropped(port: int) -> int:
    """Log entries the server's buffer let go (0 for a checkout without the counter)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(int(float(m)) for m in
               re.findall(r"^workbench_telemetry_dropped_total(?:\{[^}]*\})? (\S+)$", text, re.M))


def one_run(root: Path, home: Path, body: bytes, concurrency: int, seconds: int,
            work: Path) -> dict:
    port = bench.free_port()
    proc = bench.start_ours(home, port, 1, root=root)
    store = sqlite3.connect(home / "workbench.db", timeout=60)

    def logged() -> int:
        return store.execute("SELECT count(*) FROM predictionlog").fetchone()[0]

    try:
        bench.wait_ready(port, "/health", proc)
        bench.load_wrk(port, "/invocations", body, concurrency, 2, work)  # warm up
        time.sleep(2)  # the warm-up's requests are flushed
        start_rows, start_rss, start_dropped = logged(), rss_mb(proc.pid), dropped(port)
        result: dict = {}
        load = threading.Thread(target=lambda: result.update(
            bench.load_wrk(port, "/invocations", body, concurrency, seconds, work)))
        load.start()
        load.join()
        end = time.monotonic()
        served = result["requests"]
        at_end = logged() - start_rows
        growth = rss_mb(proc.pid) - start_rss
        while (logged() - start_rows + dropped(port) - start_dropped < served
               and time.monotonic() - end < 300):
            time.sleep(0.2)
        catch_up = time.monotonic() - end
        return {"rps": result["rps"], "served": served, "logged_at_end": at_end / served,
                "catch_up_s": catch_up, "dropped": (dropped(port) - start_dropped) / served,
                "rss_mb": growth, "rss_mb_per_100k": growth / served * 1e5}
    finally:
        store.close()
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--against", type=Path, help="another checkout of this repository")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wb-log-lag-"))
    home = work / "home"
    os.environ["WORKBENCH_HOME"] = str(home)
    X, _ = bench.deployed_model()
    records = json.loads(X.iloc[:args.rows].to_json(orient="records"))
    body = json.dumps({"dataframe_records": records}).encode()
    roots = {"this checkout": ROOT}
    if args.against:
        roots[str(args.against)] = args.against.resolve()
    runs: dict[str, list[dict]] = {label: [] for label in roots}
    for r in range(args.rounds):
        for label in (list(roots) if r % 2 == 0 else list(roots)[::-1]):
            run = one_run(roots[label], home, body, args.concurrency, args.seconds, work)
            runs[label].append(run)
            print(f"round {r + 1} {label}: {run['rps']:.0f} req/s, {run['served']} requests, "
                  f"{run['logged_at_end']:.0%} logged when the load ended, all "
                  f"{run['catch_up_s']:.1f} s later, {run['dropped']:.1%} dropped, RSS "
                  f"+{run['rss_mb']:.0f} MB (+{run['rss_mb_per_100k']:.0f} MB per 100k "
                  "requests)", flush=True)
    print(f"{args.rows}-row /invocations, c={args.concurrency}, {args.seconds} s per run, "
          f"medians of {args.rounds}:")
    for label, rs in runs.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        print(f"  {label}: {med['rps']:.0f} req/s, {med['logged_at_end']:.0%} logged at the "
              f"end, caught up {med['catch_up_s']:.1f} s after, {med['dropped']:.1%} dropped, RSS +"
              f"{med['rss_mb']:.0f} MB (+{med['rss_mb_per_100k']:.0f} MB per 100k requests)")


if __name__ == "__main__":
    main()
