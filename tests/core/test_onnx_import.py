"""ONNX import: a graph trained elsewhere becomes a version served like any other (canary,
rollback), its file audited as data first; hostile files are refused with a clear message.
Also the upgrade of an old store (0016_onnx: versions never exported have no parity)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

pytest.importorskip("onnxruntime", reason="ONNX import needs the extra `onnx` (pip install "
                                          "-e '.[onnx]')")
pytest.importorskip("skl2onnx", reason="these tests build their ONNX files with skl2onnx")

import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from core.deploy import deployments as dep  # noqa: E402
from core.deploy.cache import ModelCache  # noqa: E402
from core.errors import ArtifactIntegrityError, InputError, UntrustedArtifactError  # noqa: E402
from core.onnx.export import export_onnx  # noqa: E402
from core.registry import (  # noqa: E402
    list_versions,
    onnx_model,  # noqa: E402
    resolve,
)
from core.registry.importer import import_model  # noqa: E402
from core.store import Database  # noqa: E402
from tests.factories import (  # noqa: E402
    SCHEMA,
    record,
    register,
    store_at,
    store_session,
    training_frame,
)

ONNX_SCHEMA = {"columns": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"},
                           {"name": "plan", "kind": "categorical"}],
               "task": "binary", "classes": ["no", "yes"]}


def write_schema(tmp_path: Path, doc: dict | None = None) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(doc or ONNX_SCHEMA))
    return path


@pytest.fixture
def exported(session: Session, tmp_path: Path) -> Path:
    """churn:1 (factories' pipeline) exported as ONNX: a file from 'elsewhere'."""
    register()
    path = tmp_path / "churn.onnx"
    path.write_bytes(export_onnx("churn:1", session=session).data)
    return path


def test_an_imported_onnx_model_serves_through_a_canary_and_rolls_back(
        exported: Path, tmp_path: Path, db: Database) -> None:
    with store_session() as s:
        mv = import_model("churn", exported, session=s, schema=write_schema(tmp_path))
        assert (mv.version, mv.artifact_format, mv.estimator) == (2, "onnx", "ONNX")
        assert mv.input_schema[2] == {"name": "plan", "kind": "categorical", "dtype": "object"}
        dep.deploy("churn", 1, 100, session=s)  # the scikit-learn version in production
        state = dep.deploy("churn", 2, 10, session=s)  # the ONNX one as a 10% canary
        assert (state.stable, state.candidate, state.percent) == (1, 2, 10)
    cache = ModelCache(db)
    sk, ox = cache.get("churn", 1), cache.get("churn", 2)
    rows = [record(i, plan) for i in range(12) for plan in ("basic", "pro", "gold")]
    rows.append({"a": 0.2, "b": 0.1, "plan": "enterprise"})  # a plan never seen in training
    want, want_p = sk.predict_records(rows)
    got, got_p = ox.predict_records(rows)
    assert got == want and np.allclose(got_p, want_p, atol=1e-4)
    assert ox.classes == ["no", "yes"] and ox.fast is None  # onnxruntime, not the lean path
    with store_session() as s:
        state = dep.rollback("churn", session=s, reason="canary of the imported model")
        assert state.candidate is None and state.stable == 1
        assert [v.artifact_format for v in list_versions("churn", session=s)] == ["skops",
                                                                                 "onnx"]


def test_loading_verifies_the_fingerprint(exported: Path, tmp_path: Path, db: Database,
                                          home: Path) -> None:
    with store_session() as s:
        import_model("churn", exported, session=s, schema=write_schema(tmp_path))
        _, mv = resolve("churn:2", session=s)
    artifact = home / mv.artifact_path
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArtifactIntegrityError, match="fails its fingerprint check"):
        ModelCache(db).get("churn", 2)


def test_the_schema_is_required_and_checked(exported: Path, tmp_path: Path,
                                            session: Session) -> None:
    with pytest.raises(InputError, match="needs --schema"):
        import_model("churn", exported, session=session)
    bad = {**ONNX_SCHEMA, "columns": [{"name": "a", "kind": "numbers"}]}
    with pytest.raises(InputError, match="column 1 needs a 'name' and a 'kind'"):
        import_model("churn", exported, session=session, schema=write_schema(tmp_path, bad))
    wrong = {**ONNX_SCHEMA, "columns": [{"name": "x", "kind": "numeric"}]}
    with pytest.raises(InputError, match="takes inputs a, b, plan"):
        import_model("churn", exported, session=session,
                     schema=write_schema(tmp_path, wrong))
    three = {**ONNX_SCHEMA, "task": "multiclass", "classes": ["a", "b", "c"]}
    with pytest.raises(InputError, match="expected 3 probability columns"):
        import_model("churn", exported, session=session,
                     schema=write_schema(tmp_path, three))
    assert len(list_versions("churn", session=session)) == 1  # nothing registered


# -- hostile files ---------------------------------------------------------------------------
def _graph(domain: str = "", op: str = "Identity", dims: list[int] | None = None) -> bytes:
    """A one-node graph over input `a`; `dims` adds an initializer declaring that shape."""
    inits = []
    if dims is not None:
        tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
        # the real bytes of a small tensor; a huge declared shape carries only a few
        tensor.raw_data = np.zeros(min(int(np.prod(dims)), 64), np.float32).tobytes()
        inits.append(tensor)
    node = helper.make_node(op, ["a"], ["variable"], domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "a", TensorProto.FLOAT, [None, 1])], [helper.make_tensor_value_info(
            "variable", TensorProto.FLOAT, [None, 1])], inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain
                                              else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8  # what today's runtimes read
    return model.SerializeToString()


def _import(tmp_path: Path, data: bytes, session: Session):
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    schema = {"columns": [{"name": "a", "kind": "numeric"}], "task": "regression"}
    return import_model("m", path, session=session, schema=write_schema(tmp_path, schema))


def test_a_plain_standard_graph_imports(tmp_path: Path, session: Session) -> None:
    mv = _import(tmp_path, _graph(), session)
    assert mv.task == "regression" and mv.artifact_format == "onnx"


def test_a_custom_operator_domain_is_refused(tmp_path: Path, session: Session) -> None:
    with pytest.raises(UntrustedArtifactError, match="outside the standard ONNX domains: "
                                                     "com.evil"):
        _import(tmp_path, _graph(domain="com.evil", op="RunShell"), session)
    with pytest.raises(InputError, match="not found|no model|No model"):
        list_versions("m", session=session)  # nothing was registered


def test_a_truncated_file_is_refused(tmp_path: Path, session: Session, exported: Path) -> None:
    data = exported.read_bytes()
    with pytest.raises(ArtifactIntegrityError, match="truncated"):
        _import(tmp_path, data[: len(data) // 2], session)
    with pytest.raises(ArtifactIntegrityError, match="not a readable ONNX model"):
        _import(tmp_path, b"\x00not onnx at all" * 3, session)


def test_a_huge_declared_size_is_refused(tmp_path: Path, session: Session,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UntrustedArtifactError, match=r"declares tensor 'w' of shape "
                                                     r"\[100000, 100000, 100\]"):
        _import(tmp_path, _graph(dims=[100_000, 100_000, 100]), session)
    monkeypatch.setattr(onnx_model, "MAX_BYTES", 100)  # a file over the cap, read or not
    from core.registry import onnx_import
    monkeypatch.setattr(onnx_import, "MAX_BYTES", 100)
    with pytest.raises(InputError, match="over 0 MiB are refused"):
        _import(tmp_path, _graph(dims=[64]), session)


def test_external_data_is_refused(tmp_path: Path, session: Session) -> None:
    model = onnx.load_model_from_string(_graph(dims=[4]))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(UntrustedArtifactError, match="external file"):
        _import(tmp_path, model.SerializeToString(), session)


# -- upgrade of an old store -----------------------------------------------------------------
def test_an_old_store_upgrades_with_no_parity_recorded(backend: str) -> None:
    store_at("0011_tracking", [
        "INSERT INTO registeredmodel (name, description, created_at) VALUES "
        "('m', '', CURRENT_TIMESTAMP)",
        "INSERT INTO modelversion (model_id, version, artifact_path, fingerprint, size_bytes, "
        "artifact_format, task, target, metric, score, metrics, evaluation, input_schema, "
        "classes, estimator, params, library_versions, stage, semver, created_by, created_at)"
        " SELECT id, 1, 'artifacts/m1.skops', '" + "0" * 64 + "', 1, 'skops', 'binary', 'y', "
        "'roc_auc', 0.9, '{}', '{}', '[]', '[]', 'lr', '{}', '{}', 'None', '1.0.0', 'old', "
        "CURRENT_TIMESTAMP FROM registeredmodel WHERE name = 'm'",
    ])
    with store_session() as s:  # the first use upgrades to head
        [v] = list_versions("m", session=s)
    assert v.onnx_parity is None and v.artifact_format == "skops"


def test_a_graph_newer_than_the_runtime_is_refused_clearly(tmp_path: Path,
                                                          session: Session) -> None:
    model = onnx.load_model_from_string(_graph())
    model.ir_version = 99
    with pytest.raises(ArtifactIntegrityError, match="cannot run|not a valid ONNX model"):
        _import(tmp_path, model.SerializeToString(), session)


def test_training_frame_rows_match_the_schema() -> None:
    """The factories' frame is what the exported graph's inputs are named after."""
    X, _ = training_frame()
    assert list(X.columns) == [c["name"] for c in SCHEMA]
    assert isinstance(pd.DataFrame(X), pd.DataFrame)
