"""The dataset store: one Parquet file per content fingerprint plus its catalogue row."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

from core.data.ingest import read_bytes, read_path
from core.data.profile import ColumnProfile, profile_frame
from core.data.public import DatasetPublic, StoredDatasetPublic
from core.errors import ConflictError, NotFoundError
from core.features.kinds import DROPPED_KINDS
from core.fsutil import sha256_bytes
from core.settings import get_settings
from core.store import Dataset, Job, ModelVersion, RegisteredModel, lock_for_write, sealing
from core.store import artifacts as store
from core.store.audit import record
from core.store.scope import DEFAULT_WORKSPACE, owned_get, writing_workspace


@dataclass(frozen=True)
class StoredDataset:
    dataset: Dataset
    created: bool  # False when the same content was already stored

    def public(self) -> StoredDatasetPublic:
        d = self.dataset
        return StoredDatasetPublic(id=d.id, name=d.name, fingerprint=d.fingerprint,
                                   rows=d.n_rows, columns=d.n_cols, created=self.created,
                                   warnings=d.warnings)


def _dataset_key(fingerprint: str, workspace: str, encrypted: bool) -> str:
    """One plaintext file per (workspace, content fingerprint): two workspaces uploading the
    same table hold a file each, so deleting it in one never removes the other's (`default`
    keeps the layout stores made before workspaces use). An encrypted file differs at every
    write (a fresh nonce), so it gets a name of its own."""
    base = "datasets" if workspace == DEFAULT_WORKSPACE else f"datasets/workspaces/{workspace}"
    if encrypted:
        return f"{base}/{fingerprint}.{uuid.uuid4().hex[:12]}.parquet"
    return f"{base}/{fingerprint}.parquet"


def profile_warnings(profiles: list[ColumnProfile]) -> list[str]:
    """What a user should know about the columns before training on them."""
    out = []
    for p in profiles:
        if p.unique == 0:
            out.append(f"Column {p.name!r} is empty in every row: it will be left out.")
        elif p.kind in DROPPED_KINDS:
            out.append(f"Column {p.name!r} is {DROPPED_KINDS[p.kind]} ({p.reason}).")
    return out


def _by_fingerprint(session: Session, fingerprint: str) -> Dataset | None:
    return session.exec(select(Dataset).where(Dataset.fingerprint == fingerprint)).first()


def store_frame(frame: pd.DataFrame, *, session: Session, name: str, fingerprint: str,
                source_filename: str = "", actor: str | None = None,
                notes: list[str] | None = None) -> StoredDataset:
    """Store a validated frame once; a second upload of the same content returns the first.
    Commits (a unit of work of its own: the session must hold nothing uncommitted).

    Everything that can refuse the data (profiling, Parquet encoding) runs before the write
    lock is taken and the file is written, and a file this call wrote is removed if the
    catalogue row cannot be added: a failed upload leaves no dataset file behind. `notes`
    (what ingest detected: decimal mark, codes kept as text) are shown with the dataset's
    warnings."""
    existing = _by_fingerprint(session, fingerprint)
    if existing:
        return StoredDataset(existing, False)
    profiles = profile_frame(frame)
    columns = [p.to_dict() for p in profiles]
    warnings = [*(notes or []), *profile_warnings(profiles)]
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    data = buf.getvalue()
    key = _dataset_key(fingerprint, writing_workspace(session),
                       encrypted=sealing.write_key() is not None)
    wrote = False
    try:
        lock_for_write(session)
        existing = _by_fingerprint(session, fingerprint)  # stored while this one profiled
        if existing:
            session.commit()
            return StoredDataset(existing, False)
        relpath = store.relpath_of(key)
        wrote = not store.exists(relpath)
        if wrote:
            written = store.write(key, data)
            stored_fp: str | None = written.stored_fingerprint
        else:  # left by a crash or a concurrent upload: the row records what is there
            stored_fp = sha256_bytes(store.read(relpath, f"dataset {name!r}"))
        ds = Dataset(fingerprint=fingerprint, name=name, source_filename=source_filename,
                     path=relpath, n_rows=len(frame), n_cols=frame.shape[1],
                     size_bytes=len(data), stored_fingerprint=stored_fp,
                     columns=columns, warnings=warnings)
        session.add(ds)
        session.flush()
        record(session, "dataset.create", f"dataset:{ds.id}", actor=actor, name=name,
               fingerprint=fingerprint, rows=len(frame))
        session.commit()
        return StoredDataset(ds, True)
    except BaseException:
        session.rollback()
        try:  # on PostgreSQL a concurrent upload of the same content can win the race
            existing = _by_fingerprint(session, fingerprint)
        except Exception:
            existing = None
        if existing:
            return StoredDataset(existing, False)
        if wrote:
            store.delete(store.relpath_of(key))
        raise


def ingest_path(path: str | Path, *, session: Session, name: str | None = None,
                actor: str | None = None, decimal: str = "auto") -> StoredDataset:
    settings = get_settings()
    result = read_path(path, max_bytes=settings.max_upload_bytes, decimal=decimal)
    path = Path(path)
    return store_frame(result.frame, session=session, name=name or path.stem,
                       fingerprint=result.fingerprint, source_filename=path.name, actor=actor,
                       notes=result.notes)


def ingest_bytes(raw: bytes, filename: str, *, session: Session, name: str | None = None,
                 actor: str | None = None, decimal: str = "auto") -> StoredDataset:
    settings = get_settings()
    result = read_bytes(raw, filename, max_bytes=settings.max_upload_bytes, decimal=decimal)
    return store_frame(result.frame, session=session, name=name or Path(filename).stem,
                       fingerprint=result.fingerprint, source_filename=filename, actor=actor,
                       notes=result.notes)


def list_datasets(*, session: Session) -> list[Dataset]:
    """Every stored dataset, newest first."""
    return list(session.exec(select(Dataset).order_by(Dataset.id.desc())).all())


def list_datasets_public(*, session: Session) -> list[DatasetPublic]:
    return [DatasetPublic.of(d) for d in list_datasets(session=session)]


def get_dataset(ref: int | str, *, session: Session) -> Dataset:
    """A dataset by id, fingerprint (or its prefix) or name (latest of that name)."""
    if isinstance(ref, int) or str(ref).isdigit():
        ds = owned_get(session, Dataset, int(ref))
    else:
        ds = session.exec(select(Dataset).where(Dataset.name == ref)
                          .order_by(Dataset.id.desc())).first()
        if ds is None and len(str(ref)) >= 8:
            ds = session.exec(select(Dataset)
                              .where(Dataset.fingerprint.startswith(str(ref)))).first()
    if ds is None:
        raise NotFoundError(f"No dataset {ref!r}. List datasets with `workbench datasets`.")
    return ds


def load_frame(ds: Dataset) -> pd.DataFrame:
    """The stored table, checked against the stored file's fingerprint (when recorded)."""
    label = f"dataset {ds.id} ({ds.name})"
    try:
        data = store.read(ds.path, label, stored_fingerprint=ds.stored_fingerprint)
    except store.ArtifactMissingError:
        raise store.ArtifactMissingError(
            f"The file of {label} is missing from {store.where(ds.path)}. Upload the data "
            "again.") from None
    return pd.read_parquet(io.BytesIO(data))


@dataclass(frozen=True)
class DatasetUsers:
    """What points at a dataset: model versions trained on it ("name:version") and jobs that
    trained (or tried to train) on it."""

    versions: list[str]
    jobs: list[int]

    def __bool__(self) -> bool:
        return bool(self.versions or self.jobs)

    def describe(self) -> str:
        parts = []
        if self.versions:
            parts.append("model version(s) " + ", ".join(self.versions))
        if self.jobs:
            parts.append("job(s) " + ", ".join(str(j) for j in self.jobs))
        return " and ".join(parts)


def dataset_users(dataset_id: int, *, session: Session) -> DatasetUsers:
    """The versions and jobs whose lineage names this dataset."""
    versions = session.exec(
        select(RegisteredModel.name, ModelVersion.version)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.dataset_id == dataset_id)
        .order_by(RegisteredModel.name, ModelVersion.version)).all()
    jobs = session.exec(select(Job.id).where(Job.dataset_id == dataset_id)
                        .order_by(Job.id)).all()
    return DatasetUsers([f"{name}:{version}" for name, version in versions], list(jobs))


def delete_dataset(ref: int | str, *, session: Session, actor: str | None = None,
                   reason: str = "") -> Dataset:
    """Delete a stored dataset (its catalogue row and its file); returns the deleted row.

    Refused (ConflictError, nothing changed) while a model version or a job names it: its
    lineage (what a version was trained on, what a retrain and the promotion gate compare
    with, the simulator's default rows) must not vanish silently. Commits."""
    ds = get_dataset(ref, session=session)
    try:
        lock_for_write(session)
        users = dataset_users(ds.id, session=session)
        if users:
            raise ConflictError(
                f"Dataset {ds.id} ({ds.name}) is kept: {users.describe()} name it as "
                "their training data, and deleting it would lose that lineage (what a "
                "version learned from, what a retrain and the promotion gate compare "
                "against). Delete only datasets no model or job was trained on.")
        record(session, "dataset.delete", f"dataset:{ds.id}", actor=actor, reason=reason,
               name=ds.name, fingerprint=ds.fingerprint, rows=ds.n_rows)
        session.delete(ds)
        session.flush()
        # One row and one file per fingerprint, so nobody else reads this file. Removed while
        # the write lock is held: an upload of the same content waits, then writes it anew.
        store.delete(ds.path)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ds
