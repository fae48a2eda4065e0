"""ONNX files as registry artifacts: audited as data, then answered by onnxruntime.

An ONNX file is a graph of operators, not code, as long as every operator is one of the
standard ones: custom domains (a custom op is a native library's function), external data
(a path the runtime would read from this server's disk) and absurd sizes are refused before
onnxruntime sees the bytes. `OnnxModel` answers `predict` / `predict_proba` on a DataFrame,
like a scikit-learn pipeline, so serving, canaries, monitoring and rollback treat it as any
other version. Needs the optional extra `onnx` (onnx, onnxruntime)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ArtifactIntegrityError, InputError, UntrustedArtifactError
from core.registry.onnx_bounds import MAX_ROW_BYTES, MAX_VALUE_BYTES, check_allocations

SUFFIX = ".onnx"
MAX_BYTES = 256 * 1024 * 1024  # a tabular model is kilobytes to tens of megabytes
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
MISSING_LABEL = "__missing__"  # a missing category, as core.features.transformers spells it
META_CLASSES, META_TASK = "workbench.classes", "workbench.task"
INSTALL = "pip install -e '.[onnx]'"
# rows per onnxruntime run: the audit bounds each value's size per row (MAX_ROW_BYTES), so a
# run of this many rows keeps every value within MAX_VALUE_BYTES; a 100,000-row request (the
# REST limit) would otherwise let one value reach 6 GiB (review s9 M2)
ROWS_PER_RUN = MAX_VALUE_BYTES // MAX_ROW_BYTES


def _onnx() -> Any:
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        raise InputError(f"ONNX models need the optional extra `onnx`: run `{INSTALL}`.") \
            from None
    return onnx


def audit(data: bytes, label: str) -> Any:
    """The parsed model (onnx.ModelProto) if `data` is a standard-operator ONNX graph of a
    sane size; otherwise an error that says what is wrong."""
    onnx = _onnx()
    if len(data) > MAX_BYTES:
        raise UntrustedArtifactError(
            f"{label} is {len(data) / 2**20:.0f} MiB; ONNX models over "
            f"{MAX_BYTES // 2**20} MiB are refused.")
    try:
        model = onnx.load_model_from_string(data)
    except Exception:
        raise ArtifactIntegrityError(
            f"{label} is not a readable ONNX model (truncated or not ONNX at all). Export it "
            "again and import the complete file.") from None
    if not model.HasField("graph") or not model.graph.output:
        raise ArtifactIntegrityError(f"{label} holds no ONNX graph with outputs (truncated "
                                     "or not ONNX). Export it again.")
    domains = {o.domain for o in model.opset_import} | {n.domain for n in _nodes(model.graph)}
    domains |= {f.domain for f in model.functions}
    bad = sorted(domains - ALLOWED_DOMAINS)
    if bad:
        raise UntrustedArtifactError(
            f"{label} uses operators outside the standard ONNX domains: {', '.join(bad)}. "
            "Custom operators run native code from outside the model, so they are refused; "
            "export the model with standard operators only (ai.onnx, ai.onnx.ml).")
    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise UntrustedArtifactError(
                f"{label} keeps tensor {tensor.name!r} in an external file; only "
                "self-contained ONNX files are accepted (save with all data inside).")
        declared = math.prod(tensor.dims) if tensor.dims else 1
        if declared * 8 > MAX_BYTES:
            raise UntrustedArtifactError(
                f"{label} declares tensor {tensor.name!r} of shape {list(tensor.dims)}, over "
                f"the {MAX_BYTES // 2**20} MiB limit: refused.")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ArtifactIntegrityError(f"{label} is not a valid ONNX model: "
                                     f"{str(exc).splitlines()[0][:300]}") from None
    check_allocations(model, label)  # what it would allocate at run time (onnx_bounds.py)
    return model


def _nodes(graph: Any) -> list[Any]:
    out = []
    for node in graph.node:
        out.append(node)
        for attr in node.attribute:
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs:
                out.extend(_nodes(sub))
    return out


def _tensors(model: Any) -> list[Any]:
    tensors = list(model.graph.initializer)
    for node in _nodes(model.graph):
        tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    return tensors


def with_metadata(model: Any, task: str, classes: list[Any] | None) -> bytes:
    """The model's bytes with the task and class order it answers in, as metadata any ONNX
    runtime shows."""
    for prop in list(model.metadata_props):
        if prop.key in (META_CLASSES, META_TASK):
            model.metadata_props.remove(prop)
    model.metadata_props.add(key=META_TASK, value=str(task))
    model.metadata_props.add(key=META_CLASSES, value=json.dumps(list(classes or [])))
    return model.SerializeToString()


class OnnxModel:
    """An audited ONNX graph answered by onnxruntime, called like a fitted pipeline."""

    def __init__(self, data: bytes, label: str) -> None:
        import onnxruntime as ort

        model = audit(data, label)
        meta = {p.key: p.value for p in model.metadata_props}
        self.label = label
        self.task = meta.get(META_TASK, "")
        self.classes_ = np.asarray(json.loads(meta.get(META_CLASSES, "[]")), dtype=object)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one request per thread; the server runs many
        try:
            self.session = ort.InferenceSession(data, options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # an IR version or operator this onnxruntime lacks
            detail = str(exc).strip().splitlines()[0][-300:]
            raise ArtifactIntegrityError(
                f"onnxruntime {ort.__version__} cannot run {label}: {detail}. Export it for an "
                "older ONNX version (IR version and opset) and import it again.") from None
        self.inputs = [(i.name, i.type == "tensor(string)", i.shape)
                       for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _feed(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1 and self.inputs[0][0] not in X.columns:  # one [N, F] input
            name, text, _ = self.inputs[0]
            return {name: X.to_numpy(dtype=object if text else np.float32)}
        feed = {}
        for name, text, _ in self.inputs:
            col = X[[name]]
            if text:
                col = col.astype(object).where(col.notna(), MISSING_LABEL).astype(str)
                feed[name] = col.to_numpy(dtype=object)
            else:
                feed[name] = pd.to_numeric(col[name], errors="coerce").to_numpy(
                    dtype=np.float32).reshape(-1, 1)
        return feed

    def run(self, X: pd.DataFrame) -> list[Any]:
        """The graph's outputs for X, run ROWS_PER_RUN rows at a time (joined by rows)."""
        if len(X) <= ROWS_PER_RUN:
            return self.session.run(None, self._feed(X))
        parts = [self.session.run(None, self._feed(X.iloc[i:i + ROWS_PER_RUN]))
                 for i in range(0, len(X), ROWS_PER_RUN)]
        return [[row for part in outs for row in part] if isinstance(outs[0], list)
                else np.concatenate(outs) if np.ndim(outs[0]) else outs[0]
                for outs in zip(*parts, strict=True)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = self.run(X)
        proba = out[1] if len(out) > 1 else out[0]
        if isinstance(proba, list):  # a ZipMap: one {class: probability} per row
            return np.asarray([[row[c] for c in self.classes_] for row in proba], dtype=float)
        return np.asarray(proba, dtype=float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if len(self.classes_):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return np.asarray(self.run(X)[0], dtype=float).reshape(-1)
