"""Which data a retrain learns from: the newest data of the model's kind, plus what it has
been told since.

A model's versions are not all trained here: an imported version records no dataset and no
target. A retrain therefore starts from the newest version that recorded its training data
(its dataset, target and job settings), takes the newest upload with that dataset's columns,
and adds the served rows whose true value was fed back after that upload (the prediction log's
label joined to the request's logged rows). "New" means no version or job of the model has
trained on exactly that table yet: what an alert-triggered retrain requires, since retraining
on the same table only produces a candidate the promotion gate must reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from core.data.datasets import load_frame, store_frame
from core.data.ingest import fingerprint_frame
from core.deploy.columns import stored_records
from core.errors import InputError, NotFoundError
from core.features.kinds import holds_booleans, holds_datetimes, holds_numbers
from core.jobs.states import ACTIVE, JobState
from core.store import Dataset, Job, ModelVersion, PredictionLog, RegisteredModel, RequestInput

TRAINED_STATES = ACTIVE | {JobState.COMPLETED}
FEEDBACK_SOURCE = "feedback to {model}"  # source_filename of the tables built here


@dataclass(frozen=True)
class RetrainData:
    base: ModelVersion     # the newest version (or the one asked about) that recorded its data
    job: Job | None        # the job that trained it: its target and settings are reused
    target: str
    dataset: Dataset       # the table a retrain trains on
    feedback_rows: int     # fed-back served rows included in `dataset`
    new: bool              # no version or job of the model has trained on `dataset` yet


def retrain_data(model: str, version: int | None = None, *, session: Session,
                 actor: str | None = None) -> RetrainData:
    """The data a retrain of `model` uses. With `version` (the live version an alert is
    about), that version's own data is the starting point when it recorded any. May store a
    new dataset (the newest upload plus fed-back rows), committed on `session` then, so call
    it before writing anything else."""
    base, job, source = _base(session, model, version)
    target = job.target if job is not None else base.target
    latest = _newest_compatible(session, model, source)
    market = bool(job is not None and (job.settings or {}).get("market"))
    labelled = [] if market else _labelled_rows(session, model, latest, base, target)
    dataset = latest
    if labelled:
        frame = _union(load_frame(latest), labelled)
        dataset = store_frame(frame, session=session, name=f"{latest.name}+feedback",
                              fingerprint=fingerprint_frame(frame),
                              source_filename=FEEDBACK_SOURCE.format(model=model),
                              actor=actor).dataset
    return RetrainData(base, job, target, dataset, len(labelled),
                       new=not _trained_on(session, model, dataset.id))


def _base(s: Session, model: str, version: int | None
          ) -> tuple[ModelVersion, Job | None, Dataset]:
    versions = s.exec(select(ModelVersion).join(RegisteredModel)
                      .where(RegisteredModel.name == model)
                      .order_by(ModelVersion.version.desc())).all()
    if not versions:
        raise NotFoundError(f"No model named {model!r} with a version to retrain.")
    with_data = [v for v in versions if v.dataset_id is not None]
    asked = [v for v in with_data if v.version == version]
    if not with_data:
        raise InputError(
            f"No version of {model!r} recorded the data it was trained on (imported "
            "versions record none), so there is nothing to retrain on. Train it once on a "
            f"table under the name {model!r} (CLI: `workbench automl DATA --target COL "
            f"--name {model}`).")
    base = (asked or with_data)[0]
    source = s.get(Dataset, base.dataset_id)
    job = s.get(Job, base.job_id) if base.job_id else None
    return base, job, source


def _columns(ds: Dataset) -> list[str]:
    return [c["name"] for c in ds.columns]


def _newest_compatible(s: Session, model: str, source: Dataset) -> Dataset:
    """The newest dataset stored after `source` that has all of its columns, else `source`
    (another model's feedback tables are not this model's data)."""
    needed = set(_columns(source))
    newer = s.exec(select(Dataset).where(Dataset.id > source.id)
                   .order_by(Dataset.id.desc())).all()
    return next((d for d in newer if needed <= set(_columns(d)) and (
        not d.source_filename.startswith(FEEDBACK_SOURCE.format(model=""))
        or d.source_filename == FEEDBACK_SOURCE.format(model=model))), source)


def _labelled_rows(s: Session, model: str, since: Dataset, base: ModelVersion,
                   target: str) -> list[dict[str, Any]]:
    """Served rows of `model` whose true value was fed back after `since` was stored, each
    with the label under the target column; rows missing a feature the model needs are
    left out."""
    features = [c["name"] for c in base.input_schema]
    pairs = s.exec(select(RequestInput.rows, PredictionLog.actual)
                   .join(PredictionLog, PredictionLog.request_id == RequestInput.request_id)
                   .where(PredictionLog.model_name == model,
                          PredictionLog.actual.is_not(None),
                          PredictionLog.feedback_at > since.created_at)
                   .order_by(PredictionLog.id)).all()
    out = []
    for kept, actual in pairs:
        rows = stored_records(kept)
        actual = actual if isinstance(actual, list) else [actual]
        if len(actual) != len(rows):
            continue
        out.extend({**row, target: label} for row, label in zip(rows, actual, strict=True)
                   if label is not None and all(f in row for f in features))
    return out


def _union(frame: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The stored table plus the fed-back rows, in its columns and (where a value allows)
    its column types: JSON gives numbers, strings and nulls."""
    extra = pd.DataFrame(rows).reindex(columns=frame.columns)
    for col in frame.columns:
        dtype = frame[col].dtype
        if holds_booleans(dtype):
            continue
        if holds_numbers(dtype):
            extra[col] = pd.to_numeric(extra[col], errors="coerce")
        elif holds_datetimes(dtype):
            extra[col] = pd.to_datetime(extra[col], errors="coerce",
                                        utc=getattr(dtype, "tz", None) is not None)
        else:  # text columns stay text: a label fed back as 1 joins the stored "1"
            extra[col] = extra[col].map(lambda v: v if v is None or v != v else str(v))
    return pd.concat([frame, extra], ignore_index=True)


def _trained_on(s: Session, model: str, dataset_id: int) -> bool:
    """Whether a version of `model` came from this dataset or a job of it is training (or
    trained) on it."""
    version = s.exec(select(ModelVersion.id).join(RegisteredModel).where(
        RegisteredModel.name == model, ModelVersion.dataset_id == dataset_id)).first()
    job = s.exec(select(Job.id).where(Job.model_name == model,
                                      Job.dataset_id == dataset_id,
                                      Job.state.in_(TRAINED_STATES))).first()
    return version is not None or job is not None
