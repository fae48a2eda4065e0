"""An imported ONNX graph cannot hide a value quadratic in the rows from the allocation audit
by making shape inference lose its shape (review s9 H2). Two inputs with different batch
symbols stop onnxruntime's symbolic inference; an If whose branches give different ranks then
leaves ONNX's own inference without a rank, and `u @ u.T` ([N, N] at run time: 256 MB at 8000
rows, 40 GB at the REST limit) passed as "unknown, not allocating". The same inside an If
branch, where a shape computed from the data kept the rank but no dimension. No crafted
graph is run here; only the audit is called."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="ONNX import needs the extra `onnx`")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from core.errors import UntrustedArtifactError  # noqa: E402
from core.registry.onnx_model import audit  # noqa: E402

F = TensorProto.FLOAT


def _branch(nodes: list, out: str) -> object:
    return helper.make_graph(nodes, "b", [], [helper.make_tensor_value_info(out, F, None)])


def _graph(nodes: list) -> bytes:
    inits = [numpy_helper.from_array(np.asarray([-1], np.int64), "flat"),
             numpy_helper.from_array(np.asarray(0.0, np.float32), "zero")]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["xw"]),  # N + M: the symbolic pass stops
         helper.make_node("ReduceSum", ["xw"], ["sx"], keepdims=0),
         helper.make_node("Greater", ["sx", "zero"], ["cond"]), *nodes],
        "g", [helper.make_tensor_value_info("x", F, ["N", 1]),
              helper.make_tensor_value_info("w", F, ["M", 1])],
        [helper.make_tensor_value_info("y", F, [])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _outer(value: str) -> list:
    return [helper.make_node("Transpose", [value], [value + "_t"]),
            helper.make_node("MatMul", [value, value + "_t"], [value + "_mm"], name="outer")]


def _unknown_rank() -> bytes:
    either = helper.make_node(
        "If", ["cond"], ["u"],
        then_branch=_branch([helper.make_node("Identity", ["xw"], ["a"])], "a"),
        else_branch=_branch([helper.make_node("Reshape", ["xw", "flat"], ["b"])], "b"))
    return _graph([either, *_outer("u"), helper.make_node("ReduceSum", ["u_mm"], ["y"],
                                                          keepdims=0)])


def _inside_a_branch() -> bytes:
    """In the then-branch: the shape [N, 1] read back from the data (a Slice starting at a
    data-driven 0), so the inference knows the rank only; then the outer product."""
    inner = [helper.make_node("Shape", ["xw"], ["s"]),
             helper.make_node("ReduceMin", ["xw"], ["mn"], keepdims=0),
             helper.make_node("Mul", ["mn", "zero"], ["z"]),
             helper.make_node("Cast", ["z"], ["zi"], to=TensorProto.INT64),
             helper.make_node("Unsqueeze", ["zi", "axis0"], ["start"]),
             helper.make_node("Slice", ["s", "start", "two"], ["s2"]),
             helper.make_node("Reshape", ["xw", "s2"], ["r"]), *_outer("r"),
             helper.make_node("ReduceSum", ["r_mm"], ["a"], keepdims=0)]
    consts = [helper.make_node("Constant", [], ["axis0"], value=numpy_helper.from_array(
                  np.asarray([0], np.int64))),
              helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(
                  np.asarray([2], np.int64)))]
    other = _branch([helper.make_node("ReduceSum", ["xw"], ["b"], keepdims=0)], "b")
    return _graph([*consts, helper.make_node("If", ["cond"], ["y"],
                                             then_branch=_branch(inner, "a"),
                                             else_branch=other)])


@pytest.mark.parametrize("build", [_unknown_rank, _inside_a_branch])
def test_a_value_whose_shape_inference_loses_is_refused(build) -> None:
    with pytest.raises(UntrustedArtifactError, match="outer|shape"):
        audit(build(), "hidden.onnx")


def _after_a_scaler() -> bytes:
    """ai.onnx.ml's Scaler (what every scikit-learn pipeline export starts with) has no
    shape in ONNX's inference: `s @ s.T` after it was unchecked too."""
    graph = helper.make_graph(
        [helper.make_node("Scaler", ["x"], ["s"], domain="ai.onnx.ml", offset=[0.0],
                          scale=[1.0]), *_outer("s"),
         helper.make_node("ReduceSum", ["s_mm"], ["y"], keepdims=0)],
        "g", [helper.make_tensor_value_info("x", F, ["N", 1])],
        [helper.make_tensor_value_info("y", F, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_value_quadratic_after_an_ml_operator_is_refused() -> None:
    with pytest.raises(UntrustedArtifactError, match="outer"):
        audit(_after_a_scaler(), "scaler.onnx")


def _scan_in_a_scan() -> bytes:
    """A Scan over the rows whose body scans the rows again (the outer scope's `x`): rows x
    rows iterations, 4 s at 1,000 rows on the review's machine, hours at 100,000."""
    def body(nodes: list, state: str, elem: str, out: str) -> object:
        return helper.make_graph(nodes, "b", [helper.make_tensor_value_info(state, F, [1]),
                                              helper.make_tensor_value_info(elem, F, [1])],
                                 [helper.make_tensor_value_info(out, F, [1])])
    inner = body([helper.make_node("Add", ["s_in", "e"], ["s_out"])], "s_in", "e", "s_out")
    outer = body([helper.make_node("Scan", ["t_in", "x"], ["t_out"], num_scan_inputs=1,
                                   body=inner, name="inner")], "t_in", "r", "t_out")
    graph = helper.make_graph(
        [helper.make_node("Scan", ["init", "x"], ["y"], num_scan_inputs=1, body=outer)],
        "g", [helper.make_tensor_value_info("x", F, ["N", 1])],
        [helper.make_tensor_value_info("y", F, [1])],
        [numpy_helper.from_array(np.zeros(1, np.float32), "init")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_scan_inside_a_scan_is_refused() -> None:
    with pytest.raises(UntrustedArtifactError, match="'inner' \\(Scan\\) runs inside"):
        audit(_scan_in_a_scan(), "scans.onnx")
