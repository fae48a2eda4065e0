"""What the dataset store shows outside: one shape for `GET /v1/datasets`, `workbench
datasets --json` and the pages, and the answer to an upload."""

from __future__ import annotations

from pydantic import BaseModel

from core.public import FROZEN, IsoDatetime
from core.store import Dataset


class DatasetPublic(BaseModel):
    """A stored table: its id, name, content fingerprint and size."""

    model_config = FROZEN

    id: int
    name: str
    fingerprint: str
    rows: int
    columns: int
    size_bytes: int
    created_at: IsoDatetime

    @classmethod
    def of(cls, ds: Dataset) -> DatasetPublic:
        return cls(id=ds.id, name=ds.name, fingerprint=ds.fingerprint, rows=ds.n_rows,
                   columns=ds.n_cols, size_bytes=ds.size_bytes, created_at=ds.created_at)


class StoredDatasetPublic(BaseModel):
    """The answer to an upload: the dataset, whether this upload stored it (False: the same
    content was stored before) and what to know about its columns."""

    model_config = FROZEN

    id: int
    name: str
    fingerprint: str
    rows: int
    columns: int
    created: bool
    warnings: list[str]


__all__ = ["DatasetPublic", "StoredDatasetPublic"]


class DatasetDeleted(BaseModel):
    """The answer to a deletion: which dataset is gone."""

    deleted: int
    name: str
