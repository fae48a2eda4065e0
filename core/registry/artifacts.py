"""The artifact store: safe serialisation, fingerprints, and verification before every load.

Pipelines are written with skops (no pickle) through the artifact store (core.store.artifacts:
atomic, on a directory or an object store, encrypted when WORKBENCH_ARTIFACT_KEY is set), and
their SHA-256 is recorded in the registry. Loading reads the file once, checks those bytes
against the fingerprint(s), audits them
(core.registry.trust: exact trusted type names, the scikit-learn version that saved them) and
only then lets skops build them from the same bytes: a tampered, truncated or foreign file is
refused with a clear error, never executed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from core.errors import ArtifactIntegrityError, LibraryMismatchError, UntrustedArtifactError
from core.registry import deep
from core.registry.skops_io import sio
from core.registry.trust import TRUSTED_TYPES, saved_sklearn_versions, untrusted_types
from core.store import artifacts as store


@dataclass(frozen=True)
class StoredArtifact:
    relpath: str
    fingerprint: str  # of the plaintext: the version's identity
    size_bytes: int
    stored_fingerprint: str = ""  # of the stored (maybe encrypted) bytes
    format: str = "skops"  # "wbdeep": a pipeline with PyTorch networks (core/registry/deep.py)


def save_pipeline(obj: Any, model_name: str, artifact_format: str = "skops") -> StoredArtifact:
    """Serialise with skops (PyTorch networks as data: core/registry/deep.py) and write
    through the artifact store under models/<name>/; an ONNX model (`artifact_format="onnx"`)
    arrives as its audited bytes and is written as they are."""
    if artifact_format == "onnx":
        data, suffix = bytes(obj), "onnx"
    else:
        networks = deep.networks_in(obj)  # PyTorch networks: weights and architecture as data
        data = deep.dump(obj, networks, _skops_bytes) if networks else _skops_bytes(obj)
        suffix = "wbdeep" if networks else "skops"
    written = store.write(store.new_key("models", _safe(model_name), suffix=f".{suffix}"), data)
    return StoredArtifact(written.relpath, written.fingerprint, written.size_bytes,
                          written.stored_fingerprint, suffix)


def _skops_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    sio.dump(obj, buf)
    return buf.getvalue()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def sklearn_mismatch(saved: set[str] | str | None) -> str | None:
    """The saved scikit-learn version when it differs from the running one, else None."""
    versions = {saved} if isinstance(saved, str) else set(saved or ())
    other = sorted(v for v in versions if v != sklearn.__version__)
    return ", ".join(other) or None


def read_verified(relpath: str, fingerprint: str, label: str, *,
                  stored_fingerprint: str | None = None) -> bytes:
    """The artifact's plaintext bytes, only if they match the registry's fingerprint(s)
    (the stored bytes' first, when recorded, then the plaintext's after decryption).

    Nothing is deserialised: this is what a download hands out, and what `load_verified`
    audits and loads."""
    return store.read(relpath, label, fingerprint=fingerprint,
                      stored_fingerprint=stored_fingerprint)


def load_verified(relpath: str, fingerprint: str, label: str, *,
                  accepted_sklearn: str | None = None,
                  stored_fingerprint: str | None = None) -> Any:
    """Verify the file's SHA-256 against the registry, then load it through the audit.

    `accepted_sklearn`: the running scikit-learn version at which the user accepted this
    version's library difference (`workbench accept`); any other running version refuses."""
    data = read_verified(relpath, fingerprint, label, stored_fingerprint=stored_fingerprint)
    if relpath.endswith(".onnx"):  # an imported ONNX graph: audited, run by onnxruntime
        from core.registry.onnx_model import OnnxModel

        return OnnxModel(data, label)
    name, _, version = label.rpartition(":")
    return load_trusted_bytes(data, label, accept_mismatch=accepted_sklearn == sklearn.__version__,
                              accept_hint=f"`workbench accept {name} {version}`")


def load_trusted_bytes(data: bytes, label: str, *, accept_mismatch: bool = False,
                       accept_hint: str = "") -> Any:
    """Refuse untrusted types (naming each) and, unless accepted, estimators saved by another
    scikit-learn; then build only the trusted types. A pipeline holding PyTorch networks
    (core/registry/deep.py) goes through the same audit for its skops part, and its networks
    are rebuilt from data and tensors only."""
    if deep.is_container(data):
        return deep.load(data, label, lambda part: load_trusted_bytes(
            part, label, accept_mismatch=accept_mismatch, accept_hint=accept_hint))
    bad = untrusted_types(data, label)
    if bad:
        raise UntrustedArtifactError(
            f"{label} contains types that are not known to be data, so it was not loaded: "
            f"{', '.join(bad)}. Only scikit-learn/XGBoost pipelines built from estimators, "
            "transformers and arrays can be loaded; functions, partials, operators and methods "
            "could run code on this server.")
    mismatch = sklearn_mismatch(saved_sklearn_versions(data, label))
    if mismatch and not accept_mismatch:
        raise LibraryMismatchError(
            f"{label} was saved with scikit-learn {mismatch}, and this process runs "
            f"{sklearn.__version__}: a model loaded across versions can predict differently "
            f"without any error. Retrain it here, or accept the difference explicitly: "
            f"{accept_hint or 'see `workbench accept --help`'}.")
    try:
        with warnings.catch_warnings():
            if accept_mismatch:  # accepted and recorded: not a warning on every load
                warnings.simplefilter("ignore", InconsistentVersionWarning)
            return sio.load(io.BytesIO(data), trusted=sorted(TRUSTED_TYPES))
    except Exception as exc:
        raise ArtifactIntegrityError(f"{label} could not be loaded ({exc}).") from None
