"""An imported ONNX graph is run at most ROWS_PER_RUN rows at a time (review s9 M2): the
audit allows each value 64 KiB per row, which at the REST limit of 100,000 rows is 6 GiB
for one value (a Tile of each row 16,000 times passes it); in runs of 4,096 rows no value
exceeds the 256 MiB per-value bound. The graph here answers, on every row, how many rows
its run had; the answers join back in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime", reason="ONNX import needs the extra `onnx`")

from onnx import TensorProto, helper  # noqa: E402

from core.registry.onnx_model import ROWS_PER_RUN, OnnxModel, with_metadata  # noqa: E402


def _rows_in_run() -> OnnxModel:
    """y = a * 0 + (rows in this run) + a (so the order of the rows shows too)."""
    nodes = [helper.make_node("Shape", ["a"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["a", "nf"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor("zero", TensorProto.INT64, [], [0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return OnnxModel(with_metadata(model, "regression", []), "rows.onnx")


def test_a_large_request_runs_in_bounded_runs_and_joins_in_order() -> None:
    model = _rows_in_run()
    n = 2 * ROWS_PER_RUN + 5
    out = model.predict(pd.DataFrame({"a": np.arange(n, dtype=float) / 10}))
    runs = out - np.arange(n) / 10
    assert len(out) == n
    assert runs.max() == pytest.approx(ROWS_PER_RUN, abs=0.01)  # float32 sums
    assert runs[-5:] == pytest.approx([5.0] * 5, abs=0.01)  # the last run's 5 rows, in order
    assert model.predict(pd.DataFrame({"a": [0.0, 0.0]})).tolist() == [2.0, 2.0]
