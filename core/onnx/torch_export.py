"""The PyTorch networks (core/automl/deep) as part of a version's ONNX graph.

A tabular network preprocesses inside the estimator (median imputation with missing-value
flags, standardisation, category vocabularies for its embeddings: plain data in `prep_`), so a
member `Pipeline([preprocess, network])` becomes one graph built here, on the same shared
inputs as every other member (one per input column, `[N, 1]`): the preprocessing as standard
ONNX operators (IsNaN/Where/Sub/Div, ai.onnx.ml LabelEncoder for the vocabularies), the network
itself exported by `torch.onnx.export`, then softmax (classifier: `label`, `probabilities`) or
the target's scale (regressor: `variable`). `convert.to_onnx` merges it with the other members
and the export's parity check compares it with the pipeline, as for every family.

The TorchScript exporter (`dynamo=False`) is used: torch 2.13's default dynamo exporter needs
`onnxscript` and imports torch._dynamo (about 10 s per process here) for a graph of a few Gemm,
norm and Gather nodes that the TorchScript exporter writes in about a second.

The sequence models (LSTM, TCN) are refused by name: their answer for a row depends on the
ticker's earlier rows (history kept with the model, plus the request's earlier rows), which a
graph taking one row per input cannot receive (docs/deep/onnx-runtime.md)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

TABULAR = frozenset({"core.automl.deep.tabular.TabularNetClassifier",
                     "core.automl.deep.tabular.TabularNetRegressor"})
SEQUENCE = frozenset({"core.automl.deep.sequence.SequenceNetClassifier",
                      "core.automl.deep.sequence.SequenceNetRegressor"})
SEQUENCE_REASON = ("a sequence model answers a row from its ticker's earlier rows (a window "
                   "kept with the model and built from the request), which a one-row-per-input "
                   "ONNX graph cannot receive; serve it with the python runtime")
PREPROCESS_STEPS = ("numeric", "category")  # core.features.preprocess._networks' blocks


def _blocked(message: str) -> Exception:
    from core.onnx.convert import OnnxBlockedError  # convert imports this module

    return OnnxBlockedError(message)


def network_kind(step: Any) -> str | None:
    """'tabular', 'sequence' or None (not a workbench network), by exact class name."""
    name = f"{type(step).__module__}.{type(step).__name__}"
    return "tabular" if name in TABULAR else "sequence" if name in SEQUENCE else None


def blocked_reason(step: Any) -> str | None:
    """Why this network step cannot be exported (None: it can)."""
    return SEQUENCE_REASON if network_kind(step) == "sequence" else None


def _sources(ct: Any, inputs: dict[str, bool], label: str) -> dict[str, str]:
    """Network column (`numeric__x`, `category__plan`) → the graph input it comes from."""
    out = {}
    for block, trans, cols in ct.transformers_:
        if isinstance(trans, str) and trans == "drop" or block == "remainder":
            continue
        if block not in PREPROCESS_STEPS:
            raise _blocked(f"{label} cannot be exported to ONNX: blocked by step "
                                f"pipeline/preprocess/{block} ({type(trans).__name__}).")
        for col in cols:
            if str(col) not in inputs:
                raise _blocked(f"{label}: column {col!r} is not an input of the graph.")
            out[f"{block}__{col}"] = str(col)
    return out


def _export_module(module: Any, n_num: int, n_cat: int, opset: int) -> Any:
    import onnx
    import torch

    buf = io.BytesIO()
    example = (torch.zeros(2, n_num), torch.zeros(2, n_cat, dtype=torch.int64))
    axes = {"num": {0: "N"}, "cat": {0: "N"}, "raw": {0: "N"}}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buf, dynamo=False, input_names=["num", "cat"],
                          output_names=["raw"], dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True)
    return onnx.load_model_from_string(buf.getvalue())


def member_graph(pipeline: Any, inputs: list[tuple[str, bool]], classify: bool,
                 label: str, opset: int, ml_opset: int) -> Any:
    """One member `Pipeline([preprocess, tabular network])` as an ONNX model taking every
    shared input and answering as skl2onnx does: (label, probabilities) or (variable,)."""
    from onnx import TensorProto, compose, helper
    from onnx.numpy_helper import from_array

    ct, net = pipeline.steps[0][1], pipeline.steps[-1][1]
    kinds = dict(inputs)
    source = _sources(ct, kinds, label)
    prep = net.prep_
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, values: np.ndarray) -> str:
        inits.append(from_array(values, name))
        return name

    parts: list[str] = []
    numeric, flags = prep["numeric"], [i for i, s in enumerate(prep["numeric"]) if s["indicator"]]
    for spec in numeric:
        if not kinds.get(source.get(spec["name"], ""), False):
            raise _blocked(f"{label} cannot be exported to ONNX: the network reads "
                                f"{spec['name']!r} as a number but it is not a numeric input.")
    if numeric:
        cols = [source[s["name"]] for s in numeric]
        x = "prep_x"
        nodes.append(helper.make_node("Concat", cols, [x], axis=1) if len(cols) > 1
                     else helper.make_node("Identity", cols, [x]))

        def row(key: str) -> np.ndarray:
            return np.asarray([[s[key] for s in numeric]], dtype=np.float32)

        nodes += [helper.make_node("IsNaN", [x], ["prep_gap"]),
                  helper.make_node("Where", ["prep_gap", const("prep_median", row("median")), x],
                                   ["prep_filled"]),
                  helper.make_node("Sub", ["prep_filled", const("prep_mean", row("mean"))],
                                   ["prep_centred"]),
                  helper.make_node("Div", ["prep_centred", const("prep_std", row("std"))],
                                   ["prep_z"])]
        parts.append("prep_z")
    if flags:
        nodes += [helper.make_node("Gather", ["prep_gap", const(
                      "prep_flag_idx", np.asarray(flags, dtype=np.int64))], ["prep_flag_b"],
                      axis=1),
                  helper.make_node("Cast", ["prep_flag_b"], ["prep_flags"],
                                   to=TensorProto.FLOAT)]
        parts.append("prep_flags")
    codes = []
    for j, spec in enumerate(prep["categorical"]):
        col = source.get(spec["name"])
        if col is None or kinds[col]:
            raise _blocked(f"{label} cannot be exported to ONNX: the network reads "
                                f"{spec['name']!r} as a category but it is not a text input.")
        vocab = list(spec["vocabulary"])
        nodes.append(helper.make_node(
            "LabelEncoder", [col], [f"prep_code{j}"], domain="ai.onnx.ml",
            keys_strings=vocab or ["__never__"], values_int64s=list(range(1, len(vocab) + 1))
            or [0], default_int64=0))
        codes.append(f"prep_code{j}")
    n_num, n_cat = len(numeric) + len(flags), len(codes)
    if n_num == 0 or n_cat == 0:
        # an empty [N, 0] block, sliced from the other block's first column (the network's
        # concat ignores it). A slice keeps the batch dimension known to shape inference,
        # which the import audit's allocation bounds rely on (ConstantOfShape would not).
        const("prep_zero", np.asarray([0], dtype=np.int64))
        const("prep_axis1", np.asarray([1], dtype=np.int64))
    if n_num == 0:
        nodes.append(helper.make_node("Cast", [codes[0]], ["prep_code_f"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Slice", ["prep_code_f", "prep_zero", "prep_zero",
                                                "prep_axis1"], ["net_num"]))
    else:
        nodes.append(helper.make_node("Concat", parts, ["net_num"], axis=1))
    if n_cat == 0:
        nodes.append(helper.make_node("Cast", [parts[0]], ["prep_part_i"], to=TensorProto.INT64))
        nodes.append(helper.make_node("Slice", ["prep_part_i", "prep_zero", "prep_zero",
                                                "prep_axis1"], ["net_cat"]))
    else:
        nodes.append(helper.make_node("Concat", codes, ["net_cat"], axis=1))
    exported = compose.add_prefix(_export_module(net.module_, n_num, n_cat, opset), "net_")
    feeds = {i.name for i in exported.graph.input}
    nodes = [n for n in nodes if not (set(n.output) & ({"net_num", "net_cat"} - feeds))]
    nodes += list(exported.graph.node)
    inits += list(exported.graph.initializer)
    if classify:
        nodes += [helper.make_node("Softmax", ["net_raw"], ["probabilities"], axis=1),
                  helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0)]
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                 [None, int(net.arch_["n_outputs"])])]
    else:
        target = net.target_
        nodes += [helper.make_node("Mul", ["net_raw", const("post_std", np.asarray(
                      target["std"], dtype=np.float32))], ["post_scaled"]),
                  helper.make_node("Add", ["post_scaled", const("post_mean", np.asarray(
                      target["mean"], dtype=np.float32))], ["variable"])]
        outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
    graph_inputs = [helper.make_tensor_value_info(
        name, TensorProto.FLOAT if num else TensorProto.STRING, [None, 1])
        for name, num in inputs]
    graph = helper.make_graph(nodes, "workbench_network", graph_inputs, outputs, inits)
    model = helper.make_model(graph, producer_name="ml-workbench", opset_imports=[
        helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ml_opset)])
    model.ir_version = exported.ir_version
    return model


__all__ = ["SEQUENCE_REASON", "blocked_reason", "member_graph", "network_kind"]
