"""Column types and problem type, each with the reason a user can read."""

from __future__ import annotations

import difflib
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from core.enums import ColumnKind, Task
from core.errors import InvalidDataError
from core.features.kinds import holds_booleans, holds_datetimes, holds_numbers
from core.store.shapes import DatasetColumn, SchemaColumn

BOOLEAN_TOKENS = {"true", "false", "yes", "no", "y", "n", "t", "f"}
ID_UNIQUE_SHARE = 0.95        # near-unique columns are identifiers, not signal
ID_NAME_HINTS = ("id", "uuid", "key", "code")
TEXT_MEAN_WORDS = 4           # free text: long strings with several words and many values
MAX_CLASSES_FOR_INTEGER_TARGET = 20
DATETIME_PARSE_SHARE = 0.95


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: ColumnKind
    dtype: str
    missing: int
    unique: int
    reason: str

    def to_dict(self) -> DatasetColumn:
        """As stored in a dataset's catalogue row (the kind as its plain string)."""
        return DatasetColumn(**{**asdict(self), "kind": self.kind.value})


@dataclass(frozen=True)
class ProblemType:
    task: Task
    reason: str
    classes: list[Any]


def _name_hints_id(name: str) -> bool:
    lowered = name.lower().replace("-", "_").replace(" ", "_")
    return lowered in ID_NAME_HINTS or any(lowered.endswith("_" + h) for h in ID_NAME_HINTS)


DATE_SHAPE = (r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{4}-\d{2}|"
              r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d")


def _looks_datetime(s: pd.Series) -> bool:
    """Parseable as dates *and* shaped like dates: dateutil alone accepts codes like 'T-00001'."""
    sample = s.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(DATE_SHAPE).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # utc=True: values with different offsets ("+01:00", "Z", "-05:00") are one instant
        # scale; without it pandas refuses the whole column.
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
    return parsed.notna().mean() >= DATETIME_PARSE_SHARE


def profile_column(s: pd.Series) -> ColumnProfile:
    """Infer how a column should be used; the reason is shown to the user."""
    name = str(s.name)
    present = s.dropna()
    n, unique = len(present), int(present.nunique())
    base = dict(name=name, dtype=str(s.dtype), missing=int(s.isna().sum()), unique=unique)

    def kind(k: ColumnKind, reason: str) -> ColumnProfile:
        return ColumnProfile(kind=k, reason=reason, **base)

    if holds_booleans(s):
        return kind(ColumnKind.BOOLEAN, "true/false values")
    if holds_datetimes(s):
        return kind(ColumnKind.DATETIME, "stored as date/time")
    if holds_numbers(s):
        if unique == 2 and set(present.unique()) <= {0, 1}:
            return kind(ColumnKind.BOOLEAN, "only the values 0 and 1")
        is_int = pd.api.types.is_integer_dtype(s) or bool((present % 1 == 0).all())
        if is_int and n >= 20 and unique / n >= ID_UNIQUE_SHARE and _name_hints_id(name):
            return kind(ColumnKind.ID, f"whole numbers, {unique / n:.0%} unique, named like an id")
        return kind(ColumnKind.NUMERIC, "numbers")
    text = present.astype(str)
    if unique <= 2 and set(text.str.lower().str.strip().unique()) <= BOOLEAN_TOKENS:
        return kind(ColumnKind.BOOLEAN, "yes/no style values")
    if _looks_datetime(present):
        return kind(ColumnKind.DATETIME, "values parse as dates")
    if n >= 20 and unique / n >= ID_UNIQUE_SHARE:
        words = text.str.split().str.len().mean()
        if words >= TEXT_MEAN_WORDS:
            return kind(ColumnKind.TEXT, f"free text ({words:.0f} words per value on average)")
        return kind(ColumnKind.ID,
                    f"{unique / n:.0%} of values are unique: an identifier, not a pattern")
    if text.str.split().str.len().mean() >= TEXT_MEAN_WORDS and unique / max(n, 1) > 0.5:
        return kind(ColumnKind.TEXT, "free text with many distinct values")
    return kind(ColumnKind.CATEGORICAL, f"{unique} distinct values")


def profile_frame(frame: pd.DataFrame) -> list[ColumnProfile]:
    """Profiles of every column; a column whose values defeat inference is refused by name
    (a caller's data must never surface as a server error)."""
    out = []
    for c in frame.columns:
        try:
            out.append(profile_column(frame[c]))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidDataError(
                f"Column {str(c)!r} could not be read as numbers, dates or labels ({exc}). "
                "Make its values one kind (for dates: one format), or remove it.") from None
    return out


def check_target(frame: pd.DataFrame, target: str) -> pd.Series:
    """Return the usable target column or explain precisely why it cannot be used."""
    if target not in frame.columns:
        close = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        cols = ", ".join(repr(str(c)) for c in list(frame.columns)[:20])
        raise InvalidDataError(f"The target column {target!r} is not in the data.{hint} "
                               f"Columns are: {cols}.")
    y = frame[target]
    if y.isna().all():
        raise InvalidDataError(f"The target column {target!r} is empty in every row. "
                               "Pick a column that holds the values to predict.")
    if y.dropna().nunique() < 2:
        value = _plain(y.dropna().iloc[0])
        raise InvalidDataError(f"The target column {target!r} has the same value ({value!r}) in "
                               "every row, so there is nothing to learn. Pick another target.")
    return y


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, for messages and JSON."""
    return value.item() if hasattr(value, "item") else value


CLASSIFICATION = "classification"  # a task a user may ask for: binary or multiclass, by count
AUTO = "auto"


def detect_problem_type(y: pd.Series, override: str | None = None) -> ProblemType:
    """binary / multiclass / regression from the target values, or the user's override
    ("classification", a Task, or None / "auto" to detect)."""
    present = y.dropna()
    unique = present.unique()
    n_unique = len(unique)
    classes = sorted((_plain(v) for v in unique), key=lambda v: (str(type(v)), v))
    if override == CLASSIFICATION or override in (Task.BINARY, Task.MULTICLASS):
        if n_unique > max(MAX_CLASSES_FOR_INTEGER_TARGET * 5, 100):
            raise InvalidDataError(
                f"The target {y.name!r} has {n_unique} distinct values: too many classes for "
                "classification. Choose the task regression (CLI: --task regression), or group the "
                "values first.")
        return ProblemType(Task.of_classes(n_unique),
                           f"set by you ({override}); {n_unique} classes", classes)
    if override == Task.REGRESSION:
        if not pd.api.types.is_numeric_dtype(present):
            raise InvalidDataError(f"The target {y.name!r} is not numeric, so it cannot be "
                                   "predicted with regression. Choose the task classification "
                                   "(CLI: --task classification).")
        return ProblemType(Task.REGRESSION, "set by you (regression)", [])
    if override not in (None, AUTO):
        raise InvalidDataError(f"Unknown task {override!r}: use auto, classification or "
                               "regression.")
    if n_unique == 2:
        return ProblemType(Task.BINARY, f"the target has exactly two values ({classes[0]!r}, "
                           f"{classes[1]!r})", classes)
    if not holds_numbers(present):
        return ProblemType(Task.MULTICLASS, f"the target holds {n_unique} distinct labels",
                           classes)
    is_int = bool((present % 1 == 0).all())
    if is_int and n_unique <= MAX_CLASSES_FOR_INTEGER_TARGET and n_unique / len(present) < 0.05:
        return ProblemType(Task.MULTICLASS, f"the target holds {n_unique} distinct whole numbers; "
                           "choose the task regression if they are amounts (CLI: --task "
                           "regression)", [int(c) for c in classes])
    kind = "whole numbers" if is_int else "decimal numbers"
    return ProblemType(Task.REGRESSION, f"the target holds {n_unique} distinct {kind}", [])


def input_schema(frame: pd.DataFrame) -> list[SchemaColumn]:
    """The columns a model expects at predict time, with the kind each was trained as."""
    return [SchemaColumn(name=p.name, kind=p.kind.value, dtype=p.dtype)
            for p in profile_frame(frame)]


__all__ = ["ColumnProfile", "ProblemType", "check_target", "detect_problem_type",
           "input_schema", "profile_column", "profile_frame"]
