"""`workbench import NAME model.onnx --schema schema.json`: an ONNX model trained elsewhere as
the next version of NAME, served like any other (canary, monitoring, rollback).

The schema file says what the graph cannot: the input columns with their kinds, the task and
the class order of the probabilities, e.g.
`{"columns": [{"name": "age", "kind": "numeric"}, {"name": "plan", "kind": "categorical"}],
"task": "binary", "classes": ["no", "yes"]}`. The graph must take one input per used column,
named as the column (`[N, 1]`, float for numbers, string for the rest; what `workbench export
--format onnx` writes) or a single float input holding every column in schema order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session

from core.enums import ColumnKind, Task
from core.errors import ArtifactIntegrityError, InputError, InvalidDataError
from core.features.kinds import encoding_of
from core.registry.onnx_model import MAX_BYTES, OnnxModel, audit, with_metadata
from core.registry.versions import register_version
from core.store import ModelVersion
from core.store.shapes import SchemaColumn

SCHEMA_HINT = ('{"columns": [{"name": "age", "kind": "numeric"}, ...], "task": "binary", '
               '"classes": ["no", "yes"]}')


def read_schema(path: str | Path | None) -> tuple[list[SchemaColumn], Task, list[Any]]:
    """(input schema, task, classes) from the schema file, each mistake named."""
    if path is None:
        raise InputError("Importing an ONNX model needs --schema schema.json: the graph does "
                         f"not say its columns' kinds, task or class order. Example: "
                         f"{SCHEMA_HINT}")
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such schema file.") from None
    except (OSError, ValueError) as exc:
        raise InvalidDataError(f"{path} is not a JSON schema ({exc}). Example: "
                               f"{SCHEMA_HINT}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list) \
            or not doc["columns"]:
        raise InvalidDataError(f"{path} must hold a non-empty 'columns' list. Example: "
                               f"{SCHEMA_HINT}")
    kinds = ", ".join(k.value for k in ColumnKind)
    schema: list[SchemaColumn] = []
    for i, col in enumerate(doc["columns"]):
        if not isinstance(col, dict) or not isinstance(col.get("name"), str) \
                or col.get("kind") not in {k.value for k in ColumnKind}:
            raise InvalidDataError(f"{path}: column {i + 1} needs a 'name' and a 'kind' "
                                   f"(one of {kinds}); got {col!r}.")
        numeric = col["kind"] in (ColumnKind.NUMERIC, ColumnKind.BOOLEAN)
        schema.append({"name": col["name"], "kind": col["kind"],
                       "dtype": "float64" if numeric else "object"})
    classes = doc.get("classes") or []
    if not isinstance(classes, list):
        raise InvalidDataError(f"{path}: 'classes' must be a list, in the order of the "
                               "model's probability columns.")
    try:
        task = Task(doc.get("task") or (Task.of_classes(len(classes)) if classes
                                        else Task.REGRESSION))
    except ValueError:
        raise InvalidDataError(f"{path}: 'task' must be one of "
                               f"{', '.join(t.value for t in Task)}.") from None
    if task != Task.REGRESSION and len(classes) < 2:
        raise InvalidDataError(f"{path}: a {task} model needs 'classes' (at least two), in "
                               "the order of its probability columns.")
    if task == Task.REGRESSION and classes:
        raise InvalidDataError(f"{path}: a regression model has no 'classes'.")
    return schema, task, classes


def import_onnx(name: str, path: str | Path, schema_path: str | Path | None, *,
                session: Session, actor: str | None = None) -> ModelVersion:
    """Audit the file (size, standard operators only, no external data), check it answers the
    schema on a probe row, then register it (artifact format `onnx`)."""
    path = Path(path)
    schema, task, classes = read_schema(schema_path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InvalidDataError(f"{path} is {path.stat().st_size / 2**20:.0f} MiB; ONNX "
                                   f"models over {MAX_BYTES // 2**20} MiB are refused.")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file.") from None
    except OSError as exc:
        raise ArtifactIntegrityError(f"{path} cannot be read ({exc.strerror}).") from None
    model = audit(raw, path.name)
    data = with_metadata(model, task, classes)
    runner = OnnxModel(data, path.name)
    _check_answers(runner, schema, task, classes, path.name)
    producer = f"{model.producer_name} {model.producer_version}".strip() or "unknown"
    return register_version(data, session=session, name=name, task=task, target="",
                            input_schema=schema, classes=classes, estimator="ONNX",
                            params={"imported_from": str(path), "producer": producer},
                            artifact_format="onnx", actor=actor)


def _check_answers(runner: OnnxModel, schema: list[SchemaColumn], task: Task,
                   classes: list[Any], label: str) -> None:
    """Run the graph on two probe rows built from the schema: wrong input names or types,
    or outputs that do not fit the task and classes, are named now rather than at the first
    request."""
    used = [c["name"] for c in schema if encoding_of(c) is not None]
    names = [n for n, _, _ in runner.inputs]
    if not (len(names) == 1 and names[0] not in used) and sorted(names) != sorted(used):
        raise InvalidDataError(
            f"{label} takes inputs {', '.join(names)}, but the schema's used columns are "
            f"{', '.join(used)}. Give one input per column, named as the column, or one "
            "float input holding every column in schema order.")
    probe = pd.DataFrame({c["name"]: [0.5, 1.0] if c["dtype"] == "float64" else ["a", "b"]
                          for c in schema})
    try:
        if task == Task.REGRESSION:
            out = runner.predict(probe)
            ok, got = out.shape == (2,), f"{out.shape[0]} values"
        else:
            out = runner.predict_proba(probe)
            ok = out.ndim == 2 and out.shape == (2, len(classes))
            got = f"{out.shape[-1]} probability columns"
    except Exception as exc:
        raise InvalidDataError(f"{label} fails on a probe row built from the schema: "
                               f"{str(exc).splitlines()[0][:300]}") from None
    if not ok or not np.all(np.isfinite(out)):
        want = "one value per row" if task == Task.REGRESSION else \
            f"{len(classes)} probability columns (one per class)"
        raise InvalidDataError(f"{label} answers {got} for a {task} model; expected {want}.")
