"""Overrun of a search run in a worker thread (the app's thread worker, a Dask worker thread)
with one deliberately long pure-Python fit, before vs after the in-fit watchdog (issue 17).

    nice python bench/memdeadline.py --before /path/to/a/worktree/of/main --budget 10

Each cell is a fresh process (PYTHONPATH = that tree), cells alternate before/after; printed:
the search's wall time / budget per cell, with the load average."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, threading, time
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from core.automl import catalog
from core.automl.catalog import EstimatorSpec
from core.automl.search import run_search
from core.automl.train import prepare
from tests.factories import CANCER

LONG_S = float(sys.argv[2])

class Loopy(ClassifierMixin, BaseEstimator):
    "A pure-Python loop of LONG_S seconds, then a logistic regression."
    def fit(self, X, y):
        end = time.monotonic() + LONG_S
        while time.monotonic() < end:
            pass
        self.m_ = LogisticRegression(max_iter=300).fit(X, y)
        self.classes_ = self.m_.classes_
        return self
    def predict_proba(self, X):
        return self.m_.predict_proba(X)

catalog.CATALOG["loopy"] = EstimatorSpec("loopy", "loopy", catalog.CLASSIFICATION, "linear", 1,
                                         classifier=Loopy, regressor=None, defaults=[{}])
data = prepare(pd.read_csv(CANCER), "diagnosis", seed=0)
budget = float(sys.argv[1])
out = {}
def run():
    t0 = time.monotonic()
    r = run_search(data, budget=budget, estimators=["linear", "loopy"], ensemble=False)
    out.update(wall=time.monotonic() - t0, trials=[(t.estimator, t.status, t.reason[:60])
                                                 for t in r.trials])
th = threading.Thread(target=run); th.start(); th.join()
print(json.dumps(out))
"""


def cell(tree: Path, budget: float, long_s: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(budget), str(long_s)], env=env,
                          cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--before", type=Path, required=True, help="a worktree of main")
    p.add_argument("--budget", type=float, default=10.0)
    p.add_argument("--long", type=float, default=60.0, help="the long fit's seconds")
    p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    for i in range(a.repeat):
        for name, tree in (("before", a.before), ("after", ROOT))[:: 1 if i % 2 == 0 else -1]:
            r = cell(tree, a.budget, a.long)
            load = os.getloadavg()[0]
            print(f"{name:6s} budget {a.budget:.0f} s: wall {r['wall']:.1f} s = "
                  f"{r['wall'] / a.budget:.2f}x budget (load {load:.1f}); trials {r['trials']}",
                  flush=True)


if __name__ == "__main__":
    main()
