"""The bottom layer's closed sets: their rules, their stored strings, and which errors count
as the caller's input mistakes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.data.profile import detect_problem_type, profile_frame
from core.enums import ColumnKind, Task
from core.errors import (
    ArtifactIntegrityError,
    ConflictError,
    DamagedStoreError,
    InputError,
    InvalidDataError,
    LibraryMismatchError,
    NotFoundError,
    SchemaMismatchError,
    SettingsError,
    UntrustedArtifactError,
    WorkbenchError,
)


def test_tasks_know_whether_they_classify_and_store_as_before() -> None:
    assert [t.is_classification for t in Task] == [True, True, False]
    assert (Task.of_classes(2), Task.of_classes(7)) == (Task.BINARY, Task.MULTICLASS)
    assert Task("regression") is Task.REGRESSION and Task.BINARY == "binary"
    assert json.dumps({"task": Task.MULTICLASS}) == '{"task": "multiclass"}'


@pytest.mark.parametrize("values, task", [
    (["a", "b", "a"], Task.BINARY), (["a", "b", "c"], Task.MULTICLASS),
    ([0.5, 1.25, 3.5, 7.0], Task.REGRESSION)])
def test_detected_problem_types_are_tasks(values: list, task: Task) -> None:
    assert detect_problem_type(pd.Series(values, name="y")).task is task


def test_column_kinds_read_stored_values() -> None:
    assert ColumnKind.of(None) is ColumnKind.CATEGORICAL and ColumnKind.of("id") is ColumnKind.ID
    frame = pd.DataFrame({"n": [1.5, 2.5, 3.5], "flag": [True, False, True],
                          "c": ["x", "y", "x"]})
    profiles = profile_frame(frame)
    assert [p.kind for p in profiles] == [ColumnKind.NUMERIC, ColumnKind.BOOLEAN,
                                          ColumnKind.CATEGORICAL]
    assert [type(p.to_dict()["kind"]) for p in profiles] == [str] * 3  # stored as plain text


@pytest.mark.parametrize("error", [InvalidDataError, SchemaMismatchError, NotFoundError,
                                   ConflictError, UntrustedArtifactError])
def test_input_errors_are_value_errors(error: type) -> None:
    assert issubclass(error, InputError) and issubclass(error, ValueError)


@pytest.mark.parametrize("error", [ArtifactIntegrityError, LibraryMismatchError,
                                   DamagedStoreError, SettingsError])
def test_errors_that_are_not_the_callers_input_are_not_value_errors(error: type) -> None:
    assert issubclass(error, WorkbenchError) and not issubclass(error, ValueError)
