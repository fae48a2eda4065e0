"""A request's rows held as columns, as the Open Inference Protocol sends them (one tensor per
column): the lean path turns each column into its array directly, without building a record
per row and then taking every record apart again. Whoever needs records (the careful path,
the prediction log, drift samples, a pipeline that is not lean) reads them as a sequence of
records, built once on first use."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any, overload

import numpy as np

from core.store.shapes import Record


class Columns(Sequence[Record]):
    """`n` rows: column `names[j]` holds `data[j]` (a list of `n` plain values). Reads as the
    list of records `[{name: value, ...}, ...]` in the columns' order.

    `numbers` holds, for columns whose values are all numbers (no null), the same values as
    a 1-D float64 array (`number_array`), made once as the request was read: checking the
    values' types and making the lean path's array are then one numpy call, not a type check
    per value and a second pass later."""

    __slots__ = ("names", "data", "n", "numbers", "_records")

    def __init__(self, names: list[str], data: list[list[Any]], n: int,
                 numbers: dict[str, np.ndarray] | None = None) -> None:
        self.names = names
        self.data = data
        self.n = n
        self.numbers = numbers or {}
        self._records: list[Record] | None = None

    def records(self) -> list[Record]:
        """The rows as records (built once: two threads may both build it, equal lists)."""
        rec = self._records
        if rec is None:
            rec = self._records = list(map(dict, map(zip, repeat(self.names),
                                                     zip(*self.data, strict=True))))
        return rec

    def by_name(self) -> dict[str, list[Any]]:
        return dict(zip(self.names, self.data, strict=True))

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> Record: ...
    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...

    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        if isinstance(i, slice):
            if self._records is None and i.step is None:  # a few rows: only those
                start, stop, _ = i.indices(self.n)
                return [self[k] for k in range(start, stop)] if stop - start <= 16 \
                    else self.records()[i]
            return self.records()[i]
        if self._records is not None:
            return self._records[i]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return dict(zip(self.names, (d[i] for d in self.data), strict=True))

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Columns):
            other = other.records()
        return isinstance(other, list) and self.records() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Columns({self.n} rows: {', '.join(self.names)})"


def number_array(values: list[Any]) -> np.ndarray | None:
    """`values` as a float64 array when every one is a plain int or float (an infinity
    too: the lean path checks all columns at once); None otherwise (null, bools alone, text,
    a nested list, an integer beyond 64 bits...: the caller then looks at the values one by
    one and words what is wrong)."""
    try:
        a = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if a.ndim != 1 or a.dtype.kind not in "fiu":
        return None
    return a.astype(np.float64, copy=False)


def join(parts: Iterable[Sequence[Record]]) -> Sequence[Record]:
    """Several requests' rows as one (the batcher scores them in one call): columns stay
    columns when every part has the same columns in the same order, else records."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, Columns) and all(
            isinstance(p, Columns) and p.names == first.names for p in parts):
        data = [list(chain.from_iterable(p.data[j] for p in parts))  # type: ignore[union-attr]
                for j in range(len(first.names))]
        return Columns(first.names, data, sum(len(p) for p in parts))
    return list(chain.from_iterable(parts))


def stored(rows: Columns) -> dict[str, Any]:
    """How the prediction log keeps a request sent as columns: the columns as they came
    (written by orjson in one pass, no record per row; NaN as null). `stored_records` reads
    either form back."""
    return {"columns": rows.names, "data": rows.data}


def stored_records(value: Any) -> list[Record]:
    """A logged request's rows as records, whichever form they were kept in: a list of
    records (rows sent as records, and every row logged before columns were kept as such) or
    `stored`'s columns."""
    if isinstance(value, dict) and isinstance(value.get("columns"), list):
        names, data = value["columns"], value.get("data") or []
        return [dict(zip(names, row, strict=True)) for row in zip(*data, strict=True)]
    return list(value or [])

