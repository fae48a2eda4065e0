"""Zero-shot portfolios: configurations learned offline, tried first by the search.

`portfolio.json` (next to this module, shipped as package data) holds, per task kind, an
ordered list of (estimator, parameters) chosen by `bench/portfolio_build.py` on a meta-training
suite of tables disjoint from the evaluation suite (`bench/automl_suite.py`): greedily, the
configuration that most lowers the mean normalised regret over the meta tasks, then the one
that best complements it, and so on (FLAML's `flaml.default`, AutoGluon's portfolios).

The file is data and is never trusted to be right: a file of another format or version is
refused (`PortfolioError`, the search then runs without it and says so in the log), and an
entry naming an estimator, a parameter or a value outside the catalogue's space is dropped
with a logged note. Nothing here can stop a search.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from core.automl.catalog import CATALOG, EstimatorSpec
from core.errors import WorkbenchError
from core.store.shapes import Params

log = logging.getLogger(__name__)

PORTFOLIO_PATH = Path(__file__).with_name("portfolio.json")
FORMAT = "workbench-automl-portfolio"
VERSION = 1
KINDS = ("binary", "multiclass", "regression")


class PortfolioError(WorkbenchError):
    """The portfolio file is unreadable or not ours: the search runs without it."""


@dataclass(frozen=True)
class Entry:
    estimator: str
    params: Params


def contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether `value` is one `dist` can produce (type included: 1.5 is no integer, True no
    number), so an enqueued configuration is one the sampler itself could have asked."""
    if isinstance(dist, CategoricalDistribution):
        return any(type(c) is type(value) and c == value for c in dist.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(dist, IntDistribution) and not (isinstance(value, int)
                                                  or float(value).is_integer()):
        return False
    if isinstance(dist, IntDistribution | FloatDistribution):
        return dist.low <= value <= dist.high
    return False


def fit_to_space(params: Mapping[str, Any], space: Mapping[str, BaseDistribution]
                 ) -> Params | None:
    """`params` in the types of `space` (JSON has no int/float distinction), or None when
    one of them is not a searched parameter or lies outside its distribution."""
    out: Params = {}
    for name, value in params.items():
        dist = space.get(name)
        if dist is None or not contains(dist, value):
            return None
        out[name] = int(value) if isinstance(dist, IntDistribution) else (
            float(value) if isinstance(dist, FloatDistribution) else value)
    return out


def parse(document: Any, where: str = "portfolio") -> dict[str, list[Entry]]:
    """The portfolios by task kind from a loaded JSON document; entries outside the
    catalogue are dropped with a logged note. A document of another format, version or
    shape is refused with a `PortfolioError` saying what is wrong."""
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise PortfolioError(f"{where} is not a workbench AutoML portfolio (expected "
                             f"\"format\": \"{FORMAT}\").")
    if document.get("version") != VERSION:
        raise PortfolioError(f"{where} has version {document.get('version')!r}; this "
                             f"workbench reads version {VERSION}. Rebuild it with "
                             "bench/portfolio_build.py.")
    portfolios = document.get("portfolios")
    if not isinstance(portfolios, Mapping):
        raise PortfolioError(f"{where} has no \"portfolios\" mapping of task kind to entries.")
    out: dict[str, list[Entry]] = {}
    for kind, entries in portfolios.items():
        if kind not in KINDS or not isinstance(entries, Sequence) or isinstance(entries, str):
            log.warning("%s: portfolio %r ignored (kinds: %s; a list of entries).", where,
                        kind, ", ".join(KINDS))
            continue
        out[kind] = [e for i, raw in enumerate(entries)
                     if (e := _entry(raw, kind, f"{where} {kind}[{i}]")) is not None]
    return out


def _entry(raw: Any, kind: str, where: str) -> Entry | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("params"), Mapping):
        log.warning("%s dropped: an entry needs \"estimator\" and a \"params\" mapping.", where)
        return None
    spec = CATALOG.get(str(raw.get("estimator")))
    if spec is None or kind not in spec.tasks:
        log.warning("%s dropped: estimator %r is not in the catalogue for %s.", where,
                    raw.get("estimator"), kind)
        return None
    params = fit_to_space(raw["params"], spec.space)
    if params is None:
        log.warning("%s dropped: %s parameters %s are not all inside its search space.",
                    where, spec.key, dict(raw["params"]))
        return None
    return Entry(spec.key, params)


def load(path: Path | None = None) -> dict[str, list[Entry]]:
    """The shipped portfolio (or the one at `path`), checked against the catalogue."""
    path = PORTFOLIO_PATH if path is None else path
    return _load(str(path))


@cache
def _load(path: str) -> dict[str, list[Entry]]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PortfolioError(f"The portfolio {path} could not be read: {exc}") from exc
    return parse(document, where=Path(path).name)


def seeds(task: str, estimators: Sequence[str], path: Path | None = None) -> list[Entry]:
    """The portfolio's configurations for `task`, in order, restricted to `estimators` (the
    families this search may use); [] when the file is refused (logged, never raised)."""
    try:
        portfolio = load(path)
    except PortfolioError as exc:
        log.warning("%s The search starts from the catalogue's defaults.", exc.message)
        return []
    allowed = set(estimators)
    return [e for e in portfolio.get(str(task), []) if e.estimator in allowed]


def points(specs: Sequence[EstimatorSpec], task: str, path: Path | None = None
           ) -> list[tuple[str, Params]]:
    """(estimator, params) the search enqueues first for `task`: the portfolio's entries in
    order, for the families searched (`specs`) and inside their spaces as the user may have
    narrowed them (an entry outside is skipped with a logged note)."""
    by_key = {s.key: s for s in specs}
    out: list[tuple[str, Params]] = []
    for entry in seeds(task, list(by_key), path):
        params = fit_to_space(entry.params, by_key[entry.estimator].space)
        if params is None:
            log.info("portfolio entry %s %s skipped: outside this search's space.",
                     entry.estimator, entry.params)
            continue
        out.append((entry.estimator, params))
    return out
