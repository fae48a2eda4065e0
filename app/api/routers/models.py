"""Registered models: listing, one model's versions and deployment, evaluation on labelled
records, comparison of versions, loading and unloading in this process."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import ServingDep, SessionDep
from app.api.errors import ERRORS, PREDICT_ERRORS
from app.api.schemas import CompareRequest, EvaluateRequest, LoadRequest
from core.deploy.evaluation import Evaluation, evaluate_records
from core.deploy.service import Serving
from core.enums import Task
from core.registry import (
    ModelPublic,
    VersionPublic,
    check_model_name,
    list_models,
    list_versions,
    resolve,
)
from core.registry.onnx_model import OnnxModel

router = APIRouter(tags=["models"])


class LoadedHere(BaseModel):
    """A version held in this server process's model cache."""

    version: int
    lean_path: bool  # served by the compiled fast path, not the scikit-learn pipeline
    # what answers its requests: "lean" (the fast path), "scikit-learn" (the pipeline) or
    # "onnxruntime" (an imported ONNX graph, or the deployment's runtime onnx/auto chose it)
    runtime: str = "scikit-learn"
    runtime_requested: str = "auto"  # the deployment's runtime for it: auto, python, onnx
    runtime_reason: str = ""  # why `runtime` answers (auto: the probe timings)


class ModelDetail(BaseModel):
    """One model: every version, where its aliases point, its deployment, and what this
    process has loaded."""

    name: str
    versions: list[VersionPublic]
    aliases: dict[str, int]
    deployment: dict[str, Any]  # core.deploy's DeploymentState, as its to_dict() writes it
    loaded_here: list[LoadedHere]


class ComparedVersion(BaseModel):
    """One version of a comparison: its registered scores, and with labelled records its
    metrics on them (absent without records)."""

    ref: str
    model: str
    version: int
    task: Task
    metric: str
    score: float | None
    metrics: dict[str, float | None]
    evaluation: Evaluation | None = None  # core.deploy.evaluation's answer


class Comparison(BaseModel):
    versions: list[ComparedVersion]


class LoadAnswer(BaseModel):
    model: str
    version: int
    loaded: list[str]  # NAME:VERSION of every version this process holds


class UnloadAnswer(BaseModel):
    model: str
    unloaded: list[int]
    loaded: list[str]


@router.get("/v1/models", response_model=list[ModelPublic])
def models(session: SessionDep) -> list[ModelPublic]:
    return list_models(session=session)


def _runtime(lm: Any) -> str:
    if isinstance(lm.pipeline, OnnxModel) or lm.onnx is not None:
        return "onnxruntime"
    return "lean" if lm.fast is not None else "scikit-learn"


@router.get("/v1/models/{name}", response_model=ModelDetail, responses=ERRORS)
def model(name: str, serving: ServingDep, session: SessionDep) -> ModelDetail:
    versions = list_versions(check_model_name(name), session=session)
    st = serving.state(name, fresh=True)
    aliases = {a: v.version for v in versions for a in v.aliases}
    loaded = [LoadedHere(version=lm.version, lean_path=lm.fast is not None,
                         runtime=_runtime(lm), runtime_requested=lm.runtime_requested,
                         runtime_reason=lm.runtime_reason)
              for lm in serving.cache.loaded_models(name)]
    return ModelDetail(name=name, versions=versions, aliases=aliases,
                       deployment=st.to_dict(), loaded_here=loaded)


@router.post("/v1/models/{name}/evaluate", responses=PREDICT_ERRORS)
def evaluate(name: str, body: EvaluateRequest, serving: ServingDep, session: SessionDep
             ) -> Evaluation:
    check_model_name(name)
    ref = f"{name}:{body.version}" if body.version else name
    if body.version is None:
        st = serving.state(name, fresh=True)
        ref = f"{name}:{st.stable}" if st.stable else name
    with serving.evaluation_slot():
        return evaluate_records(serving, ref, body.records, body.target, session=session)


@router.post("/v1/models/compare", response_model=Comparison,
             response_model_exclude_unset=True, responses=PREDICT_ERRORS)
def compare(body: CompareRequest, serving: ServingDep, session: SessionDep) -> Comparison:
    with serving.evaluation_slot():
        return _compare(serving, body, session)


def _compare(serving: Serving, body: CompareRequest, session: SessionDep) -> Comparison:
    rows = []
    for ref in body.versions:
        name, mv = resolve(ref, session=session)
        row = ComparedVersion(ref=ref, model=name, version=mv.version, task=mv.task,
                              metric=mv.metric, score=mv.score, metrics=mv.metrics)
        if body.records:
            row.evaluation = evaluate_records(serving, f"{name}:{mv.version}", body.records,
                                              body.target, session=session)
        rows.append(row)
    return Comparison(versions=rows)


@router.post("/v1/models/{name}/load", response_model=LoadAnswer, responses=ERRORS)
def load(name: str, serving: ServingDep, session: SessionDep,
         body: LoadRequest | None = None) -> LoadAnswer:
    _, mv = resolve(f"{check_model_name(name)}:{body.version}" if body and body.version
                    else name, session=session)
    serving.warm(name, mv.version)
    return LoadAnswer(model=name, version=mv.version, loaded=serving.cache.loaded())


@router.post("/v1/models/{name}/unload", response_model=UnloadAnswer, responses=ERRORS)
def unload(name: str, serving: ServingDep, session: SessionDep,
           body: LoadRequest | None = None) -> UnloadAnswer:
    resolve(check_model_name(name), session=session)  # another workspace's model: 404
    freed = serving.cache.unload(name, body.version if body else None)
    return UnloadAnswer(model=name, unloaded=freed, loaded=serving.cache.loaded())
