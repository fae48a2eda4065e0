"""Column kinds are decided in one place (core.features.kinds) and every reader agrees with it;
a column mismatch names the missing and the unexpected columns in one message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.profile import input_schema, profile_column
from core.errors import SchemaMismatchError
from core.features.kinds import (
    ColumnKind,
    Encoding,
    encoding_of,
    holds_booleans,
    holds_datetimes,
    holds_numbers,
    holds_text,
    scored_as_number,
)
from core.features.preprocess import build_preprocessor, used_columns
from core.features.schema import align_to_schema, check_columns
from core.store import Database

# (kind, stored dtype) -> how a model reads the column
ENCODINGS = [
    ("numeric", "float64", Encoding.NUMBER),
    ("numeric", "Int64", Encoding.NUMBER),
    ("boolean", "bool", Encoding.NUMBER),
    ("boolean", "boolean", Encoding.NUMBER),
    ("boolean", "int64", Encoding.NUMBER),  # 0/1
    ("boolean", "float64", Encoding.NUMBER),
    ("boolean", "object", Encoding.CATEGORY),  # "yes"/"no"
    ("boolean", "str", Encoding.CATEGORY),
    ("boolean", "string", Encoding.CATEGORY),
    ("boolean", "category", Encoding.CATEGORY),
    ("categorical", "int64", Encoding.CATEGORY),
    ("datetime", "object", Encoding.DATE_PARTS),
    ("datetime", "datetime64[ns, UTC]", Encoding.DATE_PARTS),
    ("id", "int64", None),
    ("text", "object", None),
]


@pytest.mark.parametrize(("kind", "dtype", "encoding"), ENCODINGS)
def test_preprocessing_and_alignment_read_a_column_the_same_way(kind: str, dtype: str,
                                                                encoding: Encoding | None
                                                                ) -> None:
    col = {"name": "c", "kind": kind, "dtype": dtype}
    assert encoding_of(col) == encoding
    assert scored_as_number(col) == (encoding == Encoding.NUMBER)
    groups, dropped = used_columns([col])
    assert ("c" in dropped) == (encoding is None)
    if encoding is not None:
        assert groups[encoding.value] == ["c"]
    values = {Encoding.NUMBER: [1, 0], Encoding.DATE_PARTS: ["2024-01-02", "2024-02-03"]}
    frame = pd.DataFrame({"c": values.get(encoding, ["yes", "no"])})
    aligned = align_to_schema(frame, [col])["c"]
    if encoding == Encoding.NUMBER:
        assert aligned.dtype == np.float64
    elif encoding == Encoding.CATEGORY:
        assert aligned.dtype == object


def test_stored_values_booleans_are_not_numbers() -> None:
    assert holds_numbers(pd.Series([1.5, None])) and holds_numbers(pd.Series([1], dtype="Int64"))
    assert not holds_numbers(pd.Series([True, False]))
    assert holds_booleans(pd.Series([True, False]))
    assert holds_datetimes(pd.Series(pd.to_datetime(["2024-01-01"], utc=True)))
    assert holds_text(pd.Series(["a", None])) and holds_text(pd.Series(["a"], dtype="string"))
    assert not holds_text(pd.Series([1.0]))


def test_profiles_use_the_kinds_and_store_plain_strings() -> None:
    flags = pd.Series(["yes", "no"] * 10, name="flag")
    assert profile_column(flags).kind is ColumnKind.BOOLEAN
    assert profile_column(pd.Series([0, 1] * 10, name="f01")).kind is ColumnKind.BOOLEAN
    schema = input_schema(pd.DataFrame({"flag": flags, "x": np.arange(20.0)}))
    assert [type(c["kind"]) for c in schema] == [str, str]  # stored JSON stays as it was
    assert profile_column(flags).to_dict()["kind"] == "boolean"


def test_a_yes_no_column_stored_as_a_category_trains_as_a_category() -> None:
    """The rules used to disagree here: preprocessing imputed it as a number and failed."""
    X = pd.DataFrame({"flag": pd.Series(["yes", "no", None] * 10, dtype="category"),
                      "x": np.arange(30.0)})
    schema = input_schema(X)
    assert schema[0]["kind"] == "boolean" and schema[0]["dtype"] == "category"
    out = build_preprocessor(schema, "linear").fit_transform(align_to_schema(X, schema))
    assert out.shape[0] == 30 and np.isfinite(out).all()


def test_a_mismatch_names_the_missing_and_the_unexpected_columns_at_once() -> None:
    schema = [{"name": n, "kind": "numeric", "dtype": "float64"}
              for n in ("alcohol", "proline", "hue")]
    sent = pd.DataFrame({"alcohol": [13.0], "Proline": [1000.0], "hue ": [1.0], "id": [7]})
    with pytest.raises(SchemaMismatchError) as err:
        align_to_schema(sent, schema)
    message = err.value.message
    assert "missing from the input: 'proline', 'hue'" in message
    assert "not trained on: 'Proline', 'hue ', 'id'" in message
    assert "Add them (empty values are allowed)" in message


def test_extra_columns_alone_are_ignored() -> None:
    schema = [{"name": "a", "kind": "numeric", "dtype": "float64"}]
    out = align_to_schema(pd.DataFrame({"extra": ["x"], "a": ["1.5"]}), schema)
    assert list(out.columns) == ["a"] and out["a"].tolist() == [1.5]


def test_long_lists_are_counted_not_spelled_out() -> None:
    expected = [f"c{i}" for i in range(30)]
    with pytest.raises(SchemaMismatchError) as err:
        check_columns(expected, ["other"])
    assert "'c19' and 10 more" in err.value.message and "'c20'" not in err.value.message
    assert "not trained on: 'other'" in err.value.message


def test_the_simulator_names_the_tables_unexpected_columns_too(db: Database) -> None:
    from core.deploy.simulator import simulate
    from tests.factories import WINE, register

    register("churn")
    wine = pd.read_csv(WINE).rename(columns={"alcohol": "a"})
    with pytest.raises(SchemaMismatchError) as err:
        simulate("churn", wine, 10, db=db)
    message = err.value.message
    assert "lacks 2 of the 3 columns churn:1 needs ('b', 'plan')" in message
    assert "not trained on: 'malic_acid'" in message and "'a'," not in message
