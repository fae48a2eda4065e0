"""Preprocessing per estimator family, built from the input schema as a ColumnTransformer.

Families differ in what their estimators need: linear models and k-NN want scaled numbers and
one-hot categories; tree ensembles want ordinal codes and no scaling; boosters with native
categories ("native": LightGBM, CatBoost) want the tree family's codes, category columns first
so the booster knows which they are from their count alone. Everything here is
fitted inside each CV fold, since it is a step of the pipeline that CV clones.
"""

from __future__ import annotations

from typing import Any, Literal

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from core.features.kinds import DROPPED_KINDS, Encoding, encoding_of
from core.features.transformers import CategoricalCleaner, DatetimeParts
from core.store.shapes import SchemaColumn

Family = Literal["linear", "tree", "native", "deep", "sequence"]
MAX_ONEHOT_CATEGORIES = 30
MIN_CATEGORY_FREQUENCY = 5


def _numeric(family: Family) -> Pipeline:
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median",
                                                              add_indicator=True))]
    if family == "linear":
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _categorical(family: Family) -> Pipeline:
    if family == "linear":
        encoder: Any = OneHotEncoder(handle_unknown="infrequent_if_exist",
                                     max_categories=MAX_ONEHOT_CATEGORIES,
                                     min_frequency=MIN_CATEGORY_FREQUENCY, sparse_output=False)
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                 encoded_missing_value=-1, max_categories=255,
                                 min_frequency=MIN_CATEGORY_FREQUENCY)
    return Pipeline([("clean", CategoricalCleaner()), ("encode", encoder)])


def _datetime(family: Family) -> Pipeline:
    steps: list[tuple[str, Any]] = [("parts", DatetimeParts()),
                                    ("impute", SimpleImputer(strategy="median"))]
    if family == "linear":
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def used_columns(schema: list[SchemaColumn]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Group schema columns by how they are encoded (core.features.kinds.encoding_of); return
    also the dropped ones with reasons."""
    groups: dict[str, list[str]] = {e.value: [] for e in Encoding}
    dropped: dict[str, str] = {}
    for col in schema:
        encoding = encoding_of(col)
        if encoding is None:
            dropped[col["name"]] = DROPPED_KINDS[col["kind"]]
        else:
            groups[encoding.value].append(col["name"])
    return groups, dropped


MAKERS = {Encoding.NUMBER: _numeric, Encoding.CATEGORY: _categorical,
          Encoding.DATE_PARTS: _datetime}


def _networks(groups: dict[str, list[str]], family: Family) -> ColumnTransformer:
    """For the PyTorch networks, which preprocess themselves (imputation, scaling, category
    vocabularies for embeddings): the used columns as a frame whose names say their kind
    (`numeric__x`, `category__plan`, `datetime__when__year`), categories as text; the
    "sequence" family also passes each date through raw (`time__when`) to order the rows."""
    parts: list[tuple[str, Any, list[str]]] = [
        ("numeric", "passthrough", groups[Encoding.NUMBER.value]),
        ("category", CategoricalCleaner(), groups[Encoding.CATEGORY.value]),
        ("datetime", DatetimeParts(), groups[Encoding.DATE_PARTS.value])]
    if family == "sequence":
        parts.append(("time", "passthrough", groups[Encoding.DATE_PARTS.value]))
    return ColumnTransformer([p for p in parts if p[2]], remainder="drop",
                             verbose_feature_names_out=True).set_output(transform="pandas")


def categorical_count(schema: list[SchemaColumn]) -> int:
    """How many leading output columns of the "native" family hold category codes (the
    OrdinalEncoder writes one column per category column, whatever the data)."""
    groups, _ = used_columns(schema)
    return len(groups[Encoding.CATEGORY.value])


def build_preprocessor(schema: list[SchemaColumn], family: Family) -> ColumnTransformer:
    groups, _ = used_columns(schema)
    if family in ("deep", "sequence"):
        return _networks(groups, family)
    kinds = list(groups)
    if family == "native":  # category codes first: see categorical_count
        kinds.sort(key=lambda kind: kind != Encoding.CATEGORY.value)
    transformers = [(kind, MAKERS[Encoding(kind)](family), groups[kind])
                    for kind in kinds if groups[kind]]
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
