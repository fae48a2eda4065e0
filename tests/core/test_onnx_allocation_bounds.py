"""An imported ONNX graph cannot make onnxruntime allocate what it never declared: a tiny file
whose ConstantOfShape / Expand / Tile / Range would build a tensor over the per-value cap
(here over 1 GB), or whose allocation size follows the values a caller sends, is refused at
import with a message naming the node, before any session runs it (the probe row included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session

pytest.importorskip("onnxruntime", reason="ONNX import needs the extra `onnx`")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from core.errors import InputError, UntrustedArtifactError  # noqa: E402
from core.registry import list_versions  # noqa: E402
from core.registry.importer import import_model  # noqa: E402
from tests.core.test_onnx_import import write_schema  # noqa: E402

SCHEMA = {"columns": [{"name": "a", "kind": "numeric"}], "task": "regression"}


def _const(name: str, values: list[int] | list[float], dtype=np.int64):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _model(nodes: list, inits: list) -> bytes:
    """`a` [N, 1] float in, `y` [N, 1] float out: y = a + (sum of what `nodes` build, as
    `big`)."""
    tail = [helper.make_node("ReduceSum", ["big"], ["total"], name="sum", keepdims=0),
            helper.make_node("Cast", ["total"], ["total_f"], name="cast",
                             to=TensorProto.FLOAT),
            helper.make_node("Add", ["a", "total_f"], ["y"], name="add")]
    graph = helper.make_graph(nodes + tail, "g", [helper.make_tensor_value_info(
        "a", TensorProto.FLOAT, ["N", 1])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _import(tmp_path: Path, data: bytes, session: Session):
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    return import_model("m", path, session=session, schema=write_schema(tmp_path, SCHEMA))


GIB_PLUS = 2**28 + 1  # float32 elements: just over 1 GiB
BOMBS = {
    "fill": ([helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill",
                               value=numpy_helper.from_array(np.ones(1, np.float32)))],
             [_const("shape", [GIB_PLUS])]),
    "grow": ([helper.make_node("Expand", ["one"], ["big"], name="grow")],
             [_const("one", [1.0], np.float32)]),
    "tile": ([helper.make_node("Tile", ["seed"], ["big"], name="tile")],
             [_const("seed", [1.0, 2.0], np.float32), _const("reps", [GIB_PLUS])]),
    "count": ([helper.make_node("Range", ["start", "limit", "delta"], ["big"], name="count")],
              [_const("start", 0.0, np.float32), _const("limit", float(GIB_PLUS), np.float32),
               _const("delta", 1.0, np.float32)]),
}
BOMBS["grow"][0][0].input.append("shape")
BOMBS["grow"][1].append(_const("shape", [GIB_PLUS]))
BOMBS["tile"][0][0].input.append("reps")


@pytest.mark.parametrize("node", sorted(BOMBS))
def test_a_graph_that_would_allocate_over_a_gigabyte_is_refused_naming_the_node(
        node: str, tmp_path: Path, session: Session) -> None:
    nodes, inits = BOMBS[node]
    data = _model(nodes, inits)
    assert len(data) < 2_000  # a tiny file: the declared-size audit alone lets it through
    with pytest.raises(UntrustedArtifactError, match=rf"node '{node}' .*(MiB|size the graph)"):
        _import(tmp_path, data, session)
    with pytest.raises(InputError, match="not found|no model|No model"):
        list_versions("m", session=session)  # nothing was registered


def test_an_allocation_sized_by_the_callers_values_is_refused(tmp_path: Path,
                                                               session: Session) -> None:
    """Expand to a shape read from the input's VALUES: any caller could ask for terabytes."""
    nodes = [helper.make_node("ReduceMax", ["a"], ["m"], name="peak", keepdims=0),
             helper.make_node("Cast", ["m"], ["n"], name="to_int", to=TensorProto.INT64),
             helper.make_node("Reshape", ["n", "one_dim"], ["shape"], name="as_shape"),
             helper.make_node("Expand", ["one"], ["big"], name="by_value")]
    inits = [_const("one_dim", [1]), _const("one", [1.0], np.float32)]
    nodes[-1].input.append("shape")
    with pytest.raises(UntrustedArtifactError, match=r"node 'by_value' \(Expand.*values a "
                                                     r"caller sends"):
        _import(tmp_path, _model(nodes, inits), session)
    assert list(Path.cwd().glob("sym_shape_infer*")) == []  # the inference wrote nothing


def test_a_small_fixed_allocation_and_batch_sized_ones_import(tmp_path: Path,
                                                              session: Session) -> None:
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill",
                              value=numpy_helper.from_array(np.ones(1, np.float32)))]
    mv = _import(tmp_path, _model(nodes, [_const("shape", [1000])]), session)
    assert mv.artifact_format == "onnx"
    # zeros(batch, 4), as a PyTorch export writes it: sized by the input's batch dimension
    batch = [helper.make_node("Shape", ["a"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["n"], name="rows", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="as_list"),
             helper.make_node("Concat", ["n1", "four"], ["shp"], name="dims", axis=0),
             helper.make_node("ConstantOfShape", ["shp"], ["big"], name="zeros",
                              value=numpy_helper.from_array(np.zeros(1, np.float32)))]
    inits = [_const("zero", 0), _const("axes", [0]), _const("four", [4])]
    assert _import(tmp_path, _model(batch, inits), session).version == 2


# -- review s8: values quadratic in the batch (H2), Loops and sequences (H3), and the audit
#    itself never building the bomb (H6) --------------------------------------------------

def _audit(data: bytes) -> None:
    from core.registry.onnx_model import audit

    audit(data, "model.onnx")


def _loop(trips: int, body_nodes: list | None = None) -> bytes:
    """y = a + (a [1] state doubled `trips` times by a Loop named 'spin')."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"], name="keep"),
         helper.make_node("Add", ["s_in", "s_in"], ["s_out"], name="double"),
         *(body_nodes or [])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [1])])
    nodes = [helper.make_node("Loop", ["trips", "go", "seed"], ["big"], name="spin",
                              body=body)]
    inits = [_const("trips", trips), _const("go", True, np.bool_),
             _const("seed", [1.0], np.float32)]
    return _model(nodes, inits)


QUADRATIC = {
    # [N, 1] x [1, N]: an outer product of the batch, N² floats (100k rows: 40 GB)
    "outer": [helper.make_node("Transpose", ["a"], ["at"], name="flip"),
              helper.make_node("MatMul", ["a", "at"], ["big"], name="outer")],
    "spread": [helper.make_node("Transpose", ["a"], ["at"], name="flip"),
               helper.make_node("Add", ["a", "at"], ["big"], name="spread")],
    # repeats computed from constants (not one): [10**13 * N, 1], a 13-digit factor
    "tile13": [helper.make_node("Concat", ["many", "once"], ["reps"], name="reps", axis=0),
               helper.make_node("Tile", ["a", "reps"], ["big"], name="tile13")],
}


@pytest.mark.parametrize("node", sorted(QUADRATIC))
def test_a_value_growing_faster_than_the_rows_is_refused_naming_the_node(node: str) -> None:
    inits = [_const("many", [10**13]), _const("once", [1])]
    with pytest.raises(UntrustedArtifactError, match=rf"node '{node}' .*(faster than the "
                                                     r"number of rows|per row)"):
        _audit(_model(QUADRATIC[node], inits))


def test_a_loop_without_a_small_constant_trip_count_is_refused_and_a_bounded_one_imports(
        tmp_path: Path, session: Session) -> None:
    with pytest.raises(UntrustedArtifactError, match=r"node 'spin' \(Loop\).*iterations"):
        _audit(_loop(2**62))  # fixed-size state: only the time is unbounded
    assert _import(tmp_path, _loop(3), session).artifact_format == "onnx"


def test_sequence_operators_and_allocations_inside_a_loop_body_are_refused() -> None:
    split = [helper.make_node("SplitToSequence", ["a"], ["seq"], name="split", axis=0),
             helper.make_node("ConcatFromSequence", ["seq"], ["big"], name="join", axis=0)]
    with pytest.raises(UntrustedArtifactError, match=r"node 'split' \(SplitToSequence\)"):
        _audit(_model(split, []))
    inside = [helper.make_node("Shape", ["s_in"], ["s_in_shape"], name="measure"),
              helper.make_node("ConstantOfShape", ["s_in_shape"], ["junk"], name="inner",
                               value=numpy_helper.from_array(np.ones(1, np.float32)))]
    with pytest.raises(UntrustedArtifactError, match=r"node 'inner' \(ConstantOfShape\) "
                                                     r"allocates inside a Loop"):
        _audit(_loop(3, inside))


def test_a_constant_bomb_is_refused_before_any_shape_inference_runs() -> None:
    """The audit must not build what it refuses: a literal int64 shape of 8 GiB is sized by
    the pre-scan (its message: 'from its constant inputs'), and one computed from constants
    (Concat) by the bounded inference before its ConstantOfShape fills the array."""
    literal = [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill",
                                value=numpy_helper.from_array(np.full(1, 7, np.int64)))]
    with pytest.raises(UntrustedArtifactError, match=r"node 'fill' \(ConstantOfShape\) would "
                                                     r"allocate at least 8,192 MiB .*constant"):
        _audit(_model(literal, [_const("shape", [2**15, 2**15])]))
    computed = [helper.make_node("Concat", ["rows", "cols"], ["shape"], name="dims", axis=0),
                *literal]
    with pytest.raises(UntrustedArtifactError, match=r"node 'fill' \(ConstantOfShape\) would "
                                                     r"allocate 256 MiB \(shape \[8193, 4096\]"):
        _audit(_model(computed, [_const("rows", [8193]), _const("cols", [4096])]))


def test_nested_loops_are_bounded_by_their_product() -> None:
    inner = helper.make_graph(
        [helper.make_node("Identity", ["d_in"], ["d_out"], name="still"),
         helper.make_node("Identity", ["t_in"], ["t_out"], name="same")], "inner",
        [helper.make_tensor_value_info("j", TensorProto.INT64, []),
         helper.make_tensor_value_info("d_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("t_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("d_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [1])])
    nested = [helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(
                  np.asarray(1000, np.int64))),
              helper.make_node("Loop", ["k", "", "s_in"], ["t_end"], name="again",
                               body=inner)]
    with pytest.raises(UntrustedArtifactError, match=r"node 'again' \(Loop\) nests Loops "
                                                     r"running 1,000,000 iterations"):
        _audit(_loop(1000, nested))
