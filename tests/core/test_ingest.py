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


# -- hostile but honest data: codes with leading zeros, decimal commas, mixed time zones -------

def test_zip_codes_keep_their_leading_zeros() -> None:
    raw = b"zip,amount,plan\n02134,10,a\n10001,20,b\n00501,30,a\n,40,b\n"
    result = read_bytes(raw, "t.csv", max_bytes=LIMIT)
    assert result.frame["zip"].tolist()[:3] == ["02134", "10001", "00501"]
    assert result.frame["zip"].isna().iloc[3]
    assert pd.api.types.is_integer_dtype(result.frame["amount"])  # plain numbers stay numbers
    assert any("'zip'" in n and "leading zeros" in n for n in result.notes)
    kinds = {p.name: p.kind for p in profile_frame(result.frame)}
    assert kinds["zip"] != "numeric"


def test_decimal_comma_after_semicolons_is_read_as_numbers() -> None:
    raw = "name;price;qty\nWürfel;17,99;3\nBall;3,5;1\nSeil;-0,25;2\nTuch;4;5\n".encode("cp1252")
    result = read_bytes(raw, "t.csv", max_bytes=LIMIT)
    assert result.frame["price"].tolist() == [17.99, 3.5, -0.25, 4.0]
    assert pd.api.types.is_integer_dtype(result.frame["qty"])
    assert result.frame["name"].tolist()[0] == "Würfel"
    assert any("',' as the decimal mark" in n and "'price'" in n for n in result.notes)
    # the same table written with decimal points is the same dataset
    points = b"name;price;qty\nW\xfcrfel;17.99;3\nBall;3.5;1\nSeil;-0.25;2\nTuch;4;5\n"
    assert read_bytes(points, "t.csv", max_bytes=LIMIT).fingerprint == result.fingerprint


def test_decimal_mark_is_not_guessed_when_the_file_mixes_conventions() -> None:
    raw = b"a;b\n1,5;1.5\n2,5;2.5\n"
    result = read_bytes(raw, "t.csv", max_bytes=LIMIT)
    assert result.frame["b"].tolist() == [1.5, 2.5] and result.notes == []
    forced = read_bytes(b"a;b\n1,5;x\n2,5;y\n", "t.csv", max_bytes=LIMIT, decimal=".")
    assert forced.frame["a"].tolist() == ["1,5", "2,5"]
    chosen = read_bytes(b"a;b\n1,5;x\n2,5;y\n", "t.csv", max_bytes=LIMIT, decimal=",")
    assert chosen.frame["a"].tolist() == [1.5, 2.5]


def test_a_date_column_mixing_time_zones_is_a_datetime_column() -> None:
    raw = (b"when,x\n2024-01-01T10:00:00+01:00,1\n2024-01-02T10:00:00-05:00,2\n"
           b"2024-01-03T10:00:00Z,3\n2024-01-04 10:00:00,4\n")
    frame = read_bytes(raw, "t.csv", max_bytes=LIMIT).frame
    kinds = {p.name: p.kind for p in profile_frame(frame)}
    assert kinds["when"] == "datetime"
    from core.features.transformers import DatetimeParts

    parts = DatetimeParts().fit_transform(frame[["when"]])
    assert parts[:, 4].tolist() == [9.0, 15.0, 10.0, 10.0]  # hours, normalised to UTC
