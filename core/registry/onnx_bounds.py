"""How much memory and time an ONNX graph may make onnxruntime spend, bounded before it runs.

The audit in onnx_model.py bounds the tensors a file DECLARES; a tiny graph can still ask for
gigabytes at run time: ConstantOfShape([2**28, 1]), Expand / Tile / Resize / Range / OneHot /
Pad / Random* driven by constants, or worse by the input's VALUES; or spin forever in a Loop.
So, before any session is made, and in this order:

1. a pre-scan, before any shape inference (which would itself build a constant-shaped
   ConstantOfShape in memory): allocating operators whose shape / repeats / limits / pads /
   depth are constants are sized and refused over `MAX_VALUE_BYTES`; allocating operators
   inside a Loop / If / Scan body are refused (the inference does not size them); a Loop
   runs only with a constant trip count of at most `MAX_LOOP_TRIPS` (nested: the product)
   and a constant or absent condition; sequence operators are refused (no tabular exporter
   writes them, and they grow without a shape);
2. shape inference (onnxruntime's symbolic one, with ONNX's own as a fallback) computes
   every value's shape; each dimension is read as an expression (a tiny parser, never
   `eval`), every symbol in it (the input's batch, or a size the data decides, which is
   bounded by an input's) is taken as the row count N, and the value's element count must
   be a polynomial of degree at most 1 in N: its fixed part at most `MAX_VALUE_BYTES`, its
   part per row at most `MAX_ROW_BYTES` (so a request of `ROW_LIMIT` rows, the REST limit,
   stays bounded). `[N, N]` (an outer product of the batch) is refused;
3. an allocating operator whose output size the inference cannot tell (it would follow the
   numbers a caller sends) is refused.

A scikit-learn or PyTorch tabular model passes untouched (its allocations follow the batch)."""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from core.errors import ArtifactIntegrityError, UntrustedArtifactError

MAX_VALUE_BYTES = 256 * 1024 * 1024  # one intermediate of a tabular model: far less
# The most records one REST prediction request may carry (app/api/schemas.py, PredictRequest
# `max_length`): kept here as well because core cannot import app; the bound per row below
# is what makes a value linear in the batch bounded by it.
ROW_LIMIT = 100_000
MAX_ROW_BYTES = 64 * 1024  # 16k float32 per row per value: a wide one-hot, not N more rows
MAX_LOOP_TRIPS = 1024  # tabular exporters write no Loop at all
# operators whose output size comes from an input's VALUES or an attribute, not only from the
# input shapes (the ones whose size only follows their inputs' are bounded by those)
ALLOCATING = frozenset({
    "ConstantOfShape", "Expand", "Tile", "Resize", "Upsample", "Range", "OneHot", "Pad",
    "CenterCropPad", "RandomNormal", "RandomUniform", "Multinomial", "Loop", "Col2Im",
    "MelWeightMatrix", "BlackmanWindow", "HannWindow", "HammingWindow",
})
SEQUENCE_OPS = frozenset({
    "SplitToSequence", "ConcatFromSequence", "SequenceInsert", "SequenceConstruct",
    "SequenceEmpty", "SequenceErase", "SequenceAt", "SequenceLength", "SequenceMap",
})
MIB = 2**20
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_EXPR = re.compile(r"[A-Za-z_0-9 *+()]{1,200}")
_SMALL = 1024  # a constant with more elements is no shape / repeats / limit vector
# upper bounds of each operation on non-negative sizes (a symbolic b may be any size >= 1)
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b if b.is_number else a,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b if b.is_number else a,
        ast.FloorDiv: lambda a, b: a / b if b.is_number else a, ast.Mod: lambda a, b: b}


def check_allocations(model: Any, label: str) -> None:
    """Refuse `model` (an onnx.ModelProto that passed the checker) when a value it computes
    may exceed the bounds above, an allocating operator's size is data-driven, or a Loop
    may run unbounded (see the module docstring for the rules, in the order applied).

    Shapes come from onnxruntime's symbolic shape inference (it follows a batch dimension
    through Shape / Gather / Concat into ConstantOfShape, so `zeros(batch, 4)` stays
    `[N, 4]`); when it cannot complete (an operator it does not know), from ONNX's own
    inference, which knows every standard operator but not those symbols: an allocating
    operator it cannot size is then refused (conservative, never a guess)."""
    import onnx

    _prescan(model.graph, _constants(model.graph, {}), label, trips=1, top=True)
    _refuse_nested_scans(model.graph, label, in_scan=False)
    symbolic = _symbolic(model, label)
    try:
        standard = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # inconsistent shapes: nothing the runtime should be given
        raise ArtifactIntegrityError(f"{label}: ONNX shape inference fails on it: "
                                     f"{str(exc).splitlines()[0][:300]}") from None
    symbols = {d.dim_param for i in model.graph.input if i.type.HasField("tensor_type")
               for d in i.type.tensor_type.shape.dim
               if d.dim_param and not d.dim_param.startswith("unk__")}  # the tool's unknowns
    shapes = _types(standard)
    if symbolic is not None:
        shapes.update(_types(symbolic))
    nodes = _all_nodes(model.graph, top=True)
    constant = _constant_values(model.graph, [n for n, _ in nodes])
    for node, top in nodes:
        for out in node.output:
            if out:
                _check_value(node, out, shapes.get(out), top, symbols, label)
                if top and _unknown_rank(shapes.get(out)):
                    _refuse_unbounded_combination(node, out, constant, label)


# -- 1. pre-scan: constants, loops, sequences, before any inference ----------------------

def _constants(graph: Any, outer: dict[str, Any]) -> dict[str, Any]:
    """Small constant tensors visible in `graph` (initializers and Constant nodes, its own
    and its enclosing graphs'), as TensorProto / attribute, converted only when read."""
    consts = dict(outer)
    consts.update({t.name: t for t in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant" and node.output and node.attribute:
            consts[node.output[0]] = node.attribute[0]
    return consts


def _value(consts: dict[str, Any], name: str) -> list[float] | None:
    """The constant `name`'s values, flattened, if it is a small constant; else None."""
    import onnx
    from onnx import numpy_helper

    item = consts.get(name) if name else None
    if item is None:
        return None
    try:
        if isinstance(item, onnx.AttributeProto):
            if item.HasField("t"):
                item = item.t
            elif item.ints or item.floats:
                return [*item.ints, *item.floats][:_SMALL]
            elif item.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT):
                return [item.i if item.type == onnx.AttributeProto.INT else item.f]
            else:
                return None
        if math.prod(item.dims) > _SMALL:
            return None
        return [v.item() for v in numpy_helper.to_array(item).reshape(-1)]
    except Exception:  # an odd encoding: the inference and the checks after it decide
        return None


def _prescan(graph: Any, consts: dict[str, Any], label: str, trips: int, top: bool) -> None:
    for node in graph.node:
        where = f"node {node.name or '(unnamed)'!r} ({node.op_type})"
        if node.op_type in SEQUENCE_OPS:
            raise UntrustedArtifactError(
                f"{label}: {where} is a sequence operator: its size follows the data with no "
                "shape to bound it, and no tabular exporter writes one: refused.")
        if not top and node.op_type in ALLOCATING and node.op_type != "Loop":
            raise UntrustedArtifactError(
                f"{label}: {where} allocates inside a Loop / If / Scan body, where its size "
                "cannot be bounded before it runs: refused. Export the model without it.")
        inner = trips
        if node.op_type == "Loop":
            inner = trips * _loop_trips(node, consts, where, label)
            if inner > MAX_LOOP_TRIPS:
                raise UntrustedArtifactError(
                    f"{label}: {where} nests Loops running {inner:,} iterations in all, over "
                    f"{MAX_LOOP_TRIPS}: refused. Export the model without Loop.")
        else:
            _refuse_constant_size(node, consts, where, label)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _prescan(sub, _constants(sub, consts), label, inner, top=False)


def _refuse_nested_scans(graph: Any, label: str, in_scan: bool) -> None:
    """A Scan runs its body once per row it scans (the request's rows, or a constant's):
    linear. A Scan inside a Scan's body runs rows x rows times, and its body can scan the
    request's input from the outer scope (review s9 M1: 1,000 rows took 4 s, 100,000 would
    take hours on one request). skl2onnx's cdist is one Scan; nested ones are refused."""
    for node in graph.node:
        if node.op_type == "Scan" and in_scan:
            raise UntrustedArtifactError(
                f"{label}: node {node.name or '(unnamed)'!r} (Scan) runs inside another "
                "Scan's body: its iterations multiply (rows x rows), so one request could "
                "keep a server thread busy for hours. Refused; export it without nested Scan.")
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _refuse_nested_scans(sub, label, in_scan or node.op_type == "Scan")


def _loop_trips(node: Any, consts: dict[str, Any], where: str, label: str) -> int:
    """A Loop's trip count, when it is a constant of at most MAX_LOOP_TRIPS and its
    condition is absent or constant: otherwise it could spin for ever on one request."""
    count = _value(consts, node.input[0]) if node.input else None
    cond = node.input[1] if len(node.input) > 1 else ""
    if count is None or len(count) != 1 or not 0 <= count[0] <= MAX_LOOP_TRIPS \
            or (cond and _value(consts, cond) is None):
        raise UntrustedArtifactError(
            f"{label}: {where} runs a Loop whose number of iterations is not a constant of at "
            f"most {MAX_LOOP_TRIPS} (with a constant or no condition): one request could keep "
            "a server thread busy for ever. Refused; export the model without Loop.")
    return max(1, int(count[0]))


def _refuse_constant_size(node: Any, consts: dict[str, Any], where: str,
                          label: str) -> None:
    """Size an allocating operator from its constant inputs (a lower bound of its output,
    counting 1 byte per element when the type is not known yet)."""
    size = _constant_elements(node, consts)
    if size is None:
        return
    elements, itemsize = size
    if elements * itemsize > MAX_VALUE_BYTES:
        raise UntrustedArtifactError(
            f"{label}: {where} would allocate at least {elements * itemsize / MIB:,.0f} MiB "
            f"({elements:,} elements, from its constant inputs), over the "
            f"{MAX_VALUE_BYTES // MIB} MiB limit per value: refused (before running it).")


def _constant_elements(node: Any, consts: dict[str, Any]) -> tuple[int, int] | None:
    op, ins = node.op_type, [*node.input, "", "", "", ""]

    def const(i: int) -> list[float] | None:
        return _value(consts, ins[i])

    def count(i: int) -> int:  # an input's element count when constant, else at least 1
        tensor = consts.get(ins[i])
        return max(1, math.prod(tensor.dims)) if hasattr(tensor, "dims") else 1

    def prod(values: list[float]) -> int:
        return math.prod(max(0, math.ceil(abs(v))) for v in values)

    attrs = {a.name: a for a in node.attribute}
    if op == "ConstantOfShape" and const(0) is not None:
        value = attrs.get("value")
        itemsize = _itemsize(value.t.data_type) if value is not None else 4
        return prod(const(0)), itemsize  # type: ignore[arg-type]
    if op in ("Expand", "CenterCropPad") and const(1) is not None:
        return prod(const(1)), 1  # type: ignore[arg-type]
    if op == "Tile" and const(1) is not None:
        return prod(const(1)) * count(0), 1  # type: ignore[arg-type]
    if op == "Range" and all(const(i) is not None for i in range(3)):
        start, limit, delta = (const(i)[0] for i in range(3))  # type: ignore[index]
        if delta == 0:
            return 2**62, 1  # never ends
        tensor = consts.get(ins[0])
        itemsize = _itemsize(tensor.data_type) if hasattr(tensor, "data_type") else 1
        return max(0, math.ceil((limit - start) / delta)), itemsize
    if op in ("Resize", "Upsample"):
        sizes = const(3) if op == "Resize" else None
        if sizes:
            return prod(sizes), 1
        scales = const(2) if op == "Resize" else (const(1) or (
            list(attrs["scales"].floats) if "scales" in attrs else None))
        if scales:
            return max(1, math.ceil(math.prod(abs(s) for s in scales))) * count(0), 1
    if op == "Pad" and const(1) is not None:
        pads = const(1)
        half = len(pads) // 2  # type: ignore[arg-type]
        return math.prod(max(1, int(pads[i]) + int(pads[i + half]))  # type: ignore[index]
                         for i in range(half)) * count(0), 1
    if op == "OneHot" and const(1) is not None:
        return prod(const(1)) * count(0), 1  # type: ignore[arg-type]
    if op in ("RandomNormal", "RandomUniform") and "shape" in attrs:
        return prod(list(attrs["shape"].ints)), 4
    if op in ("BlackmanWindow", "HannWindow", "HammingWindow") and const(0) is not None:
        return prod(const(0)), 4  # type: ignore[arg-type]
    if op == "MelWeightMatrix" and const(0) is not None and const(1) is not None:
        return prod(const(0)) * (prod(const(1)) // 2 + 1), 4  # type: ignore[arg-type]
    if op == "Col2Im" and const(1) is not None:
        return prod(const(1)), 1  # type: ignore[arg-type]
    return None


# -- 2. shape inference -------------------------------------------------------------------

def _symbolic(model: Any, label: str) -> Any:
    """What onnxruntime's symbolic inference learns, complete or not. Its `infer_shapes`
    saves an incomplete result to ./sym_shape_infer_temp.onnx before raising: a server must
    not write files where it happens to run, so its steps are run here without that. Its
    ConstantOfShape builds an int64 shape-of-constants in memory: sized first (a shape the
    pre-scan could not see, computed from constants)."""
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except Exception:
        return None

    class Bounded(SymbolicShapeInference):  # type: ignore[misc, valid-type]
        def _infer_ConstantOfShape(self, node: Any) -> None:  # noqa: N802
            shape = self._get_int_or_float_values(node)[0]
            dims = shape if isinstance(shape, list) else [shape]
            if shape is not None and all(_literal(d) for d in dims):
                value = {a.name: a for a in node.attribute}.get("value")
                elements = math.prod(max(0, int(d)) for d in dims)
                size = elements * (_itemsize(value.t.data_type) if value is not None else 4)
                if size > MAX_VALUE_BYTES:
                    raise UntrustedArtifactError(
                        f"{label}: node {node.name or '(unnamed)'!r} (ConstantOfShape) would "
                        f"allocate {size / MIB:,.0f} MiB (shape {[int(d) for d in dims]}), "
                        f"over the {MAX_VALUE_BYTES // MIB} MiB limit per value: refused.")
            super()._infer_ConstantOfShape(node)

    try:
        inference = Bounded(2**31 - 1, False, False, 0)
        inference._preprocess(model)
        while inference.run_:
            inference._infer_impl()
        inference._update_output_from_vi()
        return inference.out_mp_
    except UntrustedArtifactError:
        raise
    except Exception:  # an operator or opset it does not know: ONNX's own inference decides
        return None


def _literal(dim: Any) -> bool:
    return isinstance(dim, int) or bool(getattr(dim, "is_Integer", False)) or \
        type(dim).__module__ == "numpy"


def _types(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    graphs = [model.graph]
    while graphs:  # subgraphs' values too, where the inference wrote them
        graph = graphs.pop()
        out.update({v.name: v.type for v in [*graph.value_info, *graph.output]})
        graphs.extend(sub for node in graph.node for attr in node.attribute
                      for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs))
    return out


def _all_nodes(graph: Any, top: bool) -> list[tuple[Any, bool]]:
    """Every node, with whether its values are checked as the main graph's: the main graph
    and the bodies of If and Loop (an If branch runs once per request, a Loop's at most
    MAX_LOOP_TRIPS times), not a Scan's (skl2onnx's cdist body, which the inference cannot
    size, runs once per row; review s9 H2: an If branch had been skipped like a Scan's)."""
    out = []
    for node in graph.node:
        out.append((node, top))
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                out.extend(_all_nodes(sub, top=top and node.op_type in ("If", "Loop")))
    return out


# -- 3. every value's size, linear in the rows ---------------------------------------------

def _check_value(node: Any, out: str, typ: Any, top: bool, symbols: set[str],
                 label: str) -> None:
    allocating = node.op_type in ALLOCATING
    where = f"node {node.name or '(unnamed)'!r} ({node.op_type}, output {out!r})"
    if typ is None or not typ.HasField("tensor_type") or \
            not typ.tensor_type.HasField("shape"):
        if allocating:
            raise UntrustedArtifactError(
                f"{label}: {where} allocates a tensor whose size the graph does not fix (it "
                "would follow the values a caller sends): refused. Export the model with "
                "fixed shapes for this operator.")
        return  # a map output (ZipMap), a tensor of unknown rank (see below), a Scan
        # body's value
    dims = typ.tensor_type.shape.dim
    free = [d for d in dims if not d.HasField("dim_value")
            and not _follows(d.dim_param, symbols)]
    if free and allocating:  # elsewhere a size the data decides is bounded by an input's
        raise UntrustedArtifactError(
            f"{label}: {where} allocates a tensor of a size the graph does not fix (it would "
            "follow the values a caller sends): refused. Export the model with fixed shapes "
            "for this operator.")
    if not top and any(not d.HasField("dim_value") and not d.dim_param for d in dims):
        return  # a Scan body's value the inference could not size (skl2onnx's cdist): the
        # body runs once per row scanned; its operators were checked above
    per_row, fixed = _linear([d.dim_value if d.HasField("dim_value") else d.dim_param or "N"
                              for d in dims])
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    if per_row is None:
        raise UntrustedArtifactError(
            f"{label}: {where} computes a value of shape {shape}: its size grows faster than "
            "the number of rows (or cannot be read), so one request could exhaust memory: "
            "refused. Only values linear in the batch are accepted.")
    itemsize = _itemsize(typ.tensor_type.elem_type)
    if fixed * itemsize > MAX_VALUE_BYTES or per_row * itemsize > MAX_ROW_BYTES:
        at_limit = (per_row * ROW_LIMIT + fixed) * itemsize
        raise UntrustedArtifactError(
            f"{label}: {where} would allocate {at_limit / MIB:,.0f} MiB (shape {shape}) for "
            f"a request of {ROW_LIMIT:,} rows ({per_row * itemsize:,} bytes per row, "
            f"{fixed * itemsize:,} fixed), over the limits ({MAX_ROW_BYTES // 1024} KiB per "
            f"row, {MAX_VALUE_BYTES // MIB} MiB fixed, per value): refused.")


def _unknown_rank(typ: Any) -> bool:
    return typ is None or (typ.HasField("tensor_type") and
                           not typ.tensor_type.HasField("shape"))


def _constant_values(graph: Any, nodes: list[Any]) -> set[str]:
    """Names of the values computed from constants only (initializers, Constant nodes and
    what only they feed), in any graph: they do not grow with the request."""
    constant = {t.name for t in graph.initializer}
    graphs = [graph]
    while graphs:
        g = graphs.pop()
        constant |= {t.name for t in g.initializer}
        graphs.extend(sub for n in g.node for a in n.attribute
                      for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs))
    for node in nodes:  # in graph order: a node's inputs come before it
        if not any(a.HasField("g") or a.graphs for a in node.attribute) and \
                all(not i or i in constant for i in node.input):
            constant.update(node.output)
    return constant


def _refuse_unbounded_combination(node: Any, out: str, constant: set[str],
                                  label: str) -> None:
    """A value of unknown rank (ONNX's inference does not know the ai.onnx.ml operators, and
    an If whose branches differ in rank loses it) cannot be sized; it stays linear in the
    rows as long as every operator combines it with constants only (Scaler -> MatMul with
    weights). Two values that follow the request combined (`u @ u.T`, `u + u.T`, Gather of
    `u` by `u`) may be quadratic in the rows: refused (review s9 H2)."""
    variable = [i for i in dict.fromkeys(node.input) if i and i not in constant]
    if len(variable) > 1 and node.op_type not in ("Concat", "Identity"):
        raise UntrustedArtifactError(
            f"{label}: node {node.name or '(unnamed)'!r} ({node.op_type}, output {out!r}) "
            f"combines {', '.join(map(repr, variable[:3]))}, values that follow the request, "
            "into a tensor whose shape inference cannot tell (not even its rank): its size "
            "may grow faster than the rows, so it cannot be bounded: refused. Export the "
            "model with shapes the graph fixes.")


def _follows(expr: str, symbols: set[str]) -> bool:
    """True when a symbolic dimension ("N", "2*N", "N + 1") is made of the inputs' symbolic
    dimensions and integers only (its size is then read by `_parse`, never evaluated)."""
    names = _IDENT.findall(expr or "")
    return bool(names) and all(n in symbols for n in names) and _EXPR.fullmatch(expr) is not None


def _linear(dims: list[int | str]) -> tuple[int | None, int]:
    """(elements per row, fixed elements) of a value whose element count is a polynomial of
    degree at most 1 in the rows N, every symbol read as N (an upper bound: Max as a sum,
    Min as its first term, floor and ceiling as their argument + 1); (None, 0) otherwise."""
    import sympy

    n = sympy.Symbol("N", positive=True)
    total = sympy.Integer(1)
    for dim in dims:
        expr = sympy.Integer(dim) if isinstance(dim, int) else _parse(dim, n)
        if expr is None:
            return None, 0
        total = total * expr
    try:
        poly = sympy.Poly(sympy.expand(total), n)
    except Exception:
        return None, 0
    if poly.degree() > 1:
        return None, 0
    coeffs = poly.all_coeffs()
    per_row = coeffs[0] if len(coeffs) == 2 else 0
    fixed = coeffs[-1]
    return max(0, int(sympy.ceiling(per_row))), max(0, int(sympy.ceiling(fixed)))


def _parse(text: str, n: Any) -> Any:
    """A dimension's text ("N", "2*N + 1", "floor(N/2)") as a sympy expression of `n`,
    parsed by Python's `ast` (never evaluated) with integers, names (all read as `n`),
    + - * / // % ** (small constant powers) and Max / Min / floor / ceiling only."""
    import sympy

    if len(text) > 200:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None

    def walk(node: Any, depth: int) -> Any:
        if depth > 20:
            raise ValueError
        if isinstance(node, ast.Constant) and isinstance(node.value, int) \
                and not isinstance(node.value, bool):
            return sympy.Integer(node.value)
        if isinstance(node, ast.Name):
            return n
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = walk(node.operand, depth + 1)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) \
                and isinstance(node.right, ast.Constant) and node.right.value in (0, 1, 2, 3):
            return walk(node.left, depth + 1) ** node.right.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left, depth + 1), walk(node.right, depth + 1)
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args \
                and not node.keywords and len(node.args) <= 8:
            args = [walk(a, depth + 1) for a in node.args]
            if node.func.id == "Max":
                return sympy.Add(*args)
            if node.func.id == "Min":
                return args[0]
            if node.func.id in ("floor", "ceiling") and len(args) == 1:
                return args[0] + 1
        raise ValueError

    try:
        return walk(tree, 0)
    except (ValueError, TypeError, RecursionError):
        return None


def _itemsize(elem_type: int) -> int:
    import onnx

    try:
        return max(1, onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except Exception:  # strings and exotic types: count a pointer each
        return 8
