"""Registered models: listing, one model's versions and deployment, evaluation on labelled
records, comparison of versions, loading and unloading in this process."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ServingDep
from app.api.errors import ERRORS, PREDICT_ERRORS
from app.api.schemas import CompareRequest, EvaluateRequest, LoadRequest
from core.deploy.evaluation import evaluate_records
from core.deploy.service import Serving
from core.registry.versions import check_model_name, list_models, list_versions, resolve

router = APIRouter(tags=["models"])


@router.get("/v1/models")
def models() -> list[dict[str, Any]]:
    return list_models()


@router.get("/v1/models/{name}", responses=ERRORS)
def model(name: str, serving: ServingDep) -> dict[str, Any]:
    versions = list_versions(check_model_name(name))
    st = serving.state(name, fresh=True)
    aliases = {a: v["version"] for v in versions for a in v["aliases"]}
    loaded = [{"version": lm.version, "lean_path": lm.fast is not None}
              for lm in serving.cache.loaded_models(name)]
    return {"name": name, "versions": versions, "aliases": aliases,
            "deployment": st.to_dict(), "loaded_here": loaded}


@router.post("/v1/models/{name}/evaluate", responses=PREDICT_ERRORS)
def evaluate(name: str, body: EvaluateRequest, serving: ServingDep) -> dict[str, Any]:
    check_model_name(name)
    ref = f"{name}:{body.version}" if body.version else name
    if body.version is None:
        st = serving.state(name, fresh=True)
        ref = f"{name}:{st.stable}" if st.stable else name
    with serving.evaluation_slot():
        return evaluate_records(serving, ref, body.records, body.target)


@router.post("/v1/models/compare", responses=PREDICT_ERRORS)
def compare(body: CompareRequest, serving: ServingDep) -> dict[str, Any]:
    with serving.evaluation_slot():
        return _compare(serving, body)


def _compare(serving: Serving, body: CompareRequest) -> dict[str, Any]:
    rows = []
    for ref in body.versions:
        name, mv = resolve(ref)
        row = {"ref": ref, "model": name, "version": mv.version, "task": mv.task,
               "metric": mv.metric, "score": mv.score, "metrics": mv.metrics}
        if body.records:
            row["evaluation"] = evaluate_records(serving, f"{name}:{mv.version}",
                                                 body.records, body.target)
        rows.append(row)
    return {"versions": rows}


@router.post("/v1/models/{name}/load", responses=ERRORS)
def load(name: str, serving: ServingDep, body: LoadRequest | None = None) -> dict[str, Any]:
    _, mv = resolve(f"{check_model_name(name)}:{body.version}" if body and body.version
                    else name)
    serving.warm(name, mv.version)
    return {"model": name, "version": mv.version, "loaded": serving.cache.loaded()}


@router.post("/v1/models/{name}/unload", responses=ERRORS)
def unload(name: str, serving: ServingDep, body: LoadRequest | None = None) -> dict[str, Any]:
    check_model_name(name)
    freed = serving.cache.unload(name, body.version if body else None)
    return {"model": name, "unloaded": freed, "loaded": serving.cache.loaded()}
