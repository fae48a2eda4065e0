"""What the registry shows outside: models, versions and alias moves, one shape each for the
API (`response_model=`), the CLI (`--json`) and the pages.

Field names and order are the wire contract (ARCHITECTURE.md Part 1: `versions NAME --json`
"a list of versions with their number, aliases, metrics and fingerprint")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.enums import Stage, Task
from core.public import FROZEN, IsoDatetime
from core.store.shapes import Params


class LibraryMismatch(BaseModel):
    """How the scikit-learn that saved a version differs from this process's."""

    model_config = FROZEN

    library: str
    saved: str
    running: str
    accepted: bool  # the user accepted loading it on this running version


class VersionPublic(BaseModel):
    """One registered version: number, aliases, metrics, lineage and its artifact's
    fingerprint."""

    model_config = FROZEN

    version: int
    aliases: list[str]
    task: Task
    target: str
    estimator: str
    metric: str
    score: float | None
    metrics: dict[str, float | None]
    fingerprint: str
    size_bytes: int
    dataset_id: int | None
    dataset_fingerprint: str | None
    job_id: int | None
    parent_version: int | None
    archived: bool
    params: Params  # the estimator's hyperparameters, free-form by estimator
    library_versions: dict[str, str]
    library_mismatch: LibraryMismatch | None
    created_at: IsoDatetime
    created_by: str
    stage: Stage  # None | Staging | Production (holds the `production` alias) | Archived
    semver: str  # MAJOR.MINOR.PATCH, derived at registration (NAME@v1.2.0 refers to it)
    artifact_format: str = "skops"  # skops, or onnx for an imported ONNX graph
    # the last ONNX export's parity check (passed, max differences, tolerance, rows,
    # converter versions), or why it cannot be exported; None: never exported
    onnx_parity: dict[str, Any] | None = None


class ModelPublic(BaseModel):
    """A registered model with its latest version and where its aliases point."""

    model_config = FROZEN

    name: str
    versions: int  # how many versions it has (archived ones included)
    latest_version: int | None
    task: Task | None
    metric: str | None
    latest_score: float | None
    aliases: dict[str, int]  # alias -> version
    created_at: IsoDatetime


class AliasEventPublic(BaseModel):
    """One alias move (to_version None: the alias was removed)."""

    model_config = FROZEN

    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    at: IsoDatetime


class StageChange(BaseModel):
    """What one stage move did: the version's move, the previous production version it
    archived (with `archive_existing`) and the aliases that left archived versions."""

    model_config = FROZEN

    model: str
    version: int
    semver: str
    from_stage: Stage
    to_stage: Stage
    changed: bool  # False: the version already was in that stage, nothing was written
    production: int | None  # the model's production version after the move
    archived_previous: int | None  # the production version moved to Archived, if any
    aliases_removed: dict[str, int]  # alias -> the now-archived version it pointed at
    reason: str
    actor: str


__all__ = ["AliasEventPublic", "LibraryMismatch", "ModelPublic", "StageChange",
           "VersionPublic"]
