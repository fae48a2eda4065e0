"""The artifact store: safe serialisation, fingerprints, and verification before every load.

Pipelines are written with skops (no pickle), atomically, and their SHA-256 is recorded in the
registry. Loading re-hashes the file and refuses it if it differs, then lets skops build only
types from an explicit allow-list of module prefixes: a tampered, truncated or foreign file is
refused with a clear error, never executed.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import skops.io as sio

from core.errors import ArtifactIntegrityError, UntrustedArtifactError
from core.fsutil import atomic_write, sha256_bytes, sha256_file
from core.settings import get_settings

# Types skops may construct: our own code and the libraries whose estimators we train.
TRUSTED_MODULE_PREFIXES = (
    "sklearn.", "xgboost.", "numpy.", "scipy.", "core.features.", "core.automl.",
    "collections.", "builtins.", "pandas.", "functools.",
)


@dataclass(frozen=True)
class StoredArtifact:
    relpath: str
    fingerprint: str
    size_bytes: int


def save_pipeline(obj: Any, model_name: str) -> StoredArtifact:
    """Serialise with skops and write atomically under artifacts/models/<name>/."""
    buf = io.BytesIO()
    sio.dump(obj, buf)
    data = buf.getvalue()
    settings = get_settings()
    path = settings.artifact_dir / "models" / _safe(model_name) / f"{uuid.uuid4().hex}.skops"
    atomic_write(path, data)
    return StoredArtifact(str(path.relative_to(settings.home)), sha256_bytes(data), len(data))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def untrusted_types(path: Path) -> list[str]:
    """Types in a skops file that are outside our allow-list."""
    try:
        types = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ArtifactIntegrityError(f"{path.name} is not a readable skops file ({exc}).") from None
    return [t for t in types if not t.startswith(TRUSTED_MODULE_PREFIXES)]


def load_verified(relpath: str, fingerprint: str, label: str) -> Any:
    """Verify the file's SHA-256 against the registry, then load with the allow-list."""
    path = get_settings().home / relpath
    if not path.exists():
        raise ArtifactIntegrityError(
            f"The artifact of {label} is missing ({path}). Restore it from a backup of "
            "WORKBENCH_HOME or register the model again.")
    actual = sha256_file(path)
    if actual != fingerprint:
        raise ArtifactIntegrityError(
            f"The artifact of {label} fails its fingerprint check (expected {fingerprint[:12]}…, "
            f"found {actual[:12]}…): the file was modified or truncated after it was "
            "registered, so it will not be loaded. Register the model again.")
    return load_trusted_file(path)


def load_trusted_file(path: Path) -> Any:
    bad = untrusted_types(path)
    if bad:
        raise UntrustedArtifactError(
            f"{path.name} contains types outside the allow-list: {', '.join(bad[:5])}. Only "
            "scikit-learn/XGBoost pipelines can be loaded.")
    trusted = sio.get_untrusted_types(file=path)
    try:
        return sio.load(path, trusted=trusted)
    except Exception as exc:
        raise ArtifactIntegrityError(f"{path.name} could not be loaded ({exc}).") from None
