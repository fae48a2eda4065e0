"""Demo mode (WORKBENCH_DEMO=true): on first start with an empty store, seed the samples, train
two quick versions, make the first production and the second a 10 % canary, and replay some
traffic, so every page of a public demo shows something real."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.automl.request import TrainingRequest
from core.data.datasets import ingest_path, list_datasets, load_frame
from core.deploy import deploy
from core.deploy.simulator import simulate
from core.registry import PRODUCTION, list_models
from core.samples import sample_files, samples_dir
from core.store import Database
from core.usecases.aliases import set_alias
from core.usecases.training import run_training

log = logging.getLogger("workbench.demo")
MODEL = "breast_cancer"
QUICK = {"budget": 8.0, "estimators": ["linear", "hgb"], "ensemble": False}
SIMULATED = 500


def is_seeded(*, db: Database) -> bool:
    """True once any model exists: seeding would do nothing (a cheap check per page run)."""
    with db.session() as s:
        return bool(list_models(session=s))


def seed_demo(*, db: Database, progress: Callable[[str], None] | None = None) -> bool:
    """Idempotent: does nothing when any model exists. Returns True when it seeded.

    Long-running (two searches of QUICK["budget"] seconds each), so each step is its own
    unit of work on `db`, and `progress` hears what each step is about to do, in plain
    words, so a first visitor watches steps instead of a bare spinner."""
    say = progress or (lambda _text: None)
    with db.session() as s:
        if list_models(session=s):
            return False
        say(f"Storing the {len(sample_files())} sample tables")
        for path in sample_files():
            ingest_path(path, session=s, actor="demo")
    source = samples_dir() / f"{MODEL}.csv"
    say(f"Training version 1 of {MODEL}: searching a linear model and gradient boosting for "
        f"{QUICK['budget']:.0f} s")
    run_training(db, TrainingRequest.create(dataset=source, target="diagnosis", name=MODEL,
                                            **QUICK), actor="demo")
    say(f"Training version 2 of {MODEL}: searching XGBoost for {QUICK['budget']:.0f} s")
    run_training(db, TrainingRequest.create(dataset=source, target="diagnosis", name=MODEL,
                                            seed=1, **{**QUICK, "estimators": ["xgboost"]}),
                 actor="demo")
    say("Making version 1 production and version 2 a 10 % canary")
    with db.session() as s:
        set_alias(MODEL, 1, PRODUCTION, session=s, actor="demo", reason="demo: first release")
    with db.session() as s:
        deploy(MODEL, 2, 10.0, session=s, actor="demo", reason="demo: canary of version 2")
    with db.session() as s:
        ds = next(d for d in list_datasets(session=s) if d.name == MODEL)
    say(f"Replaying {SIMULATED} requests through the router, so Monitor and Deployments "
        "have traffic")
    simulate(MODEL, load_frame(ds).drop(columns=["diagnosis"]), SIMULATED, db=db)
    log.info("demo seeded")
    return True
