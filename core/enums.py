"""Closed sets every layer shares, as enums that carry their own rules.

Bottom layer: imports nothing from the workbench, so any package may use these. Members are
`StrEnum`s, so they compare equal to, and are stored as, the same strings as before (a stored
`task` of "binary" reads back as a plain str equal to `Task.BINARY`).
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """What a model predicts: one of two labels, one of many, or a number."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    @property
    def is_classification(self) -> bool:
        return self is not Task.REGRESSION

    @classmethod
    def of_classes(cls, n_classes: int) -> Task:
        """The classification task for a target with `n_classes` distinct labels."""
        return cls.BINARY if n_classes == 2 else cls.MULTICLASS


class ColumnKind(StrEnum):
    """How a column is used, as inferred by `core.data.profile` and stored in every input
    schema."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    ID = "id"

    @classmethod
    def of(cls, value: str | None, default: ColumnKind | None = None) -> ColumnKind:
        """A stored kind as a member; `default` (else CATEGORICAL) for a missing one."""
        if not value:
            return default or cls.CATEGORICAL
        return cls(value)


class Stage(StrEnum):
    """Where a registered version stands in its lifecycle (MLflow's words). `Production` is
    not stored: the version holding the `production` alias is in it (one source of truth);
    a version's stored stage is one of the other three (see core/registry/stages.py)."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: str) -> Stage:
        """A stage from user input, any letter case ("staging", "ARCHIVED")."""
        for member in cls:
            if str(value).strip().lower() == member.value.lower():
                return member
        raise ValueError(f"{value!r} is not a stage: use {', '.join(cls)}.")


__all__ = ["ColumnKind", "Stage", "Task"]


class TrialState(StrEnum):
    """How one candidate of a search ended: scored, stopped early by the pruner, or failed."""

    OK = "ok"
    PRUNED = "pruned"
    FAILED = "failed"
