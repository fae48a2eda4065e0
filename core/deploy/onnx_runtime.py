"""onnxruntime as a deployment's runtime (`"runtime": "onnx" | "python" | "auto"`).

A version deployed with `onnx` is answered by an onnxruntime InferenceSession (one intra-op
thread, created once when the version is loaded, kept with it in the model cache like the lean
path) on the graph `core.onnx.convert.to_onnx` builds from the loaded pipeline: the same
conversion the export's parity check passed. `onnx` is refused at deploy time unless that
check passed (`check_runtime`). With `auto` (the default) a version whose parity passed is
timed at load on a 1-row and a 100-row probe through both paths (lean path, else the
pipeline; and onnxruntime) and keeps the faster. Either way the graph is first compared with
the pipeline on probe rows (the lean path's rule): if it disagrees, python answers and the
reason says so. Answers have the python path's shape (labels, probabilities, values; the
regression intervals come from the version's stored widths whatever answered)."""

from __future__ import annotations

import logging
import math
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.deploy.enums import Runtime
from core.enums import Task
from core.errors import ConflictError, InputError
from core.store import ModelVersion
from core.store.shapes import Record

if TYPE_CHECKING:
    from core.deploy.cache import LoadedModel

log = logging.getLogger("workbench.serving")
MISSING = "__missing__"  # a missing category, as the graph expects it (docs/deep/onnx.md)
PROBE_ROWS = 100
TIMING_ROUNDS = 5


class OnnxParityRequiredError(ConflictError):
    """`runtime: onnx` for a version whose ONNX export has not passed its parity check."""

    code = "onnx_parity_required"


def check_runtime(mv: ModelVersion, runtime: str, label: str) -> str:
    """The runtime to store for `mv`, or a clear refusal."""
    try:
        value = Runtime(runtime)
    except ValueError:
        raise InputError(f"Unknown runtime {runtime!r}: use one of "
                         f"{', '.join(r.value for r in Runtime)}.") from None
    if value is Runtime.ONNX and mv.artifact_format != "onnx" and \
            not (mv.onnx_parity or {}).get("passed"):
        why = (mv.onnx_parity or {}).get("blocked") or (
            "its ONNX export failed the parity check" if mv.onnx_parity
            else "it has never been exported to ONNX")
        raise OnnxParityRequiredError(
            f"{label} cannot be served by the onnx runtime: {why}. Export it first with "
            f"`workbench export {label} --format onnx --out {label.replace(':', '-')}.onnx` "
            "(a passed parity check is stored with the version), then deploy it with "
            "runtime onnx; or deploy it with runtime python or auto.")
    return value.value


class OnnxRuntime:
    """A loaded version's ONNX graph in an onnxruntime session, answering records."""

    def __init__(self, runner: Any, task: str) -> None:
        self.runner = runner  # core.registry.onnx_model.OnnxModel (the session, 1 thread)
        self.classify = task != Task.REGRESSION
        self.inputs = [(name, text) for name, text, _ in runner.inputs]

    def _feed(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {}
        for name, text in self.inputs:
            col = data[name]
            if text:
                cells = [MISSING if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                         else str(v) for v in col.tolist()]
                feed[name] = np.asarray(cells, dtype=object).reshape(-1, 1)
            else:
                feed[name] = np.asarray(col, dtype=np.float32).reshape(-1, 1)
        return feed

    def predict_records(self, lm: LoadedModel, records: list[Record]
                        ) -> tuple[list[Any], np.ndarray | None]:
        """The python path's answer shape: (labels or values, probabilities or None)."""
        data = lm.arrays(records)
        session = self.runner.session
        if data is None:  # values needing the careful path (it explains what is wrong)
            out = self.runner.run(lm.frame(records))
        else:
            try:
                out = session.run(None, self._feed(data))
            except (ValueError, TypeError):
                out = self.runner.run(lm.frame(records))
        if self.classify:
            return lm._labelled(np.asarray(out[1], dtype=float))
        return np.asarray(out[0], dtype=float).reshape(-1).tolist(), None


def request(lm: LoadedModel, requested: str, *, changed_only: bool = False) -> int | None:
    """Make `requested` lm's current runtime request (python answers until it is chosen);
    its generation, which only the matching `commit` may settle. None (nothing to do) with
    `changed_only` when it already is the request."""
    with lm.choice_lock:
        if changed_only and lm.runtime_requested == requested:
            return None
        lm.choice_gen += 1
        lm.onnx, lm.runtime_requested = None, requested
        lm.runtime_reason = f"{requested}: python answers while the runtime is being chosen"
        return lm.choice_gen


def commit(lm: LoadedModel, gen: int, runtime: OnnxRuntime | None, reason: str) -> bool:
    """Settle request `gen` with what `decide` found, unless a later request replaced it
    (a slow onnx choice finishing after a switch to python must not win): True if settled."""
    with lm.choice_lock:
        if lm.choice_gen != gen:
            log.info("%s: a stale runtime choice (%s) dropped", lm.label, reason)
            return False
        lm.onnx, lm.runtime_reason = runtime, reason
    # what this process chose and why, for the server's log (another worker may differ)
    log.info("%s: %s answers in process %d: %s", lm.label,
             "onnxruntime" if runtime is not None else "python", os.getpid(), reason)
    return True


def choose(lm: LoadedModel, requested: str, gen: int | None = None) -> bool:
    """Set what answers `lm` (`lm.onnx`, `lm.runtime_reason`) for the requested runtime:
    a new request, or the one numbered `gen` (made earlier by `request`)."""
    if gen is None:
        gen = request(lm, requested)
        assert gen is not None
    runtime, reason = decide(lm, requested)
    return commit(lm, gen, runtime, reason)


def settled(lm: LoadedModel, requested: str) -> str | None:
    """The reason python (or an imported graph) answers when that needs no probing; None
    when onnxruntime must be built and probed (and, under auto, timed)."""
    label = lm.label
    imported = type(lm.pipeline).__name__ == "OnnxModel"
    if lm.market is not None:
        return "a market model: indicators are rebuilt from each request's history in python"
    if imported:
        return "an imported ONNX graph: onnxruntime answers"
    if requested == Runtime.PYTHON:
        return "runtime python was asked for"
    parity = lm.mv.onnx_parity or {}
    if not parity.get("passed"):
        return (f"{requested}: no passed ONNX parity check (`workbench export "
                f"{label} --format onnx` first), so python answers")
    if requested == Runtime.AUTO and not held_out(parity):
        return (f"auto: the ONNX parity check ran on {parity.get('rows_from') or 'built rows'}"
                ", not on held-out rows of the version's dataset, so python answers (deploy "
                "it with runtime onnx to use onnxruntime anyway)")
    return None


def held_out(parity: dict[str, Any]) -> bool:
    """Whether the stored parity check compared the version's own held-out dataset rows."""
    from core.onnx.export import HELD_OUT_SOURCE

    return str(parity.get("rows_from") or "").startswith(HELD_OUT_SOURCE)


def decide(lm: LoadedModel, requested: str) -> tuple[OnnxRuntime | None, str]:
    """(onnxruntime or None for python, why): builds, probes and times; changes nothing."""
    reason = settled(lm, requested)
    if reason is not None:
        return None, reason
    try:
        runtime = _build(lm)
        rows, records = _probe(lm)
        if not _agrees(lm, runtime, rows, records):
            return None, (f"{requested}: the ONNX graph differs from the pipeline on "
                          "probe rows here, so python answers")
    except Exception as exc:  # noqa: BLE001 - an extra missing here, a converter's refusal
        log.warning("%s: onnx runtime not used: %s", lm.label, exc)
        return None, f"{requested}: onnxruntime unavailable ({exc}), so python answers"
    if requested == Runtime.ONNX:
        return runtime, "runtime onnx was asked for (parity passed)"
    python, onnx = _timings(lm, runtime, records)
    ratio = math.sqrt((onnx[0] / python[0]) * (onnx[1] / python[1]))
    path = "lean path" if lm.fast is not None else "scikit-learn"
    text = (f"1 row {onnx[0] * 1e6:.0f} µs vs {python[0] * 1e6:.0f} µs, {PROBE_ROWS} rows "
            f"{onnx[1] * 1e6:.0f} µs vs {python[1] * 1e6:.0f} µs (onnxruntime vs {path})")
    if ratio < 1.0:
        return runtime, f"auto: onnxruntime is faster here: {text}"
    return None, f"auto: the {path} is faster here: {text}"


def _build(lm: LoadedModel) -> OnnxRuntime:
    import onnx

    from core.onnx.convert import to_onnx
    from core.registry.onnx_model import OnnxModel, with_metadata

    mv = lm.mv
    raw = to_onnx(lm.pipeline, mv.input_schema or [], mv.task, mv.classes, lm.label)
    data = with_metadata(onnx.load_model_from_string(raw), mv.task, mv.classes)
    return OnnxRuntime(OnnxModel(data, lm.label), mv.task)


def _probe(lm: LoadedModel) -> tuple[pd.DataFrame, list[Record]]:
    """Probe rows (missing values and an unseen category when the pipeline takes them) as a
    frame and as the records a caller sends."""
    from core.onnx.export import synthetic_rows

    schema = lm.mv.input_schema or []
    rows = synthetic_rows(schema, lm.pipeline, n=PROBE_ROWS, seed=1)
    try:
        lm.predict_frame(_complete(lm, rows))
    except ValueError:
        rows = synthetic_rows(schema, lm.pipeline, n=PROBE_ROWS, seed=1, gaps=False)
    frame = _complete(lm, rows)
    records = [{k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
               for rec in frame.to_dict("records")]
    return frame, records


def _complete(lm: LoadedModel, rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    for col in lm.columns:
        if col not in out.columns:
            out[col] = None
    return out[lm.columns]


def _agrees(lm: LoadedModel, runtime: OnnxRuntime, frame: pd.DataFrame,
            records: list[Record]) -> bool:
    from core.onnx.parity import ATOL, RTOL

    want, want_p = lm.predict_frame(frame)  # the real pipeline
    got, got_p = runtime.predict_records(lm, records)
    if runtime.classify:
        return list(got) == list(want) and bool(
            np.all(np.abs(got_p - want_p) <= ATOL + RTOL * np.abs(want_p)))
    w, g = np.asarray(want, dtype=float), np.asarray(got, dtype=float)
    return bool(np.all(np.abs(g - w) <= ATOL + RTOL * np.abs(w)))


def _timings(lm: LoadedModel, runtime: OnnxRuntime, records: list[Record]
             ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best of TIMING_ROUNDS per (path, size), the two paths alternating: (python, onnx)."""
    best = {(p, n): float("inf") for p in ("python", "onnx") for n in (1, PROBE_ROWS)}
    for _ in range(TIMING_ROUNDS):
        for n in (1, PROBE_ROWS):
            batch = records[:n]
            for path in ("python", "onnx"):
                t0 = time.perf_counter()
                if path == "onnx":
                    runtime.predict_records(lm, batch)
                else:
                    lm.predict_records(batch)
                best[path, n] = min(best[path, n], time.perf_counter() - t0)
    return ((best["python", 1], best["python", PROBE_ROWS]),
            (best["onnx", 1], best["onnx", PROBE_ROWS]))


__all__ = ["OnnxParityRequiredError", "OnnxRuntime", "check_runtime", "choose", "commit",
           "decide", "request", "settled"]
