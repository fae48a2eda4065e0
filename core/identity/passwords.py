"""Password hashes: argon2id through argon2-cffi (never hand-rolled).

Slow on purpose (the library's RFC 9106 "low memory" profile: 64 MiB and tens of milliseconds
per hash on a quiet machine), so a stolen user table cannot be brute-forced cheaply. Each hash
records its own parameters, so hashes made under another cost still verify, and one made with
other parameters than today's is upgraded on the next successful sign-in (`needs_rehash`).
WORKBENCH_PASSWORD_HASH_COST=cheapest exists for test suites only."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import InputError
from core.settings import get_settings

MIN_LENGTH = 8
_PROFILES = {"standard": profiles.RFC_9106_LOW_MEMORY, "cheapest": profiles.CHEAPEST}


@functools.cache
def _hasher(cost: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(_PROFILES[cost])


@functools.cache
def _dummy(cost: str) -> str:
    """Verified against when the user does not exist, so a wrong name takes as long as a
    wrong password and timing does not tell which part was wrong."""
    return _hasher(cost).hash("not a real password: it only spends the time")


def _current() -> PasswordHasher:
    return _hasher(get_settings().password_hash_cost)


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InputError(f"The password is {len(password)} characters long; use at least "
                         f"{MIN_LENGTH} (or give none to have one generated).")


def hash_password(password: str) -> str:
    check_strength(password)
    return _current().hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`; without a hash, spends the same time and
    says False."""
    cost = get_settings().password_hash_cost
    try:
        return _hasher(cost).verify(stored_hash or _dummy(cost), password) \
            and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _current().check_needs_rehash(stored_hash)


def generate() -> str:
    """A random password to print once (96 bits)."""
    return secrets.token_urlsafe(12)
