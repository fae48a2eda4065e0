"""The run filter syntax: `params.KEY OP VALUE`, `metrics.KEY OP NUMBER`, `tags.KEY OP VALUE`.

OP is one of `=`, `!=`, `>`, `>=`, `<`, `<=` (`==` reads as `=`). VALUE may be quoted with
'…' or "…". Several filters must all hold. A filter only matches runs that logged the key.
Metrics compare their latest value (highest step) as numbers; params compare as text for
`=`/`!=` (a number also matches the same number written otherwise: `3` matches `3.0`) and as
numbers for the orderings (runs whose value is not a number never match); tags take `=` and
`!=` only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, exists, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from core.store import Run, RunLatestMetric, RunParam, RunTag
from core.tracking.checks import BadInput, as_number, check_key

Kind = Literal["params", "metrics", "tags"]
_FILTER = re.compile(r"\s*(params|metrics|tags)\.(.+?)\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*")
_OPS = {"=": "__eq__", "==": "__eq__", "!=": "__ne__", ">": "__gt__", ">=": "__ge__",
        "<": "__lt__", "<=": "__le__"}
EXAMPLE = "e.g. params.max_depth=3, metrics.roc_auc>0.8 or tags.team!=ops"


@dataclass(frozen=True)
class RunFilter:
    kind: Kind
    key: str
    op: str
    value: str

    def clause(self) -> ColumnElement[bool]:
        """An EXISTS over the run's params / latest metrics / tags."""
        return _CLAUSES[self.kind](self)


def parse_filter(text: Any) -> RunFilter:
    """One filter from its text; InputError (naming the filter and the syntax) otherwise."""
    m = _FILTER.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise BadInput(f"filter: {text!r} is not a filter; write KIND.KEY OP VALUE with KIND "
                       f"params, metrics or tags and OP one of = != > >= < <= ({EXAMPLE}).")
    kind, key, op, value = m.groups()
    check_key(key, f"filter {text!r}")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    op = "=" if op == "==" else op
    f = RunFilter(kind, key, op, value)  # type: ignore[arg-type]
    numeric = as_number(value)
    if kind == "metrics" and numeric is None:
        raise BadInput(f"filter {text!r}: metrics compare with a number, not {value!r}.")
    if kind == "params" and op not in ("=", "!=") and numeric is None:
        raise BadInput(f"filter {text!r}: {op} compares params as numbers; {value!r} is not "
                       "one (use = or != for text).")
    if kind == "tags" and op not in ("=", "!="):
        raise BadInput(f"filter {text!r}: tags take = or != only.")
    return f


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    return getattr(column, _OPS[op])(value)


def _param_clause(f: RunFilter) -> ColumnElement[bool]:
    num = as_number(f.value)
    if f.op in ("=", "!="):
        same = RunParam.value == f.value
        if num is not None:
            # NULL-safe: a word's value_num is NULL, and NOT (NULL) would match nothing
            same = or_(same, and_(RunParam.value_num.is_not(None), RunParam.value_num == num))
        match = same if f.op == "=" else not_(same)
    else:
        match = _compare(RunParam.value_num, f.op, num)
    return exists(select(RunParam.id).where(RunParam.run_id == Run.id, RunParam.key == f.key,
                                            match))


def _metric_clause(f: RunFilter) -> ColumnElement[bool]:
    return exists(select(RunLatestMetric.run_id).where(
        RunLatestMetric.run_id == Run.id, RunLatestMetric.key == f.key,
        _compare(RunLatestMetric.value, f.op, as_number(f.value))))


def _tag_clause(f: RunFilter) -> ColumnElement[bool]:
    return exists(select(RunTag.run_id).where(
        RunTag.run_id == Run.id, RunTag.key == f.key, _compare(RunTag.value, f.op, f.value)))


_CLAUSES = {"params": _param_clause, "metrics": _metric_clause, "tags": _tag_clause}


def all_of(filters: list[RunFilter]) -> ColumnElement[bool] | None:
    return and_(*(f.clause() for f in filters)) if filters else None
