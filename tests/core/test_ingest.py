"""Reading uploads: formats are sniffed, the same table is fingerprinted the same however it
was saved, and column and problem types are inferred with a reason."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.data.ingest import read_bytes
from core.data.profile import detect_problem_type, profile_frame
from core.errors import InvalidDataError

LIMIT = 10 * 2**20
TABLE = pd.DataFrame({"city": ["Zürich", "Genève", "Basel", "Bern"] * 10,
                      "amount": np.arange(40) * 1.5, "churn": ["yes", "no"] * 20})


def _csv(sep: str = ",", encoding: str = "utf-8") -> bytes:
    return TABLE.to_csv(index=False, sep=sep).encode(encoding)


@pytest.mark.parametrize("raw", [
    _csv(), _csv(";"), _csv("\t"), _csv("|"), b"\xef\xbb\xbf" + _csv(), _csv(encoding="cp1252"),
    _csv().replace(b"\n", b"\r\n"),
], ids=["comma", "semicolon", "tab", "pipe", "utf8-bom", "cp1252", "crlf"])
def test_csv_dialects_read_to_the_same_table_and_fingerprint(raw: bytes) -> None:
    reference = read_bytes(_csv(), "t.csv", max_bytes=LIMIT)
    result = read_bytes(raw, "t.csv", max_bytes=LIMIT)
    pd.testing.assert_frame_equal(result.frame, reference.frame)
    assert result.fingerprint == reference.fingerprint


def test_parquet_upload_matches_its_csv() -> None:
    buf = io.BytesIO()
    TABLE.to_parquet(buf, index=False)
    parquet = read_bytes(buf.getvalue(), "t.parquet", max_bytes=LIMIT)
    assert parquet.fingerprint == read_bytes(_csv(), "t.csv", max_bytes=LIMIT).fingerprint


def test_corrupt_parquet_is_refused() -> None:
    with pytest.raises(InvalidDataError, match="not a readable Parquet file"):
        read_bytes(b"PAR1garbage", "t.parquet", max_bytes=LIMIT)


def test_column_kinds_are_inferred_with_reasons() -> None:
    n = 60
    frame = pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),
        "signup": pd.date_range("2024-01-01", periods=n).astype(str),
        "plan": ["basic", "pro", "team"] * 20,
        "active": ["yes", "no"] * 30,
        "spend": np.linspace(0, 100, n),
        "comment": [f"customer {i} said the product was fine overall" for i in range(n)],
        "ticket": [f"T-{i:05d}" for i in range(n)],
    })
    kinds = {p.name: p.kind for p in profile_frame(frame)}
    assert kinds == {"customer_id": "id", "signup": "datetime", "plan": "categorical",
                     "active": "boolean", "spend": "numeric", "comment": "text", "ticket": "id"}


@pytest.mark.parametrize(("values", "override", "task", "reason"), [
    (["a", "b"] * 10, None, "binary", "exactly two values"),
    ([0, 1] * 10, None, "binary", "exactly two values"),
    (["x", "y", "z"] * 10, None, "multiclass", "3 distinct labels"),
    ([1, 2, 3] * 100, None, "multiclass", "3 distinct whole numbers"),
    (list(np.linspace(0, 1, 50)), None, "regression", "50 distinct decimal numbers"),
    ([1, 2, 3] * 100, "regression", "regression", "set by you"),
    (list(range(50)), "classification", "multiclass", "set by you"),
])
def test_problem_type_is_detected_with_reason(values, override, task, reason) -> None:
    problem = detect_problem_type(pd.Series(values, name="y"), override)
    assert problem.task == task
    assert reason in problem.reason


def test_regression_on_text_labels_is_refused() -> None:
    with pytest.raises(InvalidDataError, match="not numeric"):
        detect_problem_type(pd.Series(["a", "b", "c"], name="y"), "regression")
