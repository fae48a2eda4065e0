"""The dataset store: one Parquet file per content fingerprint plus its catalogue row."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlmodel import select

from core.data.ingest import read_bytes, read_path
from core.data.profile import ColumnProfile, profile_frame
from core.errors import ArtifactIntegrityError, NotFoundError
from core.features.preprocess import DROPPED_KINDS
from core.fsutil import atomic_write
from core.settings import get_settings
from core.store import Dataset, session_scope
from core.store.audit import record


@dataclass(frozen=True)
class StoredDataset:
    dataset: Dataset
    created: bool  # False when the same content was already stored


def _dataset_path(fingerprint: str) -> Path:
    return get_settings().artifact_dir / "datasets" / f"{fingerprint}.parquet"


def profile_warnings(profiles: list[ColumnProfile]) -> list[str]:
    """What a user should know about the columns before training on them."""
    out = []
    for p in profiles:
        if p.unique == 0:
            out.append(f"Column {p.name!r} is empty in every row: it will be left out.")
        elif p.kind in DROPPED_KINDS:
            out.append(f"Column {p.name!r} is {DROPPED_KINDS[p.kind]} ({p.reason}).")
    return out


def store_frame(frame: pd.DataFrame, *, name: str, fingerprint: str, source_filename: str = "",
                actor: str | None = None, notes: list[str] | None = None) -> StoredDataset:
    """Store a validated frame once; a second upload of the same content returns the first.

    Everything that can refuse the data (profiling, Parquet encoding) runs before the file is
    written, and a file this call wrote is removed if the catalogue row cannot be added: a
    failed upload leaves no dataset file behind. `notes` (what ingest detected: decimal mark,
    codes kept as text) are shown with the dataset's warnings."""
    with session_scope() as s:
        existing = s.exec(select(Dataset).where(Dataset.fingerprint == fingerprint)).first()
        if existing:
            return StoredDataset(existing, False)
    profiles = profile_frame(frame)
    columns = [p.to_dict() for p in profiles]
    warnings = [*(notes or []), *profile_warnings(profiles)]
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    data = buf.getvalue()
    path = _dataset_path(fingerprint)
    wrote = not path.exists()
    if wrote:
        atomic_write(path, data)
    try:
        with session_scope() as s:
            ds = Dataset(fingerprint=fingerprint, name=name, source_filename=source_filename,
                         path=str(path.relative_to(get_settings().home)), n_rows=len(frame),
                         n_cols=frame.shape[1], size_bytes=len(data), columns=columns,
                         warnings=warnings)
            s.add(ds)
            s.flush()
            record(s, "dataset.create", f"dataset:{ds.id}", actor=actor, name=name,
                   fingerprint=fingerprint, rows=len(frame))
        return StoredDataset(ds, True)
    except BaseException:
        try:
            with session_scope() as s:  # a concurrent upload of the same content won the race
                existing = s.exec(select(Dataset)
                                  .where(Dataset.fingerprint == fingerprint)).first()
        except Exception:
            existing = None
        if existing:
            return StoredDataset(existing, False)
        if wrote:
            path.unlink(missing_ok=True)
        raise


def ingest_path(path: str | Path, *, name: str | None = None, actor: str | None = None,
                decimal: str = "auto") -> StoredDataset:
    settings = get_settings()
    result = read_path(path, max_bytes=settings.max_upload_bytes, decimal=decimal)
    path = Path(path)
    return store_frame(result.frame, name=name or path.stem, fingerprint=result.fingerprint,
                       source_filename=path.name, actor=actor, notes=result.notes)


def ingest_bytes(raw: bytes, filename: str, *, name: str | None = None,
                 actor: str | None = None, decimal: str = "auto") -> StoredDataset:
    settings = get_settings()
    result = read_bytes(raw, filename, max_bytes=settings.max_upload_bytes, decimal=decimal)
    return store_frame(result.frame, name=name or Path(filename).stem,
                       fingerprint=result.fingerprint, source_filename=filename, actor=actor,
                       notes=result.notes)


def list_datasets() -> list[Dataset]:
    with session_scope() as s:
        return list(s.exec(select(Dataset).order_by(Dataset.id.desc())).all())


def get_dataset(ref: int | str) -> Dataset:
    """A dataset by id, fingerprint (or its prefix) or name (latest of that name)."""
    with session_scope() as s:
        if isinstance(ref, int) or str(ref).isdigit():
            ds = s.get(Dataset, int(ref))
        else:
            ds = s.exec(select(Dataset).where(Dataset.name == ref)
                        .order_by(Dataset.id.desc())).first()
            if ds is None and len(str(ref)) >= 8:
                ds = s.exec(select(Dataset).where(Dataset.fingerprint.startswith(str(ref)))).first()
    if ds is None:
        raise NotFoundError(f"No dataset {ref!r}. List datasets with `workbench datasets`.")
    return ds


def load_frame(ds: Dataset) -> pd.DataFrame:
    path = get_settings().home / ds.path
    if not path.exists():
        raise ArtifactIntegrityError(f"The file of dataset {ds.id} ({ds.name}) is missing from "
                                     f"{path}. Upload the data again.")
    return pd.read_parquet(path)
