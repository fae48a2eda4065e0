"""Stages of a version (None, Staging, Production, Archived) as the registry keeps them.

One source of truth for Production: the version the `production` alias points at is in
Production, and no other (at most one per model). A version's stored `stage` column holds one
of the other three — what the version is in whenever it does not hold `production`. A version
that takes `production` gets the stored stage None, so when a later promotion moves the alias
on, it falls back to None (or to Archived, with `archive_existing`).

The `staging` alias and the Staging stage are different things: Staging may hold several
versions, an alias points at one. Migration 0010 put the holders of `staging` in Staging;
after that, moving one never moves the other.

Moves themselves span the registry and the deployment row, so they live in
`core.usecases.stages`; here are the rules and messages every path shares.
"""

from __future__ import annotations

from core.enums import Stage
from core.errors import ConflictError, InputError
from core.store import ModelVersion


def stage_of(mv: ModelVersion, holds_production: bool) -> Stage:
    """The version's stage: Production when it holds the `production` alias, else stored."""
    if holds_production:
        return Stage.PRODUCTION
    try:
        return Stage(mv.stage)
    except ValueError:  # a value this release does not know: treat it as no stage
        return Stage.NONE


def check_stage(value: str) -> Stage:
    try:
        return Stage.parse(value)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def restore_hint(name: str, version: int) -> str:
    return (f"Restore it first with `workbench stage {name} {version} Staging` (or POST "
            f"/v1/models/{name}/versions/{version}/stage with {{\"stage\": \"Staging\"}}).")


def refuse_archived(mv: ModelVersion, name: str, doing: str) -> None:
    """ConflictError (409 / exit 2) when `mv` is Archived: it never takes traffic nor an alias;
    it can still be loaded as NAME:VERSION for analysis."""
    if mv.stage == Stage.ARCHIVED:
        raise ConflictError(f"{name}:{mv.version} is Archived and never takes traffic, so it "
                            f"cannot {doing}. {restore_hint(name, mv.version)} It can still be "
                            f"loaded as {name}:{mv.version} for analysis (predict, compare).")


__all__ = ["check_stage", "refuse_archived", "restore_hint", "stage_of"]
