"""The Train page's search-space overrides: an expander per chosen estimator with its
parameters' allowed ranges (from the catalogue). A range left at the catalogue's bounds, or no
choice picked, is no override; low = high fixes the value. The request checks the result
like any other (`TrainingRequest.search_space`)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from core.automl.catalog import CATALOG, describe


def _numeric(key: str, name: str, dist: BaseDistribution) -> Any:
    integer = isinstance(dist, IntDistribution)
    cast = int if integer else float
    fmt = None if integer else "%g"
    c1, c2 = st.columns(2)
    low = c1.number_input(f"{name}: low", min_value=cast(dist.low), max_value=cast(dist.high),
                          value=cast(dist.low), step=1 if integer else None, format=fmt,
                          key=f"train_space_{key}_{name}_low")
    high = c2.number_input(f"{name}: high", min_value=cast(dist.low),
                           max_value=cast(dist.high), value=cast(dist.high),
                           step=1 if integer else None, format=fmt,
                           key=f"train_space_{key}_{name}_high")
    if (low, high) == (dist.low, dist.high):
        return None
    return low if low == high else {"low": low, "high": high}


def _choices(key: str, name: str, dist: CategoricalDistribution) -> Any:
    picked = st.multiselect(f"{name} (empty = all)", list(dist.choices),
                            key=f"train_space_{key}_{name}", format_func=str)
    if not picked or len(picked) == len(dist.choices):
        return None
    return picked[0] if len(picked) == 1 else picked


def space_overrides(keys: list[str]) -> dict[str, dict[str, Any]] | None:
    """Draw an expander per estimator in `keys`; the overrides the user set, or None."""
    space: dict[str, dict[str, Any]] = {}
    for key in keys:
        spec = CATALOG[key]
        with st.expander(f"Search space of {spec.label}"):
            st.caption("Narrow a range or fix a value (low = high); parameters left as they "
                       "are keep the catalogue's range. Searched by default: "
                       + ", ".join(f"{n} {describe(d)}" for n, d in spec.space.items()) + ".")
            for name, dist in spec.searchable().items():
                value = (_choices(key, name, dist) if isinstance(dist, CategoricalDistribution)
                         else _numeric(key, name, dist))
                if value is not None:
                    space.setdefault(key, {})[name] = value
    return space or None
