"""Live A/B of server configurations: the real `workbench serve` (one worker) on the serving
benchmark's model, loaded by wrk with one request body, configurations alternating round by
round (so machine drift falls on all alike). A configuration is environment variables for
the server, and optionally `ROOT`: another checkout whose code it runs.

    .venv/bin/python bench/server_ab.py '{"now": {}, "before": {"ROOT": "/tmp/ref"}}' \
        [--rounds 4] [--rows 100] [--concurrency 8,32] [--seconds 6]

Prints each round's req/s and the medians as ratios to the first configuration. Run an A/A
(the same code twice) beside it: on a 2-core VM the harness itself reads ±6 %."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import serving as bench  # noqa: E402


def wait_live(port: int, proc) -> None:  # type: ignore[no-untyped-def]
    for _ in range(240):
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    sys.exit("the server did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", help='JSON: {"label": {"ENV": "value", "ROOT": "..."}, ...}')
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--concurrency", default="8,32")
    ap.add_argument("--seconds", type=float, default=6)
    args = ap.parse_args()
    configs: dict[str, dict[str, str]] = json.loads(args.configs)
    conc = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="wb-server-ab-"))
    os.environ["WORKBENCH_HOME"] = str(work / "home")
    X, _ = bench.deployed_model()
    path = f"/v2/models/{bench.MODEL}/infer"
    records = json.loads(X.iloc[:args.rows].to_json(orient="records"))
    body = json.dumps(bench.v2_pandas_request(records)).encode()
    rps: dict[tuple[str, int], list[float]] = {(label, c): [] for label in configs for c in conc}
    for r in range(args.rounds):
        for label in (list(configs) if r % 2 == 0 else list(configs)[::-1]):
            env = dict(configs[label])
            root = Path(env.pop("ROOT", ROOT))
            port = bench.free_port()
            proc = bench.start_ours(work / "home", port, 1, root=root, **env)
            try:
                wait_live(port, proc)
                bench.load_wrk(port, path, body, 8, 2, work)  # warm up
                for c in conc:
                    rps[(label, c)].append(bench.load_wrk(port, path, body, c, args.seconds,
                                                          work)["rps"])
            finally:
                proc.terminate()
                proc.wait()
        print(f"round {r + 1}: " + "  ".join(f"{label} c={c} {rps[(label, c)][-1]:.0f}"
                                             for label in configs for c in conc), flush=True)
    first = next(iter(configs))
    for c in conc:
        med = {label: statistics.median(rps[(label, c)]) for label in configs}
        print(f"c={c}: " + "  ".join(f"{label} {m:.0f} req/s (×{m / med[first]:.3f})"
                                     for label, m in med.items()))


if __name__ == "__main__":
    main()
