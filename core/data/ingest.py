"""Reading uploads into a clean DataFrame, or refusing them with a precise message.

Every refusal is an `InvalidDataError` naming the file, the line or column, and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InvalidDataError

PARQUET_MAGIC = b"PAR1"
DELIMITERS = ",;\t|"
ENCODINGS = ("utf-8", "cp1252")
MIXED_TYPE_MIN_NUMERIC_SHARE = 0.8  # a text column that is mostly numbers is a data-entry error


@dataclass
class ReadResult:
    frame: pd.DataFrame
    fingerprint: str = ""


def read_path(path: str | Path, *, max_bytes: int, for_training: bool = True) -> ReadResult:
    """Read a CSV or Parquet file from disk (size checked before reading it whole)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidDataError(f"{path}: no such file. Check the path and try again.")
    size = path.stat().st_size
    _check_size(size, path.name, max_bytes)
    return read_bytes(path.read_bytes(), path.name, max_bytes=max_bytes,
                      for_training=for_training)


def read_bytes(raw: bytes, filename: str, *, max_bytes: int,
               for_training: bool = True) -> ReadResult:
    """Parse an upload (CSV with sniffed delimiter/encoding, or Parquet) and validate it.
    Rows to predict keep their empty columns (the model may expect them, values missing)."""
    _check_size(len(raw), filename, max_bytes)
    if not raw.strip():
        raise InvalidDataError(f"{filename}: the file is empty. Upload a table with a header "
                               "row and at least one data row.")
    if raw[:4] == PARQUET_MAGIC or filename.lower().endswith(".parquet"):
        frame = _read_parquet(raw, filename)
    else:
        frame = _read_csv(raw, filename)
    validate_frame(frame, filename)
    if not for_training:
        return ReadResult(frame=frame)
    return ReadResult(frame=frame, fingerprint=fingerprint_frame(frame))


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


def _read_csv(raw: bytes, filename: str) -> pd.DataFrame:
    text = _decode(raw, filename).replace("\r\n", "\n").replace("\r", "\n")
    delimiter = _sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    _check_header(header, filename)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True,
                            low_memory=False)
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


def validate_frame(frame: pd.DataFrame, filename: str) -> None:
    """Refuse infinite and mixed-type values. (Empty columns are kept in the stored upload and
    left out of training by core.automl.train.prepare, which says so.)"""
    if frame.shape[1] == 0:
        raise InvalidDataError(f"{filename}: no columns were found.")
    for col in frame.columns:
        s = frame[col]
        if s.isna().all():
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = np.flatnonzero(np.isinf(values))
            if bad.size:
                raise InvalidDataError(
                    f"{filename}: column {col!r} has infinite values (data rows "
                    f"{_rows(bad)}). Replace them with a number or leave the cells empty.")
        elif s.dtype == object or pd.api.types.is_string_dtype(s):
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
