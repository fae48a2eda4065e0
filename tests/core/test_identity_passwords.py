"""Password hashes: argon2 through argon2-cffi, verified without saying why a check failed,
upgraded to today's parameters on the next good sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from core.identity import passwords


def test_a_hash_verifies_its_password_only(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    stored = passwords.hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert stored != passwords.hash_password("correct horse")  # salted
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "correct hors")
    assert not passwords.verify(None, "correct horse")  # no such user: still just False
    assert not passwords.verify("not a hash", "correct horse")


def test_a_short_password_is_refused_with_the_rule(home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    with pytest.raises(InputError, match="at least 8"):
        passwords.hash_password("short")
    generated = passwords.generate()
    assert len(generated) >= 16 and generated != passwords.generate()


def test_the_standard_cost_is_the_slow_profile_and_old_hashes_get_upgraded(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    cheap = passwords.hash_password("correct horse")
    monkeypatch.delenv("WORKBENCH_PASSWORD_HASH_COST")  # the default: RFC 9106 low memory
    assert passwords.verify(cheap, "correct horse")  # parameters travel with the hash
    assert passwords.needs_rehash(cheap)
    assert "m=65536" in passwords.hash_password("correct horse")  # 64 MiB
