"""The lean path's encoder tables: the fitted encoder's own output for every batch, whether
all its values are known (looked up in one call), or some are missing or never seen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from core.deploy.fastpath import _table_encoder

TRAIN = pd.DataFrame({"plan": ["basic", "pro", "pro", "plus", "basic", "basic", None],
                      "seats": [1, 2, 2, 3, 1, 1, 2]})

ENCODERS = {
    "onehot-ignore": lambda: OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    "onehot-drop-first": lambda: OneHotEncoder(drop="first", handle_unknown="ignore",
                                               sparse_output=False),
    "onehot-infrequent": lambda: OneHotEncoder(handle_unknown="infrequent_if_exist",
                                               min_frequency=2, sparse_output=False),
    "ordinal-unknown": lambda: OrdinalEncoder(handle_unknown="use_encoded_value",
                                              unknown_value=-1),
}

BATCHES = {
    "all known": [["pro", 2], ["basic", 1], ["plus", 3], ["pro", 1]],
    "one row": [["plus", 3]],
    "numbers as floats": [["basic", 2.0], ["pro", 1.0]],
    "unseen among known": [["pro", 2], ["gold", 1], ["basic", 9]],
    # NaN, not None: sklearn takes None for an unknown value, NaN for the fitted missing one
    # (so `_agrees` keeps such a pipeline off the lean path, whose tables read both as missing)
    "missing among known": [[float("nan"), 2], ["pro", 1], [float("nan"), 3]],
}


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", ENCODERS)
def test_table_matches_the_encoder(kind: str, batch: str) -> None:
    enc = ENCODERS[kind]().fit(TRAIN)
    rows = pd.DataFrame(BATCHES[batch], columns=["plan", "seats"], dtype=object)
    fn = _table_encoder(enc)
    want = enc.transform(rows)
    X = rows.to_numpy(dtype=object)
    np.testing.assert_array_equal(fn(X), want)
    out = np.full(want.shape, np.nan)
    fn.into([X[:, 0], X[:, 1]], out)  # the lean path's way: one array per column
    np.testing.assert_array_equal(out, want)


def test_a_strict_encoder_refuses_an_unseen_value_among_known_ones() -> None:
    enc = OneHotEncoder(handle_unknown="error", sparse_output=False).fit(TRAIN)
    fn = _table_encoder(enc)
    X = np.array([["pro", 2], ["gold", 1]], dtype=object)
    with pytest.raises(ValueError, match="unknown categories"):
        fn(X)
    np.testing.assert_array_equal(fn(X[:1]), enc.transform(pd.DataFrame(
        X[:1], columns=["plan", "seats"])))
