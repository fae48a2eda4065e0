"""A stored or imported artifact never runs code: every known bypass family is refused with
the untrusted types named, the workbench's own pipelines still load, and a file saved by
another scikit-learn is refused until the user accepts it."""

from __future__ import annotations

import builtins
import functools
import importlib
import io
import json
import operator
import os
import pathlib
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sqlmodel import Session
from typer.testing import CliRunner

from app.cli import app
from core.automl.catalog import CATALOG
from core.automl.ensemble import WeightedEnsemble
from core.automl.train import build_pipeline
from core.errors import LibraryMismatchError, UntrustedArtifactError
from core.features.finance import MarketFeatures
from core.registry.artifacts import load_verified, save_pipeline
from core.registry.importer import import_model
from core.registry.trust import TRUSTED_TYPES
from tests.factories import DATA

FRAME = pd.DataFrame({"a": [0.1, 0.9, 0.3, 0.7, 0.2, 0.8] * 5,
                      "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0] * 5})
LABELS = np.array([0, 1, 0, 1, 0, 1] * 5)


def _hostile(func: Callable[..., Any], path: Path) -> Path:
    """A fitted pipeline whose first step calls `func` on every predict, saved with skops."""
    pipe = Pipeline([("hook", FunctionTransformer(func=func, validate=False)),
                     ("model", LogisticRegression())])
    pipe.steps[0] = ("hook", FunctionTransformer(validate=False).fit(FRAME))
    pipe.steps[1][1].fit(FRAME, LABELS)
    pipe.steps[0][1].func = func
    sio.dump(pipe, path)
    return path


def _payload(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')"


# Each family of callables a skops file can smuggle into a FunctionTransformer, and the type
# names the refusal must mention.
BYPASSES: dict[str, tuple[Callable[[Path], Any], list[str]]] = {
    "partial-wrapped eval": (lambda m: functools.partial(builtins.eval, _payload(m), {}),
                             ["builtins.eval", "functools.partial"]),
    "partial-wrapped exec": (lambda m: functools.partial(builtins.exec, _payload(m), {}),
                             ["builtins.exec", "functools.partial"]),
    "bare os.system": (lambda m: os.system, [f"{os.system.__module__}.system"]),
    "import_module": (lambda m: importlib.import_module, ["importlib.import_module"]),
    "subprocess.getoutput": (lambda m: subprocess.getoutput, ["subprocess.getoutput"]),
    "operator.methodcaller": (lambda m: operator.methodcaller("to_csv", str(m)),
                              ["operator.methodcaller"]),
    "operator.attrgetter": (lambda m: operator.attrgetter("values"), ["operator.attrgetter"]),
    "bound method": (lambda m: pathlib.Path(m).write_text,
                     [f"pathlib.{type(pathlib.Path('.')).__name__}.write_text"]),
}


@pytest.mark.parametrize("family", sorted(BYPASSES))
def test_every_bypass_family_is_refused_before_anything_runs(session: Session, tmp_path: Path,
                                                             family: str) -> None:
    marker = tmp_path / "marker.txt"
    make, names = BYPASSES[family]
    path = _hostile(make(marker), tmp_path / "evil.skops")
    with pytest.raises(UntrustedArtifactError) as info:
        import_model("evil", path, session=session)
    for name in names:
        assert name in info.value.message
    assert not marker.exists()
    from core.registry import list_models

    assert list_models(session=session) == []


def test_a_refused_import_exits_2_and_names_each_untrusted_type(home: Path,
                                                                tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    path = _hostile(functools.partial(builtins.eval, _payload(marker), {}), tmp_path / "e.skops")
    result = CliRunner().invoke(app, ["import", "evil", str(path)])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "builtins.eval" in message and "functools.partial" in message
    assert "Traceback" not in result.output and not marker.exists()


def test_trusted_types_are_exact_data_classes_never_callables() -> None:
    roots = ("core.", "sklearn.", "xgboost.", "numpy.")
    for name in TRUSTED_TYPES:
        module, _, attr = name.rpartition(".")
        assert name.startswith(roots), name
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type), f"{name} is not a class"


def _catalogue_pipelines() -> list[tuple[str, Any, pd.DataFrame]]:
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"num": rng.normal(size=n), "num2": rng.normal(size=n),
                          "cat": rng.choice(["a", "b", "c", None], size=n),
                          "when": pd.date_range("2020-01-01", periods=n, freq="D").astype(str)})
    frame.loc[::7, "num"] = np.nan
    schema = [{"name": "num", "kind": "numeric", "dtype": "float64"},
              {"name": "num2", "kind": "numeric", "dtype": "float64"},
              {"name": "cat", "kind": "categorical", "dtype": "object"},
              {"name": "when", "kind": "datetime", "dtype": "object"}]
    targets = {"binary": rng.choice(["yes", "no"], size=n),
               "multiclass": rng.choice([1, 2, 3], size=n),
               "regression": rng.normal(size=n)}
    out = []
    for task, y in targets.items():
        fitted = []
        for key, spec in CATALOG.items():
            if task in spec.tasks:
                pipe = build_pipeline(spec, task, dict(spec.defaults[0]), schema)
                fitted.append(pipe.fit(frame, y))
                out.append((f"{key}-{task}", fitted[-1], frame))
        out.append((f"ensemble-{task}", WeightedEnsemble(fitted[:3], [0.5, 0.3, 0.2], task=task),
                    frame))
    prices = pd.read_csv(DATA / "stocks.csv")
    out.append(("market-features", MarketFeatures().fit(prices), prices))
    return out


def test_the_workbench_own_pipelines_still_load(home: Path) -> None:
    for label, obj, frame in _catalogue_pipelines():
        stored = save_pipeline(obj, "own")
        loaded = load_verified(stored.relpath, stored.fingerprint, label)
        method = "transform" if label == "market-features" else "predict"
        expected, got = getattr(obj, method)(frame), getattr(loaded, method)(frame)
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(got, expected)
        else:
            np.testing.assert_array_equal(got, expected)


def _older_sklearn(data: bytes, version: str = "1.0.0") -> bytes:
    """The same file as if an older scikit-learn had saved it (what sklearn compares)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(body)
                _set_versions(schema, version)
                body = json.dumps(schema).encode()
            dst.writestr(item, body)
    return out.getvalue()


def _set_versions(node: Any, version: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_sklearn_version" and isinstance(value, dict):
                value["content"] = json.dumps(version)
            else:
                _set_versions(value, version)
    elif isinstance(node, list):
        for item in node:
            _set_versions(item, version)


def _plain_pipeline_bytes() -> bytes:
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    buf = io.BytesIO()
    sio.dump(pipe.fit(FRAME, LABELS), buf)
    return buf.getvalue()


def test_an_import_saved_by_another_sklearn_is_refused_unless_accepted(session: Session,
                                                                      tmp_path: Path) -> None:
    path = tmp_path / "old.skops"
    path.write_bytes(_older_sklearn(_plain_pipeline_bytes()))
    result = CliRunner().invoke(app, ["import", "old", str(path)])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "scikit-learn 1.0.0" in message
    assert "--accept-library-mismatch" in message

    result = CliRunner().invoke(app, ["import", "old", str(path), "--accept-library-mismatch"])
    assert result.exit_code == 0, result.output
    from core.registry import list_versions, load_pipeline

    (version,) = list_versions("old", session=session)
    assert version.library_mismatch.saved == "1.0.0"
    assert version.library_mismatch.accepted is True
    _, _, pipe = load_pipeline("old:1", session=session)
    assert list(pipe.predict(FRAME)) == list(LABELS)


def test_a_stored_version_from_another_sklearn_loads_only_once_accepted(
        session: Session) -> None:
    from core.fsutil import sha256_bytes
    from core.registry import load_pipeline, register_version
    from core.settings import get_settings

    pipe = Pipeline([("model", LogisticRegression())]).fit(FRAME, LABELS)
    mv = register_version(pipe, session=session, name="aged", task="binary", target="y",
                          input_schema=[{"name": c, "kind": "numeric", "dtype": "float64"}
                                        for c in FRAME.columns])
    # The artifact as an older release of the workbench (and of scikit-learn) wrote it.
    path = get_settings().home / mv.artifact_path
    aged = _older_sklearn(path.read_bytes())
    path.write_bytes(aged)
    mv.fingerprint = sha256_bytes(aged)
    mv.library_versions = {**mv.library_versions, "scikit-learn": "1.0.0"}
    session.add(mv)
    session.commit()

    with pytest.raises(LibraryMismatchError, match="saved with scikit-learn 1.0.0"):
        load_pipeline("aged:1", session=session)
    result = CliRunner().invoke(app, ["accept", "aged", "1", "--reason", "checked on a holdout",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["library_mismatch"]["accepted"] is True
    session.expire_all()  # the CLI changed the row in its own session
    _, _, loaded = load_pipeline("aged:1", session=session)
    assert list(loaded.predict(FRAME)) == list(LABELS)


def test_imported_trees_that_index_outside_themselves_are_refused(session: Session,
                                                                  tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from core.errors import ArtifactIntegrityError

    forest = Pipeline([("m", RandomForestClassifier(n_estimators=3, random_state=0))])
    sio.dump(forest.fit(FRAME, LABELS), tmp_path / "forest.skops")
    hgb = HistGradientBoostingClassifier(max_iter=3, min_samples_leaf=2).fit(FRAME, LABELS)
    sio.dump(hgb, tmp_path / "hgb.skops")
    assert import_model("forest", tmp_path / "forest.skops", session=session).version == 1
    assert import_model("hgb", tmp_path / "hgb.skops", session=session).version == 1

    split = np.flatnonzero(hgb._predictors[0][0].nodes["is_leaf"] == 0)[0]
    hgb._predictors[0][0].nodes["left"][split] = 10**6  # a crafted file, as an attacker sends it
    sio.dump(hgb, tmp_path / "crafted.skops")
    with pytest.raises(ArtifactIntegrityError, match="points at nodes it does not have"):
        import_model("hgb", tmp_path / "crafted.skops", session=session)
