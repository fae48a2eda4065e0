"""Test helpers that look at the store the way a user would."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import SQLModel, func, select

from core.settings import get_settings
from core.store import session_scope


def store_snapshot() -> dict[str, object]:
    """Row counts of every table plus the artifact files on disk: equal snapshots mean a
    failed command wrote nothing."""
    counts = {}
    with session_scope() as s:
        for table in SQLModel.metadata.sorted_tables:
            counts[table.name] = s.exec(select(func.count()).select_from(table)).one()
    root = get_settings().artifact_dir
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []
    return {"rows": counts, "files": files}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus scrape (None when it is absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return sample.value
    return None
