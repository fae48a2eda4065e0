"""How long a drift check takes: 50 features × 100,000 rows against a reference profile.

Reference measured in the same run: pandas' DataFrame.describe() on the same batch (one pass
of summary statistics), so the figure reads as "drift costs N describes".

    .venv/bin/python bench/drift.py [--rows 100000] [--features 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from core.monitor.drift import compare
from core.monitor.reference import build_reference


def frame(rows: int, features: int, rng: np.random.Generator) -> pd.DataFrame:
    cols = {}
    for i in range(features):
        if i % 5 == 4:
            cols[f"c{i}"] = rng.choice(list("ABCDEFGHIJ"), rows)
        else:
            cols[f"x{i}"] = rng.normal(i, 1.0, rows)
    return pd.DataFrame(cols)


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    train, batch = frame(args.rows, args.features, rng), frame(args.rows, args.features, rng)
    schema = [{"name": c, "kind": "numeric" if c.startswith("x") else "categorical"}
              for c in train.columns]
    t_ref = best_of(lambda: build_reference(train, schema, pd.Series(np.zeros(args.rows)),
                                            "regression"), args.repeat)
    reference = build_reference(train, schema, pd.Series(np.zeros(args.rows)), "regression")
    t_drift = best_of(lambda: compare(reference, batch), args.repeat)
    t_describe = best_of(lambda: batch.describe(include="all"), args.repeat)
    print(f"{args.features} features x {args.rows:,} rows (best of {args.repeat})")
    print(f"  reference profile : {t_ref:8.3f} s")
    print(f"  drift check       : {t_drift:8.3f} s")
    print(f"  describe() (ref.) : {t_describe:8.3f} s")
    print(f"drift check / describe = {t_drift / t_describe:.2f}")


if __name__ == "__main__":
    main()
