"""One way to show a moment, on every page, table and chart axis: a 24-hour clock with its
time zone, "2026-12-02 16:11 UTC". Every time the workbench stores is UTC (SQLite hands them
back naive), and a chart left to the browser would draw 16:11 as "04:11" in the reader's zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import altair as alt
import pandas as pd

DATE_TIME = "%Y-%m-%d %H:%M"
NO_TIME = "–"
ZONE = "UTC"
# Vega expressions for chart axes: the clock in UTC, and the date at midnight so a window of
# several days still says which day a tick belongs to.
_AXIS_LABEL = ("utchours(datum.value) == 0 && utcminutes(datum.value) == 0 "
               "? utcFormat(datum.value, '%d %b') : utcFormat(datum.value, '%H:%M')")


def as_utc(moment: datetime) -> datetime:
    """The same instant as an aware UTC datetime (a naive one is UTC already: ours all are)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def when(moment: datetime | str | None, *, seconds: bool = False) -> str:
    """"2026-12-02 16:11 UTC" (with `seconds`, "16:11:05 UTC"); "–" for no time.

    Accepts what the pages hold: datetimes from the public models, ISO text from their JSON
    dumps, pandas timestamps (NaT is no time)."""
    if moment is None or (isinstance(moment, float) and moment != moment):
        return NO_TIME
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment  # not a time after all: show it as written
    if moment != moment:  # NaT
        return NO_TIME
    fmt = DATE_TIME + (":%S" if seconds else "")
    return f"{as_utc(moment).strftime(fmt)} {ZONE}"


def times_as_text(frame: pd.DataFrame, columns: Iterable[str], *,
                  seconds: bool = False) -> pd.DataFrame:
    """A copy of `frame` whose time `columns` read as `when` writes them (a table cell left to
    the browser shows neither the zone nor, in some locales, a 24-hour clock). The text sorts
    in time order."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = [when(v, seconds=seconds) for v in out[column]]
    return out


def utc_column(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """A copy of `frame` with `column` as aware UTC timestamps, so a chart receives the instant
    with its offset (naive text is read by the browser as local time)."""
    out = frame.copy()
    out[column] = pd.to_datetime(out[column], utc=True)
    return out


def time_x(field: str, title: str | None = f"time ({ZONE})") -> alt.X:
    """An x encoding for a time field: UTC scale, 24-hour labels ("16:11"), the date at
    midnight ("02 Dec")."""
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc"),
                 axis=alt.Axis(labelExpr=_AXIS_LABEL, labelOverlap=True))


def time_tooltip(field: str, title: str = "time") -> alt.Tooltip:
    """A tooltip entry showing the full time as `when` writes it."""
    return alt.Tooltip(f"{field}:T", title=title, format=f"{DATE_TIME}:%S {ZONE}",
                       formatType="utc")

