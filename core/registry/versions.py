"""Registered models, their numbered versions, aliases and alias-move history."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import sklearn
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError, WorkbenchError
from core.registry.artifacts import load_verified, save_pipeline
from core.settings import get_settings
from core.store import (
    Alias,
    AliasEvent,
    Deployment,
    ModelVersion,
    RegisteredModel,
    session_scope,
    utcnow,
)
from core.store.audit import default_actor, record

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,49}$")
PRODUCTION = "production"
TRACKED_LIBRARIES = ("scikit-learn", "xgboost-cpu", "xgboost", "numpy", "pandas", "skops",
                     "ml-workbench")


def check_model_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise WorkbenchError(
            f"{name!r} is not a valid model name: use letters, digits, '_', '-' or '.', starting "
            "with a letter or digit (at most 100 characters).")
    return name


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in TRACKED_LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


def _model(session: Session, name: str, *, lock: bool = False) -> RegisteredModel:
    """The model row; `lock` holds it (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises writers) so alias moves and deployment changes of one model queue."""
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    model = session.exec(query.with_for_update() if lock else query).first()
    if model is None:
        raise NotFoundError(f"No model named {name!r}. List models with `workbench models`.")
    return model


def register_version(pipeline: Any, *, name: str, task: str, target: str,
                     input_schema: list[dict[str, Any]], classes: list[Any] | None = None,
                     metric: str = "", score: float | None = None,
                     metrics: dict[str, Any] | None = None,
                     evaluation: dict[str, Any] | None = None, estimator: str = "",
                     params: dict[str, Any] | None = None, dataset_id: int | None = None,
                     dataset_fingerprint: str | None = None, job_id: int | None = None,
                     parent_version: int | None = None, artifact_format: str = "skops",
                     saved_with: dict[str, str] | None = None,
                     accepted_sklearn: str | None = None,
                     actor: str | None = None) -> ModelVersion:
    """Write the artifact first, then the row in one transaction; if the row cannot be written
    the artifact is removed, so no version exists without its file and no file without its
    version.

    `saved_with`: library versions that differ from this process's (an imported file records
    the scikit-learn that saved it); `accepted_sklearn`: see ModelVersion.accepted_sklearn."""
    check_model_name(name)
    stored = save_pipeline(pipeline, name)
    try:
        for attempt in range(5):
            try:
                return _insert_version(
                    name=name, artifact=stored, task=task, target=target,
                    input_schema=input_schema, classes=classes or [], metric=metric,
                    score=score, metrics=metrics or {}, evaluation=evaluation or {},
                    estimator=estimator, params=params or {}, dataset_id=dataset_id,
                    dataset_fingerprint=dataset_fingerprint, job_id=job_id,
                    parent_version=parent_version, artifact_format=artifact_format,
                    library_versions={**library_versions(), **(saved_with or {})},
                    accepted_sklearn=accepted_sklearn, actor=actor)
            except IntegrityError:  # a concurrent registration took the number: retry
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")
    except BaseException:
        (get_settings().home / stored.relpath).unlink(missing_ok=True)
        raise


def _insert_version(*, name: str, artifact: Any, actor: str | None, **fields: Any
                    ) -> ModelVersion:
    with session_scope(write=True) as s:
        model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)
                       .with_for_update()).first()
        if model is None:
            model = RegisteredModel(name=name)
            s.add(model)
            s.flush()
            record(s, "model.create", f"model:{name}", actor=actor)
        latest = s.exec(select(func.max(ModelVersion.version))
                        .where(ModelVersion.model_id == model.id)).one()
        if fields["parent_version"] is None and latest:
            fields["parent_version"] = _alias_version(s, model.id, PRODUCTION) or latest
        mv = ModelVersion(model_id=model.id, version=(latest or 0) + 1,
                          artifact_path=artifact.relpath, fingerprint=artifact.fingerprint,
                          size_bytes=artifact.size_bytes,
                          created_by=actor or default_actor(), **fields)
        s.add(mv)
        s.flush()
        record(s, "version.register", f"model:{name}:{mv.version}", actor=actor,
               fingerprint=artifact.fingerprint, metric=fields["metric"], score=fields["score"])
        return mv


def _alias_version(s: Session, model_id: int, alias: str) -> int | None:
    row = s.exec(select(Alias).where(Alias.model_id == model_id, Alias.name == alias)).first()
    return row.version if row else None


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str | None = None
    version: int | None = None


def parse_ref(ref: str) -> ModelRef:
    """NAME, NAME@ALIAS or NAME:VERSION."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return ModelRef(check_model_name(name), alias=alias)
    if ":" in ref:
        name, version = ref.rsplit(":", 1)
        if not version.isdigit():
            raise WorkbenchError(f"{ref!r}: the version after ':' must be a number, e.g. "
                                 f"{name}:1.")
        return ModelRef(check_model_name(name), version=int(version))
    return ModelRef(check_model_name(ref))


def resolve(ref: str) -> tuple[str, ModelVersion]:
    """The version a reference points at: NAME means its production alias, else its latest
    non-archived version."""
    r = parse_ref(ref)
    with session_scope() as s:
        model = _model(s, r.name)
        number = r.version
        if r.alias is not None:
            number = _alias_version(s, model.id, r.alias)
            if number is None:
                raise NotFoundError(f"Model {r.name!r} has no alias {r.alias!r}. Set it with "
                                    f"`workbench alias {r.name} VERSION {r.alias}`.")
        elif number is None:
            number = _alias_version(s, model.id, PRODUCTION) or s.exec(
                select(func.max(ModelVersion.version)).where(
                    ModelVersion.model_id == model.id, ModelVersion.archived == False)  # noqa: E712
            ).one()
            if number is None:
                raise NotFoundError(f"Model {r.name!r} has no active versions.")
        mv = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                               ModelVersion.version == number)).first()
        if mv is None:
            raise NotFoundError(f"Model {r.name!r} has no version {number}. See "
                                f"`workbench versions {r.name}`.")
        return r.name, mv


def load_pipeline(ref: str) -> tuple[str, ModelVersion, Any]:
    name, mv = resolve(ref)
    pipeline = load_verified(mv.artifact_path, mv.fingerprint, f"{name}:{mv.version}",
                             accepted_sklearn=mv.accepted_sklearn)
    return name, mv, pipeline


def accept_library_mismatch(name: str, version: int, *, actor: str | None = None,
                            reason: str = "") -> ModelVersion:
    """Let NAME:VERSION load although another scikit-learn saved it, on this scikit-learn
    version only (an audit event; another upgrade asks again)."""
    with session_scope(write=True) as s:
        model = _model(s, name)
        mv = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                               ModelVersion.version == version)
                    .with_for_update()).first()
        if mv is None:
            raise NotFoundError(f"Model {name!r} has no version {version}. See "
                                f"`workbench versions {name}`.")
        mv.accepted_sklearn = sklearn.__version__
        s.add(mv)
        record(s, "version.accept_libraries", f"model:{name}:{version}", actor=actor,
               reason=reason, saved=mv.library_versions.get("scikit-learn"),
               running=sklearn.__version__)
        return mv


def library_mismatch(mv: ModelVersion) -> dict[str, Any] | None:
    """How the scikit-learn that saved the version differs from this process's, if it does."""
    saved = (mv.library_versions or {}).get("scikit-learn")
    if not saved or saved == sklearn.__version__:
        return None
    return {"library": "scikit-learn", "saved": saved, "running": sklearn.__version__,
            "accepted": mv.accepted_sklearn == sklearn.__version__}


def set_alias(name: str, version: int, alias: str, *, actor: str | None = None,
              reason: str = "") -> AliasEvent:
    """Point an alias at a version; every move is an AliasEvent plus an audit entry."""
    check_alias_name(alias)
    with session_scope(write=True) as s:
        model = _model(s, name, lock=True)
        return move_alias(s, model, version, alias, actor=actor, reason=reason)


def check_alias_name(alias: str) -> str:
    if not ALIAS_RE.match(alias):
        raise WorkbenchError(f"{alias!r} is not a valid alias: use a letter followed by letters, "
                             "digits, '_' or '-'.")
    if alias.isdigit():
        raise WorkbenchError("An alias cannot be a number.")
    return alias


def move_alias(s: Session, model: RegisteredModel, version: int, alias: str, *,
               actor: str | None = None, reason: str = "") -> AliasEvent:
    """`set_alias` inside the caller's transaction, so a deployment change can read its state,
    decide and move `production` as one unit (the caller should hold the model row's lock,
    which `_model(..., lock=True)` and `core.deploy` take). Moving `production` also keeps the
    model's deployment row in step with it."""
    check_alias_name(alias)
    name = model.name
    mv = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                           ModelVersion.version == version)).first()
    if mv is None:
        raise NotFoundError(f"Model {name!r} has no version {version}.")
    if mv.archived:
        raise ConflictError(f"{name}:{version} is archived; unarchive it before pointing "
                            f"{alias!r} at it.")
    row = s.exec(select(Alias).where(Alias.model_id == model.id, Alias.name == alias)
                 .with_for_update()).first()
    previous = row.version if row else None
    if row is None:
        row = Alias(model_id=model.id, name=alias, version=version)
    row.version, row.updated_at = version, utcnow()
    s.add(row)
    event = AliasEvent(model_id=model.id, alias=alias, from_version=previous,
                       to_version=version, actor=actor or default_actor(), reason=reason)
    s.add(event)
    record(s, "alias.move", f"model:{name}", actor=actor, reason=reason, alias=alias,
           from_version=previous, to_version=version)
    if alias == PRODUCTION:
        _sync_deployment(s, model.id, version)
    return event


def _sync_deployment(s: Session, model_id: int, production: int | None) -> None:
    """The deployment row records the production version too: keep it equal to the alias
    whoever moves the alias (`workbench alias`, the UI, a promotion)."""
    row = s.exec(select(Deployment).where(Deployment.model_id == model_id)
                 .with_for_update()).first()
    if row is None or row.stable_version == production:
        return
    row.stable_version = production
    if row.candidate_version == production:  # the candidate became production: it is done
        row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
    row.revision = (row.revision or 0) + 1
    row.updated_at = utcnow()
    s.add(row)


def remove_alias(name: str, alias: str, *, actor: str | None = None, reason: str = "") -> None:
    with session_scope(write=True) as s:
        model = _model(s, name, lock=True)
        row = s.exec(select(Alias).where(Alias.model_id == model.id, Alias.name == alias)).first()
        if row is None:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}.")
        if alias == PRODUCTION:
            _sync_deployment(s, model.id, None)
        s.add(AliasEvent(model_id=model.id, alias=alias, from_version=row.version,
                         to_version=None, actor=actor or default_actor(), reason=reason))
        record(s, "alias.remove", f"model:{name}", actor=actor, reason=reason, alias=alias,
               from_version=row.version)
        s.delete(row)


def aliases_of(s: Session, model_id: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for a in s.exec(select(Alias).where(Alias.model_id == model_id).order_by(Alias.name)):
        out.setdefault(a.version, []).append(a.name)
    return out


def version_dict(mv: ModelVersion, aliases: list[str]) -> dict[str, Any]:
    return {
        "version": mv.version, "aliases": aliases, "task": mv.task, "target": mv.target,
        "estimator": mv.estimator, "metric": mv.metric, "score": mv.score,
        "metrics": mv.metrics, "fingerprint": mv.fingerprint, "size_bytes": mv.size_bytes,
        "dataset_id": mv.dataset_id, "dataset_fingerprint": mv.dataset_fingerprint,
        "job_id": mv.job_id, "parent_version": mv.parent_version, "archived": mv.archived,
        "params": mv.params, "library_versions": mv.library_versions,
        "library_mismatch": library_mismatch(mv),
        "created_at": mv.created_at.isoformat(), "created_by": mv.created_by,
    }


def list_versions(name: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        model = _model(s, name)
        aliases = aliases_of(s, model.id)
        rows = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                      .order_by(ModelVersion.version)).all()
        return [version_dict(mv, aliases.get(mv.version, [])) for mv in rows]


def list_models() -> list[dict[str, Any]]:
    with session_scope() as s:
        out = []
        for model in s.exec(select(RegisteredModel).order_by(RegisteredModel.name)):
            versions = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                              .order_by(ModelVersion.version)).all()
            aliases = {a.name: a.version for a in
                       s.exec(select(Alias).where(Alias.model_id == model.id))}
            latest = versions[-1] if versions else None
            out.append({"name": model.name, "versions": len(versions),
                        "latest_version": latest.version if latest else None,
                        "task": latest.task if latest else None,
                        "metric": latest.metric if latest else None,
                        "latest_score": latest.score if latest else None,
                        "aliases": aliases, "created_at": model.created_at.isoformat()})
        return out


def alias_history(name: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        model = _model(s, name)
        rows = s.exec(select(AliasEvent).where(AliasEvent.model_id == model.id)
                      .order_by(AliasEvent.id)).all()
        return [{"alias": e.alias, "from_version": e.from_version, "to_version": e.to_version,
                 "actor": e.actor, "reason": e.reason, "at": e.at.isoformat()} for e in rows]
