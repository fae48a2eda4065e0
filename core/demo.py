"""Demo mode (WORKBENCH_DEMO=true): on first start with an empty store, seed the samples, train
two quick versions, make the first production and the second a 10 % canary, and replay some
traffic, so every page of a public demo shows something real."""

from __future__ import annotations

import logging

from core.automl.runner import run_training
from core.data.datasets import ingest_path, list_datasets, load_frame
from core.deploy import deploy
from core.deploy.simulator import simulate
from core.registry import list_models, set_alias
from core.samples import sample_files, samples_dir

log = logging.getLogger("workbench.demo")
MODEL = "breast_cancer"
QUICK = {"budget": 8.0, "estimators": ["linear", "hgb"], "ensemble": False}


def seed_demo() -> bool:
    """Idempotent: does nothing when any model exists. Returns True when it seeded."""
    if list_models():
        return False
    for path in sample_files():
        ingest_path(path, actor="demo")
    source = samples_dir() / f"{MODEL}.csv"
    run_training(source, "diagnosis", name=MODEL, actor="demo", **QUICK)
    run_training(source, "diagnosis", name=MODEL, actor="demo", seed=1,
                 **{**QUICK, "estimators": ["xgboost"]})
    set_alias(MODEL, 1, "production", actor="demo", reason="demo: first release")
    deploy(MODEL, 2, 10.0, actor="demo", reason="demo: canary of version 2")
    ds = next(d for d in list_datasets() if d.name == MODEL)
    simulate(MODEL, load_frame(ds).drop(columns=["diagnosis"]), 500)
    log.info("demo seeded")
    return True
