"""Prediction CSVs are opened in spreadsheets: text cells a spreadsheet would run as a formula
get a leading apostrophe (OWASP "CSV Injection"); numbers stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression
from sqlmodel import Session
from typer.testing import CliRunner

from app.cli import app as cli
from core.data.export import safe_csv_bytes
from core.registry import register_version

runner = CliRunner()
SCHEMA = [{"name": "x", "kind": "numeric", "dtype": "float64"}]
EVIL = ["=HYPERLINK(\"http://x\")", "@SUM(A1)"]


def _cells(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


def test_text_cells_are_neutralised_and_numbers_are_not() -> None:
    frame = pd.DataFrame({
        "label": ["=1+2", "+cmd", "-2+3", "@x", "\tz", "\r=1", "ok", "-1", "+2.5e3", None],
        "score": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, -10.0],
        "count": list(range(-5, 5)),
        "=head": ["a"] * 10,
    })
    rows = _cells(safe_csv_bytes(frame))
    assert rows[0] == ["label", "score", "count", "'=head"]
    assert [r[0] for r in rows[1:]] == ["'=1+2", "'+cmd", "'-2+3", "'@x", "'\tz", "'\r=1",
                                        "ok", "-1", "+2.5e3", ""]
    assert [r[1] for r in rows[1:]][:3] == ["-1.5", "2.0", "-3.0"]  # numbers untouched
    assert [r[2] for r in rows[1:]][:2] == ["-5", "-4"]


def _register_formula_labels(session: Session) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=80)})
    y = np.where(X["x"] > 0, EVIL[0], EVIL[1])
    register_version(LogisticRegression().fit(X, y), session=session, name="evil",
                     task="binary", target="y", input_schema=SCHEMA, classes=sorted(EVIL))
    register_version(LinearRegression().fit(X, X["x"] * 3), session=session, name="neg",
                     task="regression", target="y", input_schema=SCHEMA)


def test_cli_predict_writes_formula_labels_escaped_and_negative_numbers_as_numbers(
        session: Session, tmp_path: Path) -> None:
    _register_formula_labels(session)
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"x": [-2.0, -1.0, 1.0, 2.0]}).to_csv(rows, index=False)
    out = tmp_path / "p.csv"
    result = runner.invoke(cli, ["predict", "evil", str(rows), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cells = _cells(out.read_bytes())
    assert {r[0] for r in cells[1:]} == {"'" + v for v in EVIL}
    assert all(float(v) >= 0 for r in cells[1:] for v in r[1:])  # probabilities: plain numbers
    result = runner.invoke(cli, ["predict", "neg", str(rows), "--out", str(out)])
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(out)["prediction"]
    assert preds.dtype == float and (preds < 0).sum() == 2  # -6.0 and -3.0, not '-6.0
