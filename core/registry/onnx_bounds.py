"""How much memory an ONNX graph may make onnxruntime allocate, bounded before it ever runs.

The audit in onnx_model.py bounds the tensors a file DECLARES; a tiny graph can still ask for
gigabytes at run time: ConstantOfShape([2**28, 1]), Expand / Tile / Resize / Range / OneHot /
Pad / Random* driven by constants, or worse by the input's VALUES. So, before any session is
made, ONNX shape inference (with constant propagation, `data_prop`) computes every value's
shape, and the graph is refused, naming the node, when

- a value has a known size over `MAX_VALUE_BYTES` (the input's symbolic dimensions, such as
  the batch, count as 1: rows are bounded by the request size limits), or
- an allocating operator's output size is not determined by the graph and its inputs' shapes
  (a dimension neither fixed nor one of the inputs' symbolic dimensions): its size would
  follow the numbers a caller sends.

A scikit-learn or PyTorch tabular model passes untouched (its allocations follow the batch)."""

from __future__ import annotations

import math
import re
from typing import Any

from core.errors import ArtifactIntegrityError, UntrustedArtifactError

MAX_VALUE_BYTES = 256 * 1024 * 1024  # one intermediate of a tabular model: far less
# operators whose output size comes from an input's VALUES or an attribute, not only from the
# input shapes (the ones whose size only follows their inputs' are bounded by those)
ALLOCATING = frozenset({
    "ConstantOfShape", "Expand", "Tile", "Resize", "Upsample", "Range", "OneHot", "Pad",
    "CenterCropPad", "RandomNormal", "RandomUniform", "Multinomial", "Loop", "Col2Im",
    "MelWeightMatrix", "BlackmanWindow", "HannWindow", "HammingWindow",
})
MIB = 2**20
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_INT = re.compile(r"\b\d{1,12}\b")
_EXPR = re.compile(r"[A-Za-z_0-9 *+()]{1,200}")


def check_allocations(model: Any, label: str) -> None:
    """Refuse `model` (an onnx.ModelProto that passed the checker) when a value it computes
    is known to exceed `MAX_VALUE_BYTES`, or an allocating operator's size is data-driven.

    Shapes come from onnxruntime's symbolic shape inference (it follows a batch dimension
    through Shape / Gather / Concat into ConstantOfShape, so `zeros(batch, 4)` stays
    `[N, 4]`); when it cannot complete (an operator it does not know), from ONNX's own
    inference, which knows every standard operator but not those symbols: an allocating
    operator it cannot size is then refused (conservative, never a guess)."""
    import onnx

    symbolic = _symbolic(model)
    try:
        standard = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # inconsistent shapes: nothing the runtime should be given
        raise ArtifactIntegrityError(f"{label}: ONNX shape inference fails on it: "
                                     f"{str(exc).splitlines()[0][:300]}") from None
    graph = model.graph
    symbols = {d.dim_param for i in graph.input if i.type.HasField("tensor_type")
               for d in i.type.tensor_type.shape.dim
               if d.dim_param and not d.dim_param.startswith("unk__")}  # the tool's unknowns
    shapes = _types(standard)
    if symbolic is not None:
        shapes.update(_types(symbolic))
    for node, top in _all_nodes(graph, top=True):
        for out in node.output:
            if out:  # subgraphs' values are not inferred: unknown
                _check_value(node, out, shapes.get(out) if top else None, symbols, label)


def _symbolic(model: Any) -> Any:
    """What onnxruntime's symbolic inference learns, complete or not. Its `infer_shapes`
    saves an incomplete result to ./sym_shape_infer_temp.onnx before raising: a server must
    not write files where it happens to run, so its steps are run here without that."""
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        inference = SymbolicShapeInference(2**31 - 1, False, False, 0)
        inference._preprocess(model)
        while inference.run_:
            inference._infer_impl()
        inference._update_output_from_vi()
        return inference.out_mp_
    except Exception:  # an operator or opset it does not know: ONNX's own inference decides
        return None


def _types(model: Any) -> dict[str, Any]:
    graph = model.graph
    return {v.name: v.type for v in [*graph.value_info, *graph.output]}


def _all_nodes(graph: Any, top: bool) -> list[tuple[Any, bool]]:
    """Every node, with whether it is in the main graph (not a Loop's or an If's body)."""
    out = []
    for node in graph.node:
        out.append((node, top))
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                out.extend(_all_nodes(sub, top=False))
    return out


def _check_value(node: Any, out: str, typ: Any, symbols: set[str], label: str) -> None:
    allocating = node.op_type in ALLOCATING
    where = f"node {node.name or '(unnamed)'!r} ({node.op_type}, output {out!r})"
    if typ is None or not typ.HasField("tensor_type") or \
            not typ.tensor_type.HasField("shape"):
        if allocating:
            raise UntrustedArtifactError(
                f"{label}: {where} allocates a tensor whose size the graph does not fix (it "
                "would follow the values a caller sends): refused. Export the model with "
                "fixed shapes for this operator.")
        return
    dims = typ.tensor_type.shape.dim
    free = [d for d in dims if not d.HasField("dim_value") and not _follows(d.dim_param,
                                                                             symbols)]
    if free and allocating:
        raise UntrustedArtifactError(
            f"{label}: {where} allocates a tensor of a size the graph does not fix (it would "
            "follow the values a caller sends): refused. Export the model with fixed shapes "
            "for this operator.")
    if free:
        return
    n = math.prod(d.dim_value if d.HasField("dim_value") else _factor(d.dim_param)
                  for d in dims)
    size = n * _itemsize(typ.tensor_type.elem_type)
    if size > MAX_VALUE_BYTES:
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
        raise UntrustedArtifactError(
            f"{label}: {where} would allocate {size / MIB:,.0f} MiB (shape {shape}), over the "
            f"{MAX_VALUE_BYTES // MIB} MiB limit per value: refused.")


def _follows(expr: str, symbols: set[str]) -> bool:
    """True when a symbolic dimension ("N", "2*N", "N + 1") is made of the inputs' symbolic
    dimensions and integers only (never evaluated: the text comes from the file)."""
    names = _IDENT.findall(expr or "")
    return bool(names) and all(n in symbols for n in names) and _EXPR.fullmatch(expr) is not None


def _factor(expr: str) -> int:
    """The product of an expression's integers: a bound of its size per unit of the inputs'
    symbolic dimensions (for `2*N`, 2; for `N + 1`, 1), never below 1."""
    return max(1, math.prod(int(x) for x in _INT.findall(expr or "")[:8]))


def _itemsize(elem_type: int) -> int:
    import onnx

    try:
        return max(1, onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except Exception:  # strings and exotic types: count a pointer each
        return 8
