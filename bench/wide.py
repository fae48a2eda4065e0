"""Wide tables against the budget: the widest table the pre-flight check accepts for a budget
is searched (through the job use case, as `workbench automl` runs it) and its wall time
printed against budget + 10 %; a wider one is refused before anything starts.

    .venv/bin/python bench/wide.py [--rows 300] [--budget 15] [--too-wide 5000]

The width limit (core/automl/preflight.py, COLUMNS_PER_BUDGET_SECOND) was set from this
script's figures on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def table(rows: int, cols: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, cols)).round(4),
                         columns=[f"c{i}" for i in range(cols)])
    frame["target"] = np.where(frame["c0"] + rng.normal(size=rows) > 0, "yes", "no")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--budget", type=float, default=15.0)
    parser.add_argument("--too-wide", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-wide-"))

    from core.automl.preflight import max_columns
    from core.automl.request import TrainingRequest
    from core.errors import InvalidDataError
    from core.store import Database
    from core.usecases.training import run_training

    db = Database()

    home = Path(os.environ["WORKBENCH_HOME"])
    too_wide = home / "too_wide.parquet"
    table(args.rows, args.too_wide).to_parquet(too_wide)
    started = time.monotonic()
    try:
        run_training(db, TrainingRequest.create(dataset=too_wide, target="target",
                                                budget=args.budget))
        print(f"{args.too_wide} columns: NOT refused")
    except InvalidDataError as exc:
        print(f"{args.too_wide} columns, budget {args.budget:g} s: refused in "
              f"{time.monotonic() - started:.1f} s: {exc.message}")

    width = max_columns(args.budget)
    path = home / "widest.parquet"
    table(args.rows, width).to_parquet(path)
    started = time.monotonic()
    outcome = run_training(db, TrainingRequest.create(dataset=path, target="target",
                                                      budget=args.budget))
    wall = time.monotonic() - started
    search_s = outcome.result.elapsed_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{width} columns x {args.rows} rows, budget {args.budget:g} s: search+refit "
          f"{search_s:.1f} s, whole run (read, checks, register) {wall:.1f} s, limit "
          f"{args.budget * 1.1:.1f} s -> {'KEPT' if search_s <= args.budget * 1.1 else 'OVER'}; "
          f"{len(outcome.result.trials)} trials; peak memory {peak_mb:.0f} MB")
    for note in outcome.result.notes:
        print("  note:", note)


if __name__ == "__main__":
    main()
