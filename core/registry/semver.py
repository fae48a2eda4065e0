"""Semantic version labels (`MAJOR.MINOR.PATCH`), derived at registration and never typed.

The rule compares a new version with the model's latest one: a changed input schema (the
columns or their kinds) bumps MAJOR, the same schema with other data (dataset fingerprint) or
other search settings (the training job's settings) bumps MINOR, and a retrain on the same data
and settings bumps PATCH; a model's first version is 1.0.0. Pure functions of plain values, so
registration and the migration that labelled versions registered before (0010_stages) apply
the very same code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIRST = "1.0.0"
SEMVER_RE = re.compile(r"^v?(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")


@dataclass(frozen=True)
class Basis:
    """What the rule compares: the input schema, the data and the search settings."""

    schema: tuple[tuple[str, str], ...]
    data: str | None
    settings: str | None


def basis(input_schema: Sequence[Mapping[str, Any]] | None, dataset_fingerprint: str | None,
          settings: Mapping[str, Any] | None) -> Basis:
    """The comparable basis of a version. The schema is its set of (column, kind) pairs: the
    order of columns does not matter to a request (records are keyed by name), and the kind
    (numeric, categorical, …) is the type a caller must send — not the pandas dtype, which
    flips between int64 and float64 when a retrain's data gains a missing value. Settings are
    the job's stored settings as canonical JSON (None: not trained by a job, e.g. imported)."""
    schema = tuple(sorted((str(c.get("name", "")), str(c.get("kind", "")))
                          for c in input_schema or []))
    doc = json.dumps(dict(settings), sort_keys=True, default=str) if settings is not None \
        else None
    return Basis(schema=schema, data=dataset_fingerprint, settings=doc)


def parse(label: str) -> tuple[int, int, int]:
    """`1.2.0` or `v1.2.0` as numbers; ValueError for anything else."""
    m = SEMVER_RE.match(label.strip())
    if m is None:
        raise ValueError(f"{label!r} is not a semantic version such as v1.2.0.")
    major, minor, patch = (int(g) for g in m.groups())
    return major, minor, patch


def next_label(previous_label: str | None, previous: Basis | None, current: Basis) -> str:
    """The label of a new version, given the model's latest version (None: the first)."""
    if previous_label is None or previous is None:
        return FIRST
    major, minor, patch = parse(previous_label)
    if current.schema != previous.schema:
        return f"{major + 1}.0.0"
    if current.data != previous.data or current.settings != previous.settings:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


__all__ = ["FIRST", "Basis", "basis", "next_label", "parse"]
