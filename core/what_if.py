"""The single-row 'what-if' form of a version, described without any UI: one field per column
a caller sends, with a sensible starting value taken from the version's training data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from core.enums import ColumnKind
from core.features.inputs import sent_columns
from core.features.kinds import DROPPED_KINDS, scored_as_number
from core.monitor.reference import OTHER
from core.store import ModelVersion

TRUE_WORDS = {"true", "1", "1.0"}


class FieldKind(StrEnum):
    """The input a form shows for a field."""

    NUMBER = "number"  # a number box
    CHOICE = "choice"  # one of `options`
    TEXT = "text"      # free text (empty: a missing value)


@dataclass(frozen=True)
class WhatIfField:
    name: str
    kind: FieldKind
    default: Any
    options: tuple[Any, ...] = ()
    used: bool = True  # False for id and free-text columns: the model drops them


def what_if_fields(mv: ModelVersion) -> list[WhatIfField]:
    """Numbers start at the training median (from the reference profile's sample, else 0);
    categories offer the values seen in training, most frequent first (else free text);
    dates start empty (the model then uses its training median)."""
    features = ((mv.evaluation or {}).get("reference") or {}).get("features", {})
    kinds = {c["name"]: c for c in mv.input_schema or []}
    return [_field(name, kinds.get(name, {}), features.get(name) or {})
            for name in sent_columns(mv)]


def _field(name: str, col: dict[str, Any], profile: dict[str, Any]) -> WhatIfField:
    kind = ColumnKind.of(col.get("kind"))
    if kind in DROPPED_KINDS:
        return WhatIfField(name, FieldKind.TEXT, "", used=False)
    sample = np.asarray(profile.get("sample") or [], dtype=float)
    # 10 significant digits: a median of two stored floats reads 1.865, not 1.8650000000000002
    median = float(f"{np.median(sample):.10g}") if sample.size else None
    if kind is ColumnKind.NUMERIC:
        return WhatIfField(name, FieldKind.NUMBER, median if median is not None else 0.0)
    if kind is ColumnKind.DATETIME:
        # Empty: the pipeline imputes its training median. The profile's sample is no date to
        # show: its epoch scale follows the resolution pandas parsed the column at.
        return WhatIfField(name, FieldKind.TEXT, "")
    seen = [k for k in (profile.get("frequencies") or {}) if k != OTHER]
    if kind is ColumnKind.BOOLEAN and scored_as_number(col):
        # scored as a number: the profile's "True"/"1" become 1.0, so the model reads them
        return WhatIfField(name, FieldKind.CHOICE, 1.0 if seen and seen[0].lower() in TRUE_WORDS
                           else 0.0, options=(0.0, 1.0))
    if seen:
        return WhatIfField(name, FieldKind.CHOICE, seen[0], options=tuple(seen))
    return WhatIfField(name, FieldKind.TEXT, "")


__all__ = ["FieldKind", "WhatIfField", "what_if_fields"]
