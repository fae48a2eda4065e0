"""Offline drift: compare any batch with a registered version's training data."""

from __future__ import annotations

import pandas as pd
from sqlmodel import Session

from core.errors import WorkbenchError
from core.features.inputs import with_indicators
from core.monitor.drift import compare, summary
from core.monitor.public import DriftReport, FeatureDriftPublic
from core.registry import resolve


def drift_report(ref: str, batch: pd.DataFrame, *, session: Session) -> DriftReport:
    name, mv = resolve(ref, session=session)
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
    return DriftReport(model=name, version=mv.version, rows=len(batch),
                       missing_columns=missing, **summary(results),
                       results=[FeatureDriftPublic.model_validate(r) for r in results])
