"""Scale check for the AutoML issue: a 100,000 × 40 table searched within its budget under
3 GB peak memory, and 1,000,000 rows predicted with the winner in seconds.

    .venv/bin/python bench/scale.py [--rows 100000] [--cols 40] [--budget 60]

Prints wall time against the budget, peak memory (VmHWM of this process) against 3 GB, and the
1M-row predict time against a reference measured in the same run: building that 1M-row
DataFrame from NumPy arrays.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cols", type=int, default=40)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--predict-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp())
    from core.automl.search import search
    from core.features.schema import align_to_schema

    rng = np.random.default_rng(0)
    frame = table(args.rows, args.cols, rng)
    t0 = time.monotonic()
    result = search(frame, "target", budget=args.budget, seed=0)
    wall = time.monotonic() - t0
    search_peak = peak_mb()
    ok = sum(t.status == "ok" for t in result.trials)
    print(f"search {args.rows:,} x {args.cols}: {wall:.1f} s for a {args.budget:.0f} s budget "
          f"(ratio {wall / args.budget:.2f}; promise <= 1.10), {len(result.trials)} trials "
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


if __name__ == "__main__":
    main()
