"""Tables written for people to open in a spreadsheet: cells that a spreadsheet would run as
a formula are neutralised (CSV injection, OWASP "CSV Injection")."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from core.features.kinds import holds_booleans, holds_datetimes, holds_numbers

# A text cell starting with one of these is read as a formula (or, tab and carriage return,
# can smuggle one past a naive check), so it gets a leading apostrophe, as OWASP advises.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(value: Any) -> Any:
    """`'` + text that a spreadsheet would evaluate; numbers, and text that is just a number
    such as a class label "-1", are left as they are (a spreadsheet reads them as numbers,
    never runs them)."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def safe_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV of `frame` with every text cell (and header) neutralised; numeric, boolean
    and date columns are written as `to_csv` writes them."""
    out = frame.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if holds_numbers(col) or holds_booleans(col) or holds_datetimes(col):
            continue
        out.isetitem(i, col.astype(object).map(neutralise))
    # CRLF rows (RFC 4180): Python 3.11's csv module quotes a cell holding a line terminator
    # character, and with "\n" alone a bare "\r" in a cell went out unquoted, which a
    # spreadsheet reads as a new row starting with whatever follows it.
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
