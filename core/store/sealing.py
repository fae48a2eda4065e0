"""Encryption at rest for artifacts: AES-256-GCM envelopes and the keys that open them.

A sealed artifact is `MAGIC | key id (8 bytes) | nonce (12) | ciphertext + tag (16)`; the
magic and key id are authenticated as associated data, so a changed header is refused like a
changed body. The key id (a hash of the key, never the key) says which key wrote the bytes,
so a wrong or missing key is named in the error instead of producing garbage, and a store can
hold artifacts of several keys (and plaintext ones written before a key was set).

Keys: 32 random bytes in URL-safe base64 (`workbench keygen` prints one).
`WORKBENCH_ARTIFACT_KEY` writes and reads; `WORKBENCH_ARTIFACT_OLD_KEYS` (comma-separated)
only reads, for the time a rotation is under way (docs/identity/encryption.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ArtifactIntegrityError, SettingsError
from core.settings import get_settings

MAGIC = b"\x89WBSEAL\n"  # binary first byte (as PNG's): no text file starts like this
KEY_ID_BYTES, NONCE_BYTES, TAG_BYTES = 8, 12, 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
OVERHEAD = HEADER_BYTES + TAG_BYTES
KEYGEN_HINT = ("a key is 32 random bytes in URL-safe base64 (44 characters); make one with "
               "`workbench keygen`")


class ArtifactKeyError(ArtifactIntegrityError):
    """An artifact is sealed with a key this process does not have (or has none)."""

    code = "artifact_key"


@dataclass(frozen=True)
class Key:
    secret: bytes

    @property
    def id(self) -> str:
        return key_id(self.secret).hex()


def key_id(secret: bytes) -> bytes:
    return hashlib.sha256(b"workbench-artifact-key\0" + secret).digest()[:KEY_ID_BYTES]


def new_key_text() -> str:
    """A fresh key, as `WORKBENCH_ARTIFACT_KEY` takes it."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def parse_key(text: str, source: str) -> Key:
    """The key in `text`; SettingsError naming `source` (a variable or file) otherwise."""
    raw = text.strip().encode()
    try:
        secret = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        secret = b""
    if len(secret) != 32:
        raise SettingsError(f"{source} is not an artifact key: {KEYGEN_HINT}.")
    return Key(secret)


def write_key() -> Key | None:
    """The key new artifacts are sealed with (WORKBENCH_ARTIFACT_KEY), or None: plaintext."""
    secret = get_settings().artifact_key
    text = secret.get_secret_value().strip() if secret is not None else ""
    return parse_key(text, "WORKBENCH_ARTIFACT_KEY") if text else None


def read_keys() -> dict[str, Key]:
    """Every key this process may open artifacts with, by key id."""
    keys = [k for k in [write_key()] if k is not None]
    old = get_settings().artifact_old_keys
    for i, part in enumerate((old.get_secret_value() if old else "").split(",")):
        if part.strip():
            keys.append(parse_key(part, f"WORKBENCH_ARTIFACT_OLD_KEYS (entry {i + 1})"))
    return {k.id: k for k in keys}


def is_sealed(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def sealed_key_id(data: bytes) -> str | None:
    """The id of the key that sealed `data` (its first HEADER_BYTES suffice), None if plain."""
    return data[len(MAGIC):len(MAGIC) + KEY_ID_BYTES].hex() if is_sealed(data) else None


def seal(data: bytes, key: Key) -> bytes:
    kid = key_id(key.secret)
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + kid + nonce + AESGCM(key.secret).encrypt(nonce, data, MAGIC + kid)


def unseal(data: bytes, label: str, keys: dict[str, Key] | None = None) -> bytes:
    """The plaintext of `data` (returned as is when not sealed). A key this process lacks is
    an ArtifactKeyError saying what to set; bytes that fail authentication are an
    ArtifactIntegrityError: never a wrong plaintext."""
    if not is_sealed(data):
        return data
    keys = read_keys() if keys is None else keys
    kid = sealed_key_id(data) or ""
    key = keys.get(kid)
    if key is None:
        have = (f"this process has key(s) {', '.join(sorted(keys))}" if keys
                else "WORKBENCH_ARTIFACT_KEY is not set")
        raise ArtifactKeyError(
            f"{label} is encrypted with artifact key {kid}, and {have}. Set "
            "WORKBENCH_ARTIFACT_KEY to the key it was written with (or add that key to "
            "WORKBENCH_ARTIFACT_OLD_KEYS while a `workbench rotate-key` is under way).")
    nonce = data[len(MAGIC) + KEY_ID_BYTES:HEADER_BYTES]
    try:
        return AESGCM(key.secret).decrypt(nonce, data[HEADER_BYTES:], data[:len(MAGIC) +
                                                                            KEY_ID_BYTES])
    except InvalidTag:
        raise ArtifactIntegrityError(
            f"{label} fails its authentication check under key {kid}: the stored bytes were "
            "modified after they were written, so they will not be loaded. Restore the "
            "artifact from a backup or register it again.") from None
