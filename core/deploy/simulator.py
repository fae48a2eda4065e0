"""Traffic simulator: replay a table through the real serving path (router, cache, batcher,
telemetry) in-process, so a demo shows canary behaviour without an HTTP load tool."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pandas as pd
from pydantic import BaseModel

from core.deploy.service import Serving
from core.errors import SchemaMismatchError, WorkbenchError
from core.features.inputs import sent_columns
from core.features.schema import column_differences, named, unexpected_note
from core.registry import resolve
from core.store.db import Database

MAX_REQUESTS = 20_000
CONCURRENCY = 32


def _check_columns(name: str, frame: pd.DataFrame, db: Database) -> None:
    """Refuse a table that lacks the model's columns before sending anything: every request
    would fail, and the charts would show nothing but errors."""
    with db.session() as s:
        _, mv = resolve(name, session=s)
    needed = sent_columns(mv)
    missing, _ = column_differences(needed, frame.columns)
    if missing:
        _, unexpected = column_differences([c["name"] for c in mv.input_schema or []],
                                           frame.columns)
        source = (f" such as the model's own training data (dataset {mv.dataset_id})"
                  if mv.dataset_id else "")
        raise SchemaMismatchError(
            f"This table lacks {len(missing)} of the {len(needed)} columns "
            f"{name}:{mv.version} needs ({named(missing)}), so every request would fail. "
            f"Replay a table with the model's columns{source}." + unexpected_note(unexpected))


class Simulation(BaseModel):
    """What a replay sent and where it landed (the Deployments page charts it)."""

    model: str
    requests: int
    errors: int
    users: int
    by_version: dict[str, int]
    candidate: int | None
    percent: float
    candidate_share: float


def simulate(name: str, frame: pd.DataFrame, requests: int = 1000, *, db: Database,
             sticky: bool = True) -> Simulation:
    """Send `requests` one-row requests (cycling through `frame`); with `sticky`, row i uses
    request key "user-i" so one simulated user always lands on one version. It runs a
    serving runtime of its own on `db`, as a server process would."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise WorkbenchError(f"requests must be between 1 and {MAX_REQUESTS}, got {requests}.")
    if frame.empty:
        raise WorkbenchError("The table to replay has no rows.")
    _check_columns(name, frame, db)
    rows = frame.to_dict("records")
    serving = Serving(db)
    by_version: Counter[int] = Counter()
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        key = f"user-{i % len(rows)}" if sticky else None
        try:
            answer = await serving.predict(name, [rows[i % len(rows)]], key)
            by_version[answer.version] += 1
        except WorkbenchError:
            errors += 1

    async def run() -> None:  # CONCURRENCY callers at a time, as a small live service sees
        for start in range(0, requests, CONCURRENCY):
            await asyncio.gather(*(one(i) for i in range(start, min(start + CONCURRENCY,
                                                                   requests))))

    failure: list[BaseException] = []

    def in_own_loop() -> None:  # callers may already run an event loop (servers, notebooks)
        try:
            asyncio.run(run())
        except BaseException as exc:
            failure.append(exc)

    try:
        state = serving.state(name, fresh=True)
        for version in (state.stable, state.candidate):  # loaded before traffic, as a server
            if version is not None:                      # does before a version takes it
                try:
                    serving.warm(name, version)
                except Exception:  # a version that fails to load simply gets no traffic
                    pass
        worker = threading.Thread(target=in_own_loop, name="simulator")
        worker.start()
        worker.join()
        if failure:
            raise failure[0]
    finally:
        serving.stop()  # flushes the telemetry it recorded
    state = serving.state(name, fresh=True)
    total = sum(by_version.values())
    return Simulation(model=name, requests=requests, errors=errors,
                      users=min(len(rows), requests) if sticky else requests,
                      by_version={str(v): n for v, n in sorted(by_version.items())},
                      candidate=state.candidate, percent=state.percent,
                      candidate_share=(by_version.get(state.candidate, 0) / total
                                       if total and state.candidate else 0.0))
