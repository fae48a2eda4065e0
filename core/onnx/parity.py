"""The parity check every export runs: onnxruntime against the pipeline on the same rows.

Class labels must be equal on every row; probabilities and regression values may differ by
float32 arithmetic only: |onnx − pipeline| ≤ ATOL + RTOL·|pipeline| on every value. The
result is a plain document stored with the version (ModelVersion.onnx_parity)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from core.enums import Task
from core.onnx.convert import ML_OPSET, TARGET_OPSET
from core.registry.onnx_model import OnnxModel

ATOL = 1e-4
RTOL = 1e-4
CONVERTERS = ("skl2onnx", "onnxmltools", "onnxruntime", "onnx")


def converter_versions() -> dict[str, str]:
    out = {}
    for lib in CONVERTERS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return {**out, "opset": str(TARGET_OPSET), "ai.onnx.ml opset": str(ML_OPSET)}


def check(pipeline: Any, data: bytes, rows: pd.DataFrame, task: str, label: str,
          source: str) -> dict[str, Any]:
    """Compare on `rows` (described by `source`); the stored parity document."""
    runner = OnnxModel(data, label)
    doc: dict[str, Any] = {"rows": len(rows), "rows_from": source,
                           "tolerance": {"atol": ATOL, "rtol": RTOL},
                           "converters": converter_versions()}
    if task == Task.REGRESSION:
        want = np.asarray(pipeline.predict(rows), dtype=float)
        got = runner.predict(rows)
        diff = np.abs(got - want)
        ok = bool(np.all(diff <= ATOL + RTOL * np.abs(want)))
        doc.update(max_abs_diff=float(diff.max(initial=0.0)), labels_equal=None)
    else:
        want_p = np.asarray(pipeline.predict_proba(rows), dtype=float)
        got_p = runner.predict_proba(rows)
        diff = np.abs(got_p - want_p)
        want_l = np.asarray(pipeline.predict(rows))
        got_l = np.asarray(runner.run(rows)[0]).reshape(-1)  # the graph's own label output
        same = int(np.sum(np.asarray(want_l, dtype=object) == np.asarray(got_l, dtype=object)))
        ok = bool(same == len(rows) and np.all(diff <= ATOL + RTOL * np.abs(want_p)))
        doc.update(max_abs_diff=float(diff.max(initial=0.0)), labels_equal=same == len(rows),
                   label_mismatches=len(rows) - same)
    doc["passed"] = ok
    return doc
