"""Date columns in a training table: warn before a date becomes a predictor, and turn the
user's choice (leave dates out, validate in time order, or use them as features) into a
training request's `time_column` and `exclude`.

Why this exists (issue 14, defect 8): a visit date split into year/month/day parts became a
model's top feature. Rows recorded over time often drift (a new form, a new clinic, a
season), so the date predicts the target through the order the rows were collected in, and
shuffled cross-validation rewards it; the score is then a row-order artefact that does not
hold for new dates, which lie outside every date seen in training.

The pages (Data, Train) show `date_warning` and offer `DateUse`; the CLI and the API keep
their explicit `--time-column` / `exclude` options (a job's note names the date either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.automl.train import MARKET_COLUMNS  # the same test as training's detection
from core.features.finance import find_column
from core.features.kinds import date_columns

__all__ = ["DatePlan", "DateUse", "date_columns", "date_warning", "default_date_use",
           "plan_dates", "preferred_time_column"]


class DateUse(StrEnum):
    """What training does with a table's date columns."""

    LEAVE_OUT = "leave_out"     # not a feature; validation is shuffled as usual
    TIME_ORDER = "time_order"   # the time column orders validation; no date is a feature
    FEATURE = "feature"         # date parts (year, month, day, weekday, hour) are features

    def describe(self, time_column: str | None = None) -> str:
        return {
            DateUse.LEAVE_OUT: "Leave the dates out of the model (recommended)",
            DateUse.TIME_ORDER: f"Validate in time order by {time_column or 'the date'} "
                                "(train on the past, test on the later rows)",
            DateUse.FEATURE: "Use the dates as predictors (only if the date itself causes "
                             "the outcome, such as a season)",
        }[self]


@dataclass(frozen=True)
class DatePlan:
    """The request fields a `DateUse` sets: the time column (or None) and the columns to
    leave out of the features."""

    time_column: str | None
    exclude: tuple[str, ...]


def date_warning(dates: list[str]) -> str | None:
    """The plain-words warning a table with date columns gets; None without dates."""
    if not dates:
        return None
    names = ", ".join(repr(d) for d in dates)
    one = len(dates) == 1
    return (f"{'Column' if one else 'Columns'} {names} {'holds dates' if one else 'hold dates'}. "
            "Used as a predictor, a date often scores well only because of the order the rows "
            "were collected in, and new rows have dates the model never saw. Leave "
            f"{'it' if one else 'them'} out, or use {'it' if one else 'one'} as the time column "
            "to validate in time order (train on earlier rows, test on later ones).")


def default_date_use(columns: Iterable[Mapping[str, Any]]) -> DateUse:
    """The safe default: time order for tables that look like market data (their dates are
    the prediction time; shuffled folds would train on the future), else leave dates out."""
    cols = list(columns)
    if not date_columns(cols):
        return DateUse.FEATURE  # nothing to decide
    names = [str(c["name"]) for c in cols]
    lower = {n.strip().lower() for n in names}
    market = bool(lower & MARKET_COLUMNS) or find_column(names, "ticker") is not None
    return DateUse.TIME_ORDER if market else DateUse.LEAVE_OUT


def preferred_time_column(dates: list[str]) -> str | None:
    """The date column to order by: one named like a time, else the first."""
    if not dates:
        return None
    preferred = find_column(dates, "time")
    return preferred if preferred is not None else dates[0]


def plan_dates(use: DateUse | str, dates: list[str], time_column: str | None = None
               ) -> DatePlan:
    """The request fields for `use`. `time_column` (chosen by the user, any column) wins for
    TIME_ORDER. Only FEATURE keeps a date among the features: the time column orders the
    validation folds, it does not predict."""
    use = DateUse(use)
    if use == DateUse.FEATURE:
        return DatePlan(time_column, ())
    if use == DateUse.TIME_ORDER:
        order_by = time_column or preferred_time_column(dates)
        return DatePlan(order_by, tuple(dates))
    return DatePlan(time_column, tuple(dates))
