"""Offline drift: compare any batch with a registered version's training data."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.errors import WorkbenchError
from core.monitor.drift import compare, summary
from core.registry import resolve


def drift_report(ref: str, batch: pd.DataFrame) -> dict[str, Any]:
    name, mv = resolve(ref)
    reference = mv.evaluation.get("reference")
    if not reference:
        raise WorkbenchError(f"{name}:{mv.version} has no reference profile (it was registered "
                             "before drift monitoring existed or imported). Retrain it to get "
                             "one.")
    missing = [c for c in reference["features"] if c not in batch.columns]
    results = compare(reference, batch)
    return {"model": name, "version": mv.version, "rows": len(batch),
            "missing_columns": missing, **summary(results),
            "results": [r.to_dict() for r in results]}
