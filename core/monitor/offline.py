"""Offline drift: compare any batch with a registered version's training data."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.errors import WorkbenchError
from core.features.inputs import with_indicators
from core.monitor.drift import compare, summary
from core.registry import resolve
from core.store import session_scope


def drift_report(ref: str, batch: pd.DataFrame) -> dict[str, Any]:
    with session_scope() as s:
        name, mv = resolve(ref, session=s)
    reference = mv.evaluation.get("reference")
    if not reference:
        raise WorkbenchError(f"{name}:{mv.version} has no reference profile (it was registered "
                             "before drift monitoring existed or imported). Retrain it to get "
                             "one.")
    batch = with_indicators(mv, batch, warmed_up=True)  # a market model's indicators too
    missing = [c for c in reference["features"] if c not in batch.columns]
    if len(missing) == len(reference["features"]):
        raise WorkbenchError(f"The batch has none of the columns {name}:{mv.version} was "
                             f"trained on ({', '.join(list(missing)[:5])}, …): pick a batch "
                             "of the same kind of rows.")
    results = compare(reference, batch)
    return {"model": name, "version": mv.version, "rows": len(batch),
            "missing_columns": missing, **summary(results),
            "results": [r.to_dict() for r in results]}


def raise_drift_alerts(report: dict[str, Any]) -> list[Any]:
    """Feed a drift report into the alert lifecycle: one DRIFT key per feature."""
    from core.monitor.alerts import Observation, observe

    opened = []
    for r in report["results"]:
        obs = Observation(report["model"], report["version"], "DRIFT", bool(r["drifted"]),
                          f"{r['feature']} drifted ({r['test']}, effect {r['effect_size']})",
                          r["effect_size"], r["threshold"], feature=r["feature"])
        if (a := observe(obs)) is not None:
            opened.append(a)
    return opened
