"""Export a registered version as ONNX: convert, check parity, store the result, hand out
the bytes. Used by `workbench export --format onnx` and GET /v1/models/{name}/versions/
{version}/onnx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session

from core.errors import ConflictError
from core.features.inputs import model_input
from core.onnx import parity
from core.onnx.convert import OnnxBlockedError, input_columns, require, to_onnx
from core.registry.artifacts import load_verified, read_verified
from core.registry.onnx_model import with_metadata
from core.registry.versions import resolve
from core.store import Dataset, ModelVersion
from core.store.audit import record

PARITY_ROWS = 200  # held-out rows compared (the dataset's last rows: a time split's test)
HELD_OUT_SOURCE = "the last "  # how `rows_from` starts when they were (runtime auto needs it)


class ParityFailedError(ConflictError):
    """onnxruntime's answers differ from the pipeline's beyond the stated tolerance."""

    code = "onnx_parity_failed"


@dataclass(frozen=True)
class OnnxExport:
    name: str
    version: int
    data: bytes
    parity: dict[str, Any]


def export_onnx(ref: str, *, session: Session, actor: str | None = None) -> OnnxExport:
    """The version as ONNX bytes, after a passed parity check (stored with the version,
    passed or not). A step without a converter → `OnnxBlockedError` (409) naming it;
    parity failed → `ParityFailedError` (409) with the differences."""
    name, mv = resolve(ref, session=session)
    label = f"{name}:{mv.version}"
    if mv.artifact_format == "onnx":  # imported as ONNX: the audited file is the export
        return OnnxExport(name, mv.version, read_verified(mv.artifact_path, mv.fingerprint,
                                                          label), mv.onnx_parity or {})
    require()
    import onnx

    pipeline = load_verified(mv.artifact_path, mv.fingerprint, label,
                             accepted_sklearn=mv.accepted_sklearn)
    try:
        raw = to_onnx(pipeline, mv.input_schema or [], mv.task, mv.classes, label)
    except OnnxBlockedError as exc:
        _store(session, mv, label, {"passed": False, "blocked": str(exc),
                                    "converters": parity.converter_versions()}, actor)
        raise
    data = with_metadata(onnx.load_model_from_string(raw), mv.task, mv.classes)
    rows, source = held_out_rows(session, mv, pipeline)
    doc = parity.check(pipeline, data, rows, mv.task, label, source)
    _store(session, mv, label, doc, actor)
    if not doc["passed"]:
        raise ParityFailedError(
            f"{label}: the ONNX graph does not reproduce the pipeline on {doc['rows']} rows "
            f"({doc['rows_from']}): max difference {doc['max_abs_diff']:.3g} (tolerance "
            f"{parity.ATOL:g} + {parity.RTOL:g}·|value|), label mismatches "
            f"{doc.get('label_mismatches', 0)}. Not exported; the result is stored with the "
            "version.")
    return OnnxExport(name, mv.version, data, doc)


def _store(session: Session, mv: ModelVersion, label: str, doc: dict[str, Any],
           actor: str | None) -> None:
    mv.onnx_parity = doc
    session.add(mv)
    record(session, "version.onnx_export", f"model:{label}", actor=actor,
           passed=doc["passed"], max_abs_diff=doc.get("max_abs_diff"))
    session.commit()


def held_out_rows(session: Session, mv: ModelVersion, pipeline: Any
                  ) -> tuple[pd.DataFrame, str]:
    """The last PARITY_ROWS rows of the version's dataset (a time-ordered split holds these
    out), else rows built from the schema and the fitted categories (imported versions)."""
    ds = session.get(Dataset, mv.dataset_id) if mv.dataset_id is not None else None
    if ds is not None:
        from core.data.datasets import load_frame

        try:
            frame = load_frame(ds).tail(PARITY_ROWS).reset_index(drop=True)
            n = min(len(frame), PARITY_ROWS)
            return model_input(mv, frame), f"{HELD_OUT_SOURCE}{n} rows of dataset {ds.id}"
        except Exception:  # noqa: BLE001 - a missing file: fall back to built rows
            pass
    schema = mv.input_schema or []
    rows = synthetic_rows(schema, pipeline)
    try:
        pipeline.predict(rows.head(PARITY_ROWS))
    except ValueError:  # a pipeline that refuses missing values or unseen categories itself
        return synthetic_rows(schema, pipeline, gaps=False), "rows built from the schema " \
                                                             "(no gaps: the pipeline refuses them)"
    return rows, "rows built from the schema"


def synthetic_rows(schema: list[Any], pipeline: Any, n: int = PARITY_ROWS, seed: int = 0,
                   gaps: bool = True) -> pd.DataFrame:
    """Numbers around the fitted scale, categories drawn from the fitted encoders'
    categories; with `gaps`, some missing values and an unseen category too, so imputation
    and unknown handling are compared as well."""
    rng = np.random.default_rng(seed)
    cats = _fitted_categories(pipeline)
    data: dict[str, Any] = {}
    for name, numeric in input_columns(schema):
        if numeric:
            col = rng.normal(size=n) * 2.0
            if gaps:
                col[rng.random(n) < 0.05] = np.nan
            data[name] = col
        else:
            choices = [*cats.get(name, ["a", "b"]), *(["__unseen__"] if gaps else [])]
            col = np.asarray(rng.choice(np.asarray(choices, dtype=object), size=n),
                             dtype=object)
            if gaps:
                col[rng.random(n) < 0.05] = None
            data[name] = col
    return pd.DataFrame(data)


def _fitted_categories(pipeline: Any) -> dict[str, list[Any]]:
    from core.onnx.convert import members_of

    out: dict[str, list[Any]] = {}
    for member in members_of(pipeline):
        ct = member.pipeline.steps[0][1] if hasattr(member.pipeline, "steps") else None
        for _, trans, cols in getattr(ct, "transformers_", []):
            last = trans.steps[-1][1] if hasattr(trans, "steps") else trans
            for col, values in zip(cols if isinstance(cols, list) else list(cols),
                                   getattr(last, "categories_", []), strict=False):
                out.setdefault(str(col), [v for v in values if v != "__missing__"])
    return out
