"""The artifact store: safe serialisation, fingerprints, and verification before every load.

Pipelines are written with skops (no pickle), atomically, and their SHA-256 is recorded in the
registry. Loading reads the file once, checks those bytes against the fingerprint, audits them
(core.registry.trust: exact trusted type names, the scikit-learn version that saved them) and
only then lets skops build them from the same bytes: a tampered, truncated or foreign file is
refused with a clear error, never executed.
"""

from __future__ import annotations

import io
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import sklearn
import skops.io as sio
from sklearn.exceptions import InconsistentVersionWarning

from core.errors import ArtifactIntegrityError, LibraryMismatchError, UntrustedArtifactError
from core.fsutil import atomic_write, sha256_bytes
from core.registry.trust import TRUSTED_TYPES, saved_sklearn_versions, untrusted_types
from core.settings import get_settings


@dataclass(frozen=True)
class StoredArtifact:
    relpath: str
    fingerprint: str
    size_bytes: int


def save_pipeline(obj: Any, model_name: str, artifact_format: str = "skops") -> StoredArtifact:
    """Serialise with skops and write atomically under artifacts/models/<name>/; an ONNX
    model (`artifact_format="onnx"`) arrives as its audited bytes and is written as they are."""
    if artifact_format == "onnx":
        data = bytes(obj)
    else:
        buf = io.BytesIO()
        sio.dump(obj, buf)
        data = buf.getvalue()
    settings = get_settings()
    suffix = ".onnx" if artifact_format == "onnx" else ".skops"
    path = settings.artifact_dir / "models" / _safe(model_name) / f"{uuid.uuid4().hex}{suffix}"
    atomic_write(path, data)
    return StoredArtifact(str(path.relative_to(settings.home)), sha256_bytes(data), len(data))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def sklearn_mismatch(saved: set[str] | str | None) -> str | None:
    """The saved scikit-learn version when it differs from the running one, else None."""
    versions = {saved} if isinstance(saved, str) else set(saved or ())
    other = sorted(v for v in versions if v != sklearn.__version__)
    return ", ".join(other) or None


def read_verified(relpath: str, fingerprint: str, label: str) -> bytes:
    """The artifact's bytes, only if their SHA-256 matches the registry's fingerprint.

    Nothing is deserialised: this is what a download hands out, and what `load_verified`
    audits and loads."""
    path = get_settings().home / relpath
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactIntegrityError(
            f"The artifact of {label} is missing ({path}). Restore it from a backup of "
            "WORKBENCH_HOME or register the model again.") from None
    actual = sha256_bytes(data)
    if actual != fingerprint:
        raise ArtifactIntegrityError(
            f"The artifact of {label} fails its fingerprint check (expected {fingerprint[:12]}…, "
            f"found {actual[:12]}…): the file was modified or truncated after it was "
            "registered, so it will not be loaded or handed out. Register the model again.")
    return data


def load_verified(relpath: str, fingerprint: str, label: str, *,
                  accepted_sklearn: str | None = None) -> Any:
    """Verify the file's SHA-256 against the registry, then load it through the audit.

    `accepted_sklearn`: the running scikit-learn version at which the user accepted this
    version's library difference (`workbench accept`); any other running version refuses."""
    data = read_verified(relpath, fingerprint, label)
    if relpath.endswith(".onnx"):  # an imported ONNX graph: audited, run by onnxruntime
        from core.registry.onnx_model import OnnxModel

        return OnnxModel(data, label)
    name, _, version = label.rpartition(":")
    return load_trusted_bytes(data, label, accept_mismatch=accepted_sklearn == sklearn.__version__,
                              accept_hint=f"`workbench accept {name} {version}`")


def load_trusted_bytes(data: bytes, label: str, *, accept_mismatch: bool = False,
                       accept_hint: str = "") -> Any:
    """Refuse untrusted types (naming each) and, unless accepted, estimators saved by another
    scikit-learn; then build only the trusted types."""
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
