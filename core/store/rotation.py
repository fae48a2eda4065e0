"""`workbench rotate-key`: re-encrypt every stored artifact under a new key.

Per artifact, atomically: the stored bytes are read and verified (fingerprints, then the old
key's authentication), sealed under the new key into a NEW file, and only then is the row
moved to it (path and stored fingerprint, with an audit event) and committed; the old file is
deleted after the commit. A rotation killed at any point leaves every row naming a whole file
it can be read from, and running it again picks up where it stopped: an artifact already
sealed under the new key is skipped. The new file's name is derived from the old one and the
new key's id, so a run killed between the upload and the commit overwrites its own leftover
instead of leaving one file per attempt.

A version's identity never changes: name, number, semver and `fingerprint` (the plaintext's
SHA-256) stay; only `artifact_path` and `stored_fingerprint` move. Run artifacts (no rows)
are rewritten in place, each in one atomic write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sqlmodel import Session, select

from core.errors import StorageUnavailableError, WorkbenchError
from core.fsutil import sha256_bytes
from core.store import Dataset, ModelVersion, RegisteredModel, lock_for_write
from core.store import artifacts as store
from core.store.audit import record
from core.store.sealing import Key, read_keys, seal, sealed_key_id, unseal

log = logging.getLogger(__name__)


@dataclass
class RotationReport:
    key_id: str
    rotated: list[str] = field(default_factory=list)  # labels of artifacts moved to the key
    already: int = 0  # artifacts found under the new key (a resumed rotation)
    failed: list[str] = field(default_factory=list)  # "label: why"
    remaining: int = 0  # left for the next run (limit reached)

    @property
    def done(self) -> bool:
        return not self.failed and not self.remaining


def rotated_key(key: str, key_id: str) -> str:
    """`models/churn/<uuid>.skops` → `models/churn/<uuid>.k<key id>.skops`: one name per
    (artifact, key), whatever the key before."""
    p = PurePosixPath(key)
    stem, suffix = p.name.split(".", 1)[0], p.suffix
    return str(p.with_name(f"{stem}.k{key_id}{suffix}"))


def _under(key: str, key_id: str) -> bool:
    try:
        return sealed_key_id(store.head(key)) == key_id
    except FileNotFoundError:
        return False


def rotate(new: Key, *, session: Session, actor: str | None = None, limit: int | None = None,
           progress: Callable[[str], None] | None = None) -> RotationReport:
    """Re-encrypt every artifact (model versions, datasets, run artifacts; plaintext ones
    included) under `new`, reading with the keys this process has (WORKBENCH_ARTIFACT_KEY,
    WORKBENCH_ARTIFACT_OLD_KEYS). `limit`: stop after rotating that many (a batch)."""
    report = RotationReport(new.id)
    keys = {**read_keys(), new.id: new}
    tick = progress or (lambda _label: None)

    def budget_left() -> bool:
        return limit is None or len(report.rotated) < limit

    rows = session.exec(select(ModelVersion.id, RegisteredModel.name, ModelVersion.version)
                        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                        .order_by(ModelVersion.id)).all()
    for version_id, name, number in rows:
        _one_row(session, ModelVersion, version_id, f"{name}:{number}", new, keys, report,
                 budget_left, actor, tick)
    for dataset_id in session.exec(select(Dataset.id).order_by(Dataset.id)).all():
        _one_row(session, Dataset, dataset_id, f"dataset {dataset_id}", new, keys, report,
                 budget_left, actor, tick)
    for entry in sorted(store.entries("runs/"), key=lambda e: e.key):
        label = f"run artifact {entry.key.removeprefix('runs/')}"
        try:
            if _under(entry.key, new.id):
                report.already += 1
                continue
            if not budget_left():
                report.remaining += 1
                continue
            plain = unseal(store.read_stored(store.relpath_of(entry.key), label), label, keys)
            store.write_stored(entry.key, seal(plain, new))
            report.rotated.append(label)
            tick(label)
        except (WorkbenchError, StorageUnavailableError, OSError) as exc:
            report.failed.append(f"{label}: {getattr(exc, 'message', exc)}")
    if report.rotated:
        record(session, "artifacts.rotate_key", f"key:{new.id}", actor=actor,
               rotated=len(report.rotated), already=report.already,
               failed=len(report.failed), remaining=report.remaining)
        session.commit()
    return report


def _one_row(session: Session, table: type[ModelVersion] | type[Dataset], row_id: int,
             label: str, new: Key, keys: dict[str, Key], report: RotationReport,
             budget_left: Callable[[], bool], actor: str | None,
             tick: Callable[[str], None]) -> None:
    row = session.get(table, row_id)
    if row is None:  # deleted meanwhile
        return
    is_model = isinstance(row, ModelVersion)
    old_rel = row.artifact_path if is_model else row.path
    old_key = store.key_of(old_rel)
    try:
        if _under(old_key, new.id):
            report.already += 1
            return
        if not budget_left():
            report.remaining += 1
            return
        stored = store.read_stored(old_rel, label, stored_fingerprint=row.stored_fingerprint)
        if row.stored_fingerprint and sha256_bytes(stored) != row.stored_fingerprint:
            raise WorkbenchError(f"the stored bytes fail their fingerprint check, so {label} "
                                 "was left as it is")
        plain = unseal(stored, label, keys)
        if is_model and sha256_bytes(plain) != row.fingerprint:
            raise WorkbenchError(f"the plaintext fails its fingerprint check, so {label} was "
                                 "left as it is")
        sealed = seal(plain, new)
        new_key = rotated_key(old_key, new.id)
        store.write_stored(new_key, sealed)  # whole, before any row names it
        lock_for_write(session)
        current = session.exec(select(table).where(table.id == row_id)
                               .with_for_update()).first()
        if current is None or (current.artifact_path if is_model else current.path) != old_rel:
            session.rollback()  # moved or deleted by someone else: theirs stands
            store.delete(store.relpath_of(new_key))
            return
        if is_model:
            current.artifact_path = store.relpath_of(new_key)
        else:
            current.path = store.relpath_of(new_key)
        current.stored_fingerprint = sha256_bytes(sealed)
        session.add(current)
        record(session, "artifact.rotate_key",
               f"model:{label}" if is_model else f"dataset:{row_id}", actor=actor,
               key_id=new.id, previous_key=sealed_key_id(stored) or "plaintext")
        session.commit()
    except (WorkbenchError, StorageUnavailableError, OSError) as exc:
        session.rollback()
        report.failed.append(f"{label}: {getattr(exc, 'message', exc)}")
        return
    report.rotated.append(label)
    tick(label)
    try:  # after the commit: nothing names the old file any more
        store.delete(old_rel)
    except Exception as exc:  # noqa: BLE001 - a leftover, not a failure of the rotation
        log.warning("rotate-key: the old file of %s was not deleted: %s", label, exc)
