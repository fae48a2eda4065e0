"""`workbench import`: register an existing scikit-learn pipeline as the next version.

Accepted: a skops file, or an MLflow model directory (mlflow.sklearn flavour) whose model is
stored in skops format. Pickle-based MLflow models are refused: loading a pickle runs
arbitrary code, and an imported file is by definition not one we wrote. Types are checked
against the same allow-list as our own artifacts before anything is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sklearn
import yaml
from sqlmodel import Session

from core.enums import ColumnKind, Task
from core.errors import ArtifactIntegrityError, InputError, InvalidDataError
from core.registry.artifacts import load_trusted_bytes, sklearn_mismatch
from core.registry.trust import (
    check_imported_boosters,
    check_tree_structures,
    saved_sklearn_versions,
)
from core.registry.versions import register_version
from core.store import ModelVersion
from core.store.shapes import SchemaColumn

MLFLOW_TYPES = {"double": ColumnKind.NUMERIC, "float": ColumnKind.NUMERIC,
                "long": ColumnKind.NUMERIC, "integer": ColumnKind.NUMERIC,
                "boolean": ColumnKind.BOOLEAN, "string": ColumnKind.CATEGORICAL,
                "datetime": ColumnKind.DATETIME}
SKOPS = "skops"  # the only MLflow serialisation format that is not a pickle


def import_model(name: str, path: str | Path, *, session: Session, actor: str | None = None,
                 accept_library_mismatch: bool = False,
                 schema: str | Path | None = None) -> ModelVersion:
    """Audit, load and register (committed by `register_version`). A file saved by another
    scikit-learn is refused unless `accept_library_mismatch`; the version then records the
    scikit-learn that saved it. A `.onnx` file needs `schema` (core.registry.onnx_import)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from core.registry.onnx_import import import_onnx

        return import_onnx(name, path, schema, session=session, actor=actor)
    if path.is_dir():
        model_file, schema = _mlflow(path)
    elif path.is_file():
        model_file, schema = path, None
    else:
        raise InputError(f"{path}: no such file or directory.")
    try:
        data = model_file.read_bytes()
    except OSError as exc:
        raise ArtifactIntegrityError(f"{model_file} cannot be read ({exc.strerror}).") from None
    check_imported_boosters(data, model_file.name)  # boosters' own formats, before loading
    pipeline = load_trusted_bytes(
        data, model_file.name, accept_mismatch=accept_library_mismatch,
        accept_hint=f"`workbench import {name} {path} --accept-library-mismatch`")
    check_tree_structures(pipeline, model_file.name)
    saved = sorted(saved_sklearn_versions(data, model_file.name))
    mismatch = sklearn_mismatch(set(saved))
    if not hasattr(pipeline, "predict"):
        raise InvalidDataError(f"{model_file.name} holds a {type(pipeline).__name__}, not a "
                               "fitted scikit-learn estimator or pipeline.")
    schema = schema or _schema_from(pipeline, model_file)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])]
    task = Task.of_classes(len(classes)) if classes else Task.REGRESSION
    return register_version(pipeline, session=session, name=name, task=task, target="",
                            input_schema=schema, classes=classes, estimator=type(pipeline).__name__,
                            params={"imported_from": str(path)},
                            saved_with={"scikit-learn": ", ".join(saved)} if saved else None,
                            accepted_sklearn=sklearn.__version__ if mismatch else None,
                            actor=actor)


def _mlflow(directory: Path) -> tuple[Path, list[SchemaColumn] | None]:
    mlmodel = directory / "MLmodel"
    if not mlmodel.is_file():
        raise InputError(f"{directory} is not an MLflow model directory (no MLmodel file).")
    spec = yaml.safe_load(mlmodel.read_text())
    flavor = (spec.get("flavors") or {}).get("sklearn")
    if not flavor:
        raise InputError(f"{directory} has no mlflow.sklearn flavour; only scikit-learn "
                         "models can be imported.")
    fmt = flavor.get("serialization_format", "cloudpickle")
    if fmt != SKOPS:
        raise InputError(
            f"{directory} stores its model as {fmt}, and loading a pickle from outside runs "
            "arbitrary code. Save it again with mlflow.sklearn.save_model(..., "
            "serialization_format='skops'), or export it with skops.io.dump, then import that.")
    schema = None
    inputs = ((spec.get("signature") or {}).get("inputs"))
    if inputs:
        cols = json.loads(inputs) if isinstance(inputs, str) else inputs
        schema = [{"name": c["name"],
                   "kind": MLFLOW_TYPES.get(c.get("type"), ColumnKind.CATEGORICAL).value,
                   "dtype": c.get("type", "")} for c in cols if "name" in c]
    return directory / flavor.get("pickled_model", "model.skops"), schema


def _schema_from(pipeline: Any, source: Path) -> list[SchemaColumn]:
    names = getattr(pipeline, "feature_names_in_", None)
    if names is None:
        raise InvalidDataError(
            f"{source.name} does not record its input columns (it was fitted on an array, not "
            "a DataFrame), so requests could not be checked. Fit it on a DataFrame, or import an "
            "MLflow directory with a signature.")
    return [{"name": str(n), "kind": ColumnKind.NUMERIC.value, "dtype": "float64"}
            for n in names]
