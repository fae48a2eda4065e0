"""Registered models and their numbered versions: registration, resolution of a reference,
loading through the artifact checks, and the listings."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import sklearn
from sqlalchemy import and_, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.enums import Stage, Task
from core.errors import NotFoundError
from core.registry.aliases import alias_version, aliases_of
from core.registry.artifacts import StoredArtifact, load_verified, save_pipeline
from core.registry.names import PRODUCTION, check_model_name, model_row, parse_ref
from core.registry.public import LibraryMismatch, ModelPublic, VersionPublic
from core.registry.semver import basis, next_label
from core.registry.stages import stage_of
from core.store import Alias, Job, ModelVersion, RegisteredModel, lock_for_write
from core.store.artifacts import delete as delete_artifact
from core.store.audit import default_actor, record
from core.store.shapes import Evaluation, Params, SchemaColumn

TRACKED_LIBRARIES = ("scikit-learn", "xgboost-cpu", "xgboost", "lightgbm", "catboost", "numpy",
                     "pandas", "skops", "ml-workbench")
REGISTER_ATTEMPTS = 5  # concurrent first registrations of one name race for the model row

__all__ = ["PRODUCTION", "accept_library_mismatch", "check_model_name", "library_mismatch",
           "library_versions", "list_models", "list_versions", "load_pipeline",
           "register_version", "resolve", "version_by_id", "version_public"]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in TRACKED_LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


def register_version(pipeline: Any, *, session: Session, name: str, task: Task | str,
                     target: str, input_schema: list[SchemaColumn],
                     classes: list[Any] | None = None, metric: str = "",
                     score: float | None = None, metrics: dict[str, float] | None = None,
                     evaluation: Evaluation | None = None, estimator: str = "",
                     params: Params | None = None, dataset_id: int | None = None,
                     dataset_fingerprint: str | None = None, job_id: int | None = None,
                     parent_version: int | None = None, artifact_format: str = "skops",
                     saved_with: dict[str, str] | None = None,
                     accepted_sklearn: str | None = None,
                     actor: str | None = None) -> ModelVersion:
    """Write the artifact first, then the row, committed once; if the row cannot be written
    the artifact is removed, so no version exists without its file and no file without its
    version. A unit of work of its own: the session must hold nothing uncommitted (a lost
    race for a new model's row is retried after a rollback).

    `saved_with`: library versions that differ from this process's (an imported file records
    the scikit-learn that saved it); `accepted_sklearn`: see ModelVersion.accepted_sklearn."""
    check_model_name(name)
    stored = save_pipeline(pipeline, name, artifact_format)
    fields = dict(task=Task(task).value, target=target, input_schema=input_schema,
                  classes=classes or [], metric=metric, score=score, metrics=metrics or {},
                  evaluation=evaluation or {}, estimator=estimator, params=params or {},
                  dataset_id=dataset_id, dataset_fingerprint=dataset_fingerprint,
                  job_id=job_id, parent_version=parent_version,
                  artifact_format=stored.format if stored.format != "skops" else artifact_format,
                  library_versions={**library_versions(), **(saved_with or {})},
                  accepted_sklearn=accepted_sklearn)
    try:
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                mv = _insert_version(session, name, stored, actor, dict(fields))
                session.commit()
                return mv
            except IntegrityError:  # a concurrent registration took the number: retry
                session.rollback()
                if attempt == REGISTER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
    except BaseException:
        session.rollback()
        delete_artifact(stored.relpath)
        raise


def _insert_version(s: Session, name: str, artifact: StoredArtifact, actor: str | None,
                    fields: dict[str, Any]) -> ModelVersion:
    lock_for_write(s)
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)
                   .with_for_update()).first()
    if model is None:
        model = RegisteredModel(name=name)
        s.add(model)
        s.flush()
        record(s, "model.create", f"model:{name}", actor=actor)
    previous = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                      .order_by(ModelVersion.version.desc()).limit(1)).first()
    latest = previous.version if previous is not None else None
    if fields["parent_version"] is None and latest:
        fields["parent_version"] = alias_version(s, model.id, PRODUCTION) or latest
    mv = ModelVersion(model_id=model.id, version=(latest or 0) + 1,
                      artifact_path=artifact.relpath, fingerprint=artifact.fingerprint,
                      stored_fingerprint=artifact.stored_fingerprint or artifact.fingerprint,
                      size_bytes=artifact.size_bytes, stage=Stage.NONE,
                      semver=_semver(s, previous, fields),
                      created_by=actor or default_actor(), **fields)
    s.add(mv)
    s.flush()
    record(s, "version.register", f"model:{name}:{mv.version}", actor=actor,
           fingerprint=artifact.fingerprint, metric=fields["metric"], score=fields["score"],
           semver=mv.semver)
    return mv


def _job_settings(s: Session, job_id: int | None) -> dict[str, Any] | None:
    job = s.get(Job, job_id) if job_id is not None else None
    return dict(job.settings or {}) if job is not None else None


def _semver(s: Session, previous: ModelVersion | None, fields: dict[str, Any]) -> str:
    """The new version's label by the rule of core.registry.semver, against the latest."""
    current = basis(fields["input_schema"], fields["dataset_fingerprint"],
                    _job_settings(s, fields["job_id"]))
    if previous is None:
        return next_label(None, None, current)
    before = basis(previous.input_schema, previous.dataset_fingerprint,
                   _job_settings(s, previous.job_id))
    return next_label(previous.semver, before, current)


def resolve(ref: str, *, session: Session) -> tuple[str, ModelVersion]:
    """The version a reference points at: NAME means its production alias, else its latest
    non-archived version; NAME@v1.2.0 the version labelled 1.2.0."""
    r = parse_ref(ref)
    model = model_row(session, r.name)
    number = r.version
    if r.semver is not None:
        mv = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                     ModelVersion.semver == r.semver)).first()
        if mv is None:
            raise NotFoundError(f"Model {r.name!r} has no version labelled v{r.semver}. See "
                                f"the semver column of `workbench versions {r.name}`.")
        return r.name, mv
    if r.alias is not None:
        number = alias_version(session, model.id, r.alias)
        if number is None:
            raise NotFoundError(f"Model {r.name!r} has no alias {r.alias!r}. Set it with "
                                f"`workbench alias {r.name} VERSION {r.alias}`.")
    elif number is None:
        number = alias_version(session, model.id, PRODUCTION) or session.exec(
            select(func.max(ModelVersion.version)).where(
                ModelVersion.model_id == model.id, ModelVersion.stage != Stage.ARCHIVED)
        ).one()
        if number is None:
            raise NotFoundError(f"Model {r.name!r} has no active versions.")
    mv = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                 ModelVersion.version == number)).first()
    if mv is None:
        raise NotFoundError(f"Model {r.name!r} has no version {number}. See "
                            f"`workbench versions {r.name}`.")
    return r.name, mv


def version_by_id(version_id: int, *, session: Session) -> ModelVersion | None:
    """The version row a job or a log points at by its id."""
    return session.get(ModelVersion, version_id)


def load_pipeline(ref: str, *, session: Session) -> tuple[str, ModelVersion, Any]:
    """Resolve, then load the artifact through its fingerprint and trust checks."""
    name, mv = resolve(ref, session=session)
    pipeline = load_verified(mv.artifact_path, mv.fingerprint, f"{name}:{mv.version}",
                             accepted_sklearn=mv.accepted_sklearn,
                             stored_fingerprint=mv.stored_fingerprint)
    return name, mv, pipeline


def accept_library_mismatch(name: str, version: int, *, session: Session,
                            actor: str | None = None, reason: str = "") -> ModelVersion:
    """Let NAME:VERSION load although another scikit-learn saved it, on this scikit-learn
    version only (an audit event; another upgrade asks again)."""
    lock_for_write(session)
    model = model_row(session, name)
    mv = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                 ModelVersion.version == version)
                      .with_for_update()).first()
    if mv is None:
        raise NotFoundError(f"Model {name!r} has no version {version}. See "
                            f"`workbench versions {name}`.")
    mv.accepted_sklearn = sklearn.__version__
    session.add(mv)
    record(session, "version.accept_libraries", f"model:{name}:{version}", actor=actor,
           reason=reason, saved=mv.library_versions.get("scikit-learn"),
           running=sklearn.__version__)
    session.commit()
    return mv


def library_mismatch(mv: ModelVersion) -> LibraryMismatch | None:
    """How the scikit-learn that saved the version differs from this process's, if it does."""
    saved = (mv.library_versions or {}).get("scikit-learn")
    if not saved or saved == sklearn.__version__:
        return None
    return LibraryMismatch(library="scikit-learn", saved=saved, running=sklearn.__version__,
                           accepted=mv.accepted_sklearn == sklearn.__version__)


def version_public(mv: ModelVersion, aliases: list[str]) -> VersionPublic:
    stage = stage_of(mv, PRODUCTION in aliases)
    return VersionPublic(
        version=mv.version, aliases=aliases, task=mv.task, target=mv.target,
        estimator=mv.estimator, metric=mv.metric, score=mv.score, metrics=mv.metrics,
        fingerprint=mv.fingerprint, size_bytes=mv.size_bytes, dataset_id=mv.dataset_id,
        dataset_fingerprint=mv.dataset_fingerprint, job_id=mv.job_id,
        parent_version=mv.parent_version, archived=stage is Stage.ARCHIVED, params=mv.params,
        library_versions=mv.library_versions, library_mismatch=library_mismatch(mv),
        created_at=mv.created_at, created_by=mv.created_by, stage=stage, semver=mv.semver,
        artifact_format=mv.artifact_format, onnx_parity=mv.onnx_parity)


def list_versions(name: str, *, session: Session) -> list[VersionPublic]:
    model = model_row(session, name)
    aliases = aliases_of(session, model.id)
    rows = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                        .order_by(ModelVersion.version)).all()
    return [version_public(mv, aliases.get(mv.version, [])) for mv in rows]


def list_models(*, session: Session) -> list[ModelPublic]:
    """Every model with its version count, latest version and aliases: two queries whatever
    the number of models (the latest version joined per model, then every alias)."""
    latest = (select(ModelVersion.model_id, func.count().label("n"),
                     func.max(ModelVersion.version).label("number"))
              .group_by(ModelVersion.model_id).subquery())
    rows = session.exec(
        select(RegisteredModel, latest.c.n, ModelVersion.version, ModelVersion.task,
               ModelVersion.metric, ModelVersion.score)
        .outerjoin(latest, latest.c.model_id == RegisteredModel.id)
        .outerjoin(ModelVersion, and_(ModelVersion.model_id == RegisteredModel.id,
                                      ModelVersion.version == latest.c.number))
        .order_by(RegisteredModel.name)).all()
    aliases: dict[int, dict[str, int]] = {}
    for a in session.exec(select(Alias).order_by(Alias.id)):
        aliases.setdefault(a.model_id, {})[a.name] = a.version
    return [ModelPublic(name=model.name, versions=n or 0, latest_version=number, task=task,
                        metric=metric, latest_score=score,
                        aliases=aliases.get(model.id, {}), created_at=model.created_at)
            for model, n, number, task, metric, score in rows]
