"""ONNX over REST and the CLI: the download is the parity-checked graph (parity in a header
and on the version), a blocked version is a 409 naming the step, `workbench export --format
onnx` writes the file or exits 2 with the step's name, `workbench import NAME x.onnx --schema`
registers what was exported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

pytest.importorskip("skl2onnx", reason="ONNX export needs the extra `onnx` (pip install "
                                       "-e '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="ONNX parity needs onnxruntime (extra `onnx`)")

from app.api import create_app  # noqa: E402
from app.cli import app  # noqa: E402
from core.automl.catalog import CATALOG  # noqa: E402
from core.automl.train import build_pipeline  # noqa: E402
from core.deploy import deploy  # noqa: E402
from core.registry import register_version  # noqa: E402
from tests.factories import record, register, store_session, training_frame  # noqa: E402

DATED = [{"name": "a", "kind": "numeric", "dtype": "float64"},
         {"name": "signup", "kind": "datetime", "dtype": "object"}]


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    """churn:1 (factories' pipeline); dated:1 with a date column (no ONNX converter)."""
    register()
    with store_session() as s:
        deploy("churn", 1, 100, session=s)
    X = pd.DataFrame({"a": np.arange(40.0), "signup": ["2024-01-05"] * 40})
    pipe = build_pipeline(CATALOG["linear"], "binary", {"C": 1.0}, DATED).fit(
        X, np.where(X["a"] > 20, "y", "n"))
    with store_session() as s:
        register_version(pipe, session=s, name="dated", task="binary", target="t",
                         input_schema=DATED, classes=["n", "y"])
    with TestClient(create_app(background=False)) as c:
        yield c


def _run(data: bytes, rows: list[dict]) -> list:
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = {"a": np.array([[r["a"]] for r in rows], np.float32),
            "b": np.array([[r["b"]] for r in rows], np.float32),
            "plan": np.array([[r["plan"]] for r in rows], object)}
    return sess.run(None, feed)[0].tolist()


def test_download_is_the_parity_checked_graph(client: TestClient) -> None:
    r = client.get("/v1/models/churn/versions/1/onnx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert "churn-1.onnx" in r.headers["content-disposition"]
    header = json.loads(r.headers["x-onnx-parity"])
    assert header["passed"] is True and header["rows"] > 0
    rows = [record(i, plan) for i in range(6) for plan in ("basic", "pro")]
    predicted = client.post("/v1/models/churn/predict", json={"records": rows}).json()
    assert _run(r.content, rows) == predicted["predictions"]
    versions = client.get("/v1/models/churn").json()["versions"]
    assert versions[0]["onnx_parity"]["passed"] is True  # stored with the version


def test_a_blocked_version_is_a_409_naming_the_step(client: TestClient) -> None:
    r = client.get("/v1/models/dated/versions/1/onnx")
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "onnx_blocked"
    assert "DatetimeParts" in body["detail"] and "blocked by step" in body["detail"]
    assert client.get("/v1/models/churn/versions/9/onnx").status_code == 404


def test_cli_export_then_import_round_trip(client: TestClient, tmp_path: Path) -> None:
    out = tmp_path / "churn.onnx"
    result = CliRunner().invoke(app, ["export", "churn:1", "--format", "onnx", "--out",
                                      str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["parity"]["passed"] and doc["size_bytes"] == out.stat().st_size > 0

    blocked = CliRunner().invoke(app, ["export", "dated", "--out", str(tmp_path / "d.onnx")])
    assert blocked.exit_code == 2
    assert "DatetimeParts" in blocked.output and not (tmp_path / "d.onnx").exists()
    unknown = CliRunner().invoke(app, ["export", "churn", "--format", "pmml", "--out",
                                       str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "Unknown export format 'pmml'" in unknown.output

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({
        "columns": [{"name": c, "kind": "numeric"} for c in ("a", "b")]
        + [{"name": "plan", "kind": "categorical"}], "classes": ["no", "yes"]}))
    result = CliRunner().invoke(app, ["import", "churn", str(out), "--schema", str(schema),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["version"] == 2
    missing = CliRunner().invoke(app, ["import", "churn", str(out)])
    assert missing.exit_code == 2 and "--schema" in missing.output

    X, _ = training_frame()
    rows = X.head(8).to_dict("records")
    v1 = client.post("/v1/models/churn/predict", json={"records": rows}).json()
    r = client.post("/v1/deployments/churn", json={"version": 2, "percent": 100})
    assert r.status_code == 200, r.text  # the imported graph takes all the traffic
    v2 = client.post("/v1/models/churn/predict", json={"records": rows}).json()
    assert (v1["version"], v2["version"]) == (1, 2)
    loaded = {m["version"]: m for m in client.get("/v1/models/churn").json()["loaded_here"]}
    assert loaded[2]["runtime"] == "onnxruntime"  # which runtime answered
    # churn:1 (runtime auto, no dataset: parity on built rows at best) stays on the lean path
    assert loaded[1]["runtime"] == "lean"
    assert v1["predictions"] == v2["predictions"]
    assert np.allclose([list(p.values()) for p in v1["probabilities"]],
                       [list(p.values()) for p in v2["probabilities"]], atol=1e-4)
