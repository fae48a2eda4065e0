"""Reading uploads into a clean DataFrame, or refusing them with a precise message.

Every refusal is an `InvalidDataError` naming the file, the line or column, and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InvalidDataError
from core.features.kinds import holds_numbers, holds_text

PARQUET_MAGIC = b"PAR1"
DELIMITERS = ",;\t|"
ENCODINGS = ("utf-8", "cp1252")
MIXED_TYPE_MIN_NUMERIC_SHARE = 0.8  # a text column that is mostly numbers is a data-entry error


class DecimalMark(StrEnum):
    """The decimal mark of numbers in a CSV upload."""

    AUTO = "auto"  # a decimal comma is detected in files not separated by commas
    POINT = "."
    COMMA = ","


DECIMAL_MARKS = tuple(DecimalMark)
# A number written with a decimal comma ("17,99", "-3", ",5"), as European spreadsheets export
# it after a ";" separator. Thousands separators ("1.234,5") are not recognised: "." is then
# ambiguous with a decimal point in another column.
DECIMAL_COMMA_NUMBER = re.compile(r"[+-]?(\d+(,\d*)?|,\d+)")
DIGITS = re.compile(r"\d+")


@dataclass
class ReadResult:
    frame: pd.DataFrame
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)  # what was detected, for the user


def read_path(path: str | Path, *, max_bytes: int, for_training: bool = True,
              decimal: str = "auto") -> ReadResult:
    """Read a CSV or Parquet file from disk (size checked before reading it whole)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidDataError(f"{path}: no such file. Check the path and try again.")
    size = path.stat().st_size
    _check_size(size, path.name, max_bytes)
    return read_bytes(path.read_bytes(), path.name, max_bytes=max_bytes,
                      for_training=for_training, decimal=decimal)


def read_bytes(raw: bytes, filename: str, *, max_bytes: int,
               for_training: bool = True, decimal: str = "auto") -> ReadResult:
    """Parse an upload (CSV with sniffed delimiter/encoding, or Parquet) and validate it.
    Rows to predict keep their empty columns (the model may expect them, values missing).

    `decimal` is the CSV decimal mark: "auto" detects a decimal comma in files not separated
    by commas; "." or "," forces one. What was detected is in `ReadResult.notes`."""
    if decimal not in DECIMAL_MARKS:
        raise InvalidDataError(f"Unknown decimal mark {decimal!r}: use auto, '.' or ','.")
    decimal = DecimalMark(decimal)
    _check_size(len(raw), filename, max_bytes)
    if not raw.strip():
        raise InvalidDataError(f"{filename}: the file is empty. Upload a table with a header "
                               "row and at least one data row.")
    notes: list[str] = []
    if raw[:4] == PARQUET_MAGIC or filename.lower().endswith(".parquet"):
        frame = _read_parquet(raw, filename)
    else:
        frame = _read_csv(raw, filename, decimal=decimal, notes=notes)
    validate_frame(frame, filename)
    if not for_training:
        return ReadResult(frame=frame, notes=notes)
    return ReadResult(frame=frame, fingerprint=fingerprint_frame(frame), notes=notes)


def _check_size(size: int, filename: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InvalidDataError(
            f"{filename}: {size / 2**20:.1f} MB is over the upload limit of "
            f"{max_bytes / 2**20:.0f} MB. Upload a sample of the rows, or raise the limit "
            "with WORKBENCH_MAX_UPLOAD_MB."
        )


def _read_parquet(raw: bytes, filename: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise InvalidDataError(f"{filename}: not a readable Parquet file ({exc}). "
                               "Export it again, or upload it as CSV.") from None
    _check_header([str(c) for c in frame.columns], filename, from_parquet=True)
    if len(frame) == 0:
        raise InvalidDataError(f"{filename}: the table has columns but no rows. "
                               "Upload a file with at least one data row.")
    return frame.reset_index(drop=True)


def _decode(raw: bytes, filename: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    for enc in ENCODINGS:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InvalidDataError(f"{filename}: the text encoding is not UTF-8 or Windows-1252. "
                           "Save the file as UTF-8 CSV and upload it again.")


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.__getitem__)
        return best if counts[best] else ","


def _check_header(names: list[str], filename: str, *, from_parquet: bool = False) -> None:
    for i, name in enumerate(names, start=1):
        if not name.strip() or (from_parquet and name.startswith("__index_level")):
            raise InvalidDataError(
                f"{filename}: column {i} has a blank name. Give every column a name in the "
                "header row (the first line).")
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        key = name.strip()
        if key in seen:
            raise InvalidDataError(
                f"{filename}: the column name {key!r} appears twice (columns {seen[key]} and "
                f"{i}). Rename one of them so every column name is unique.")
        seen[key] = i


def _read_csv(raw: bytes, filename: str, *, decimal: DecimalMark = DecimalMark.AUTO,
              notes: list[str] | None = None) -> pd.DataFrame:
    text = _decode(raw, filename).replace("\r\n", "\n").replace("\r", "\n")
    delimiter = _sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    _check_header(header, filename)
    notes = notes if notes is not None else []
    comma = decimal is DecimalMark.COMMA
    frame = _parse_csv(text, filename, delimiter, decimal=(DecimalMark.COMMA if comma
                                                           else DecimalMark.POINT).value)
    if decimal is DecimalMark.AUTO and delimiter != ",":
        frame = _detect_decimal_comma(frame, text, filename, delimiter, notes)
    elif comma:
        notes.append(f"Read with ',' as the decimal mark (as you chose), {delimiter!r} "
                     "between columns.")
    return _keep_leading_zeros(frame, text, delimiter, notes)


def _parse_csv(text: str, filename: str, delimiter: str, *, decimal: str = ".",
               **options: object) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True,
                            low_memory=False, decimal=decimal, **options)
    except pd.errors.ParserError as exc:
        raise InvalidDataError(
            f"{filename}: could not be parsed as a table with delimiter {delimiter!r}: {exc}. "
            "Check that line for an extra or missing delimiter or an unclosed quote.") from None
    except pd.errors.EmptyDataError:
        raise InvalidDataError(f"{filename}: the file has no header row. "
                               "The first line must name the columns.") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise InvalidDataError(f"{filename}: the file has a header but no data rows. "
                               "Add at least one row under the header.")
    return frame


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if holds_text(frame[c])]


def _numeric_columns(frame: pd.DataFrame) -> set[str]:
    return {c for c in frame.columns if holds_numbers(frame[c])}


def _detect_decimal_comma(frame: pd.DataFrame, text: str, filename: str, delimiter: str,
                          notes: list[str]) -> pd.DataFrame:
    """Re-read with a decimal comma when some text column holds only numbers written like
    `17,99`, and only if that turns every such column into numbers while every column that
    was already numeric stays numeric (a file mixing both conventions is left as it is)."""
    candidates = []
    for col in _text_columns(frame):
        values = frame[col].dropna().astype(str).str.strip()
        if (not values.empty and values.str.fullmatch(DECIMAL_COMMA_NUMBER).all()
                and values.str.contains(",", regex=False).any()):
            candidates.append(col)
    if not candidates:
        return frame
    reread = _parse_csv(text, filename, delimiter, decimal=DecimalMark.COMMA.value)
    numeric = _numeric_columns(reread)
    if not set(candidates) <= numeric or not _numeric_columns(frame) <= numeric:
        return frame
    shown = ", ".join(repr(c) for c in candidates[:5])
    more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
    notes.append(f"Detected ',' as the decimal mark ({delimiter!r} between columns): "
                 f"{shown}{more} read as numbers. If that is wrong, upload again with the "
                 "decimal mark set to '.'.")
    return reread


def _keep_leading_zeros(frame: pd.DataFrame, text: str, delimiter: str,
                        notes: list[str]) -> pd.DataFrame:
    """Columns of digit strings where some value has a leading zero (`02134`: zip codes,
    account numbers) are codes, not amounts: keep them as text so the zeros survive."""
    candidates = [c for c in _numeric_columns(frame)
                  if pd.api.types.is_integer_dtype(frame[c])
                  or bool((frame[c].dropna() % 1 == 0).all())]
    if not candidates:
        return frame
    positions = [i for i, c in enumerate(frame.columns) if c in set(candidates)]
    raw = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True,
                      low_memory=False, usecols=positions, dtype=str)
    raw.columns = [frame.columns[i] for i in positions]
    kept = []
    for col in raw.columns:
        values = raw[col].dropna().str.strip()
        if (values.str.fullmatch(DIGITS).all()
                and (values.str.startswith("0") & (values.str.len() > 1)).any()):
            frame[col] = raw[col].str.strip()
            kept.append(col)
    if kept:
        shown = ", ".join(repr(c) for c in kept[:5])
        more = f" and {len(kept) - 5} more" if len(kept) > 5 else ""
        notes.append(f"Kept {shown}{more} as text: values such as "
                     f"{raw[kept[0]].dropna().loc[lambda v: v.str.startswith('0')].iloc[0]!r} "
                     "have leading zeros, so they are codes (zip codes, account numbers), "
                     "not amounts.")
    return frame


def validate_frame(frame: pd.DataFrame, filename: str) -> None:
    """Refuse infinite and mixed-type values. (Empty columns are kept in the stored upload and
    left out of training by core.automl.train.prepare, which says so.)"""
    if frame.shape[1] == 0:
        raise InvalidDataError(f"{filename}: no columns were found.")
    for col in frame.columns:
        s = frame[col]
        if s.isna().all():
            continue
        if holds_numbers(s):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = np.flatnonzero(np.isinf(values))
            if bad.size:
                raise InvalidDataError(
                    f"{filename}: column {col!r} has infinite values (data rows "
                    f"{_rows(bad)}). Replace them with a number or leave the cells empty.")
        elif holds_text(s):
            _check_mixed(s, col, filename)


def _check_mixed(s: pd.Series, col: str, filename: str) -> None:
    present = s.dropna()
    if present.empty:
        return
    numeric = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    share = numeric.notna().mean()
    if MIXED_TYPE_MIN_NUMERIC_SHARE <= share < 1.0:
        bad = present[numeric.isna()]
        examples = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
        raise InvalidDataError(
            f"{filename}: column {col!r} is mostly numbers but has text in data rows "
            f"{_rows(bad.index.to_numpy())} (for example {examples}). Fix or blank those cells, "
            "or make the whole column text.")
    if share == 1.0 and np.isinf(numeric.to_numpy(dtype="float64")).any():
        bad = present.index[np.isinf(numeric.to_numpy(dtype="float64"))]
        raise InvalidDataError(
            f"{filename}: column {col!r} has infinite values (data rows {_rows(bad)}). "
            "Replace them with a number or leave the cells empty.")


def _rows(positions: np.ndarray, limit: int = 5) -> str:
    """1-based data-row numbers (line number = row + 1 for the header) for messages."""
    rows = [str(int(p) + 1) for p in positions[:limit]]
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return ", ".join(rows) + more


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of the table as canonical CSV: the same table uploaded as CSV with another
    delimiter, encoding or BOM, or as Parquet, gets the same fingerprint and is stored once."""
    canonical = frame.to_csv(index=False, lineterminator="\n", float_format="%.17g")
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
