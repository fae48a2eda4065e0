"""The saved form of pipelines that hold PyTorch networks: never a pickled module.

A pipeline with networks (objects whose class sets `_workbench_network_`) is written as one zip
(the artifact the registry fingerprints):

- `workbench-deep.json`: the format, and per network its exact class name, its parameters
  and its fitted state (architecture and preprocessing as plain data);
- `network-<i>.safetensors`: its tensors (weights; a sequence model's recent history);
- `pipeline.skops`: the rest of the pipeline, each network replaced by a placeholder string,
  audited and built like any other artifact (core.registry.trust).

Loading rebuilds a network only from a class named in NETWORK_TYPES (exact names: no prefix,
never a name the file makes up); the class checks the architecture against its limits before
allocating anything and the tensors' names, shapes and types against the module it built.
skops' trust list is not widened: networks never pass through skops.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from core.errors import ArtifactIntegrityError, InputError

MANIFEST = "workbench-deep.json"
PIPELINE = "pipeline.skops"
FORMAT = "workbench-deep/1"
SLOT = "__workbench_network_{}__"
MAX_MANIFEST_BYTES = 16 * 2**20
# What a container may unpack to: float weights and skops files barely compress, so a file
# that claims far more than it holds is crafted (a zip bomb), refused before anything is read.
MAX_UNPACK_RATIO = 20
MAX_UNPACKED_BYTES = 4 * 2**30
# the exact classes a saved network may name (core/automl/deep); nothing else is imported
NETWORK_TYPES: frozenset[str] = frozenset({
    "core.automl.deep.tabular.TabularNetClassifier",
    "core.automl.deep.tabular.TabularNetRegressor",
    "core.automl.deep.sequence.SequenceNetClassifier",
    "core.automl.deep.sequence.SequenceNetRegressor",
})
INSTALL_HINT = "install the optional 'deep' extra (pip install -e '.[deep]') to load it"


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def networks_in(obj: Any) -> list[Any]:
    """Every network object reachable from `obj` (pipeline steps, wrappers, ensembles)."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = [obj]
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(node, str | bytes | int | float | np.ndarray):
            continue
        seen.add(id(node))
        if getattr(type(node), "_workbench_network_", False):
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
        elif hasattr(node, "get_params"):
            stack.extend(vars(node).values())
    return found


def dump(obj: Any, networks: list[Any], dump_skops: Callable[[Any], bytes]) -> bytes:
    """The container bytes for `obj` whose networks are `networks` (see `networks_in`)."""
    from safetensors.torch import save

    memo: dict[int, Any] = {id(net): SLOT.format(i) for i, net in enumerate(networks)}
    rest = copy.deepcopy(obj, memo)  # each network becomes its slot string; obj is untouched
    entries, files = [], {}
    for i, net in enumerate(networks):
        name = _class_name(net)
        if name not in NETWORK_TYPES:
            raise InputError(f"{name} is not a network type the registry can save.")
        doc, tensors = net.to_artifact()
        files[f"network-{i}.safetensors"] = save(tensors) if tensors else b""
        entries.append({"slot": SLOT.format(i), "class": name, **doc,
                        "weights": f"network-{i}.safetensors"})
    import torch

    manifest = {"format": FORMAT, "torch": torch.__version__, "networks": entries}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in [(MANIFEST, json.dumps(manifest, sort_keys=True).encode()),
                           (PIPELINE, dump_skops(rest)), *files.items()]:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), body)
    return out.getvalue()


def is_container(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return MANIFEST in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def skops_part(data: bytes) -> bytes:
    """The skops file inside a container; any other bytes unchanged."""
    if not is_container(data):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        _check_unpacked_size(zf, len(data), "the artifact")
        return zf.read(PIPELINE) if PIPELINE in zf.namelist() else b""


def _check_unpacked_size(zf: zipfile.ZipFile, packed: int, label: str) -> None:
    """Refuse a container whose members claim more bytes than it could honestly hold (the
    zip reader never returns more than a member's declared size)."""
    claimed = sum(info.file_size for info in zf.infolist())
    if claimed > min(MAX_UNPACKED_BYTES, max(packed, 2**20) * MAX_UNPACK_RATIO):
        raise ArtifactIntegrityError(
            f"{label} claims to unpack to {claimed:,} bytes from {packed:,}: more than a "
            "saved network can, so the file is crafted and was not loaded.")


def _manifest(zf: zipfile.ZipFile, label: str) -> dict[str, Any]:
    info = zf.getinfo(MANIFEST)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArtifactIntegrityError(f"{label}: the network description is too large "
                                     f"({info.file_size:,} bytes); the file is crafted.")
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except ValueError as exc:
        raise ArtifactIntegrityError(f"{label}: the network description is not JSON ({exc}).") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("networks"), list):
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArtifactIntegrityError(f"{label}: not a {FORMAT} file (format {found!r}).")
    return manifest


def _network(entry: Any, zf: zipfile.ZipFile, label: str) -> Any:
    name = entry.get("class") if isinstance(entry, dict) else None
    if name not in NETWORK_TYPES:
        raise ArtifactIntegrityError(
            f"{label} names a network class that is not allowed: {name!r}. Only the "
            f"workbench's own networks load: {', '.join(sorted(NETWORK_TYPES))}.")
    try:
        import torch  # noqa: F401
        from safetensors.torch import load
    except ImportError:
        raise ArtifactIntegrityError(f"{label} is a PyTorch network: {INSTALL_HINT}.") from None
    weights = entry.get("weights")
    if weights not in zf.namelist():
        raise ArtifactIntegrityError(f"{label}: the weights file {weights!r} is missing.")
    body = zf.read(weights)
    try:
        tensors = load(body) if body else {}
    except Exception as exc:
        raise ArtifactIntegrityError(f"{label}: the weights are not a readable safetensors "
                                     f"file ({exc}).") from None
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(module), cls).from_artifact(entry, tensors, label)


def load(data: bytes, label: str, load_skops: Callable[[bytes], Any]) -> Any:
    """Rebuild the pipeline: the skops part through `load_skops` (the usual audit), then
    each network from its data and tensors, put back in its slot."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArtifactIntegrityError(f"{label} is not a readable file ({exc}).") from None
    with zf:
        _check_unpacked_size(zf, len(data), label)
        manifest = _manifest(zf, label)
        if PIPELINE not in zf.namelist():
            raise ArtifactIntegrityError(f"{label}: the pipeline part is missing.")
        pipeline = load_skops(zf.read(PIPELINE))  # audited before any network is built
        table = {}
        for entry in manifest["networks"]:
            net = _network(entry, zf, label)
            table[entry["slot"]] = net
    return _put_back(pipeline, table, set())


def _put_back(node: Any, table: dict[str, Any], seen: set[int]) -> Any:
    if isinstance(node, str):
        return table.get(node, node)
    if id(node) in seen or isinstance(node, bytes | int | float | np.ndarray):
        return node
    seen.add(id(node))
    if isinstance(node, list):
        node[:] = [_put_back(v, table, seen) for v in node]
    elif isinstance(node, tuple):
        return tuple(_put_back(v, table, seen) for v in node)
    elif isinstance(node, dict):
        for key in list(node):
            node[key] = _put_back(node[key], table, seen)
    elif hasattr(node, "get_params"):
        for key, value in list(vars(node).items()):
            setattr(node, key, _put_back(value, table, seen))
    return node


__all__ = ["MANIFEST", "NETWORK_TYPES", "dump", "is_container", "load", "networks_in",
           "skops_part"]
