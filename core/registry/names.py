"""Names of models and aliases: the rules they follow, references to a version, and the row a
model name stands for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, select

from core.errors import InputError, NotFoundError
from core.registry.semver import SEMVER_RE
from core.registry.semver import parse as semver_parse
from core.store import RegisteredModel

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,49}$")
PRODUCTION = "production"  # the alias serving follows


def check_model_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InputError(
            f"{name!r} is not a valid model name: use letters, digits, '_', '-' or '.', starting "
            "with a letter or digit (at most 100 characters).")
    return name


def check_alias_name(alias: str) -> str:
    if not ALIAS_RE.match(alias):
        raise InputError(f"{alias!r} is not a valid alias: use a letter followed by letters, "
                         "digits, '_' or '-'.")
    if alias.isdigit():
        raise InputError("An alias cannot be a number.")
    return alias


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str | None = None
    version: int | None = None
    semver: str | None = None  # MAJOR.MINOR.PATCH, from NAME@v1.2.0


def parse_ref(ref: str) -> ModelRef:
    """NAME, NAME@ALIAS, NAME@v1.2.0 (a semantic version) or NAME:VERSION (the integer).
    An alias never holds a '.', so `@v1.2.0` cannot be read as one."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if SEMVER_RE.match(alias):
            major, minor, patch = semver_parse(alias)
            return ModelRef(check_model_name(name), semver=f"{major}.{minor}.{patch}")
        if "." in alias:
            raise InputError(f"{ref!r}: after '@' give an alias (e.g. {name}@production) or a "
                             f"semantic version with three numbers (e.g. {name}@v1.2.0).")
        return ModelRef(check_model_name(name), alias=alias)
    if ":" in ref:
        name, version = ref.rsplit(":", 1)
        if not version.isdigit():
            raise InputError(f"{ref!r}: the version after ':' must be a number, e.g. "
                             f"{name}:1.")
        return ModelRef(check_model_name(name), version=int(version))
    return ModelRef(check_model_name(ref))


def model_row(session: Session, name: str, *, lock: bool = False) -> RegisteredModel:
    """The model row; `lock` holds it (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises writers) so alias moves and deployment changes of one model queue."""
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    model = session.exec(query.with_for_update() if lock else query).first()
    if model is None:
        raise NotFoundError(f"No model named {name!r}. List models with `workbench models`.")
    return model
