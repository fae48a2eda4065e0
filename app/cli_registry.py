"""`workbench stage`: move a version between the lifecycle stages. Registered onto the main CLI
by `app.cli` (`register(app)`). Same contract as app/cli.py: exit 2 with a one-paragraph message
on bad input or a refused move (409), `--json` prints one JSON document."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, session
from core.errors import InputError


def _expected(value: str | None) -> object:
    from core.usecases.stages import UNSET

    if value is None:
        return UNSET
    if value.strip().lower() == "none":
        return None
    if not value.strip().isdigit():
        raise InputError(f"--expect-production takes a version number or 'none', not "
                         f"{value!r}.")
    return int(value)


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def stage(
        name: str,
        version: int,
        stage_name: Annotated[str, typer.Argument(
            metavar="STAGE", help="None, Staging, Production or Archived.")],
        archive_existing: Annotated[bool, typer.Option(
            "--archive-existing", help="Moving to Production: archive the version it "
                                       "replaces, in the same transaction.")] = False,
        reason: Annotated[str, typer.Option(help="Why (kept in the audit log and the "
                                                 "alias history).")] = "",
        expect_production: Annotated[str | None, typer.Option(
            help="Refuse (exit 2) unless this version (or 'none') is in Production when the "
                 "move runs: a script's guard against a concurrent move.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Move NAME:VERSION to STAGE (None, Staging, Production, Archived). Production is
        the `production` alias; an Archived version never takes traffic."""
        from core.usecases.stages import set_stage

        with session() as s:
            change = set_stage(name, version, stage_name, session=s,
                               archive_existing=archive_existing, reason=reason,
                               expected_production=_expected(expect_production))
        if json_out:
            emit_json(change.model_dump(mode="json"))
            return
        if not change.changed:
            out.print(f"{name}:{version} (v{change.semver}) is already in {change.to_stage}; "
                      "nothing changed.")
            return
        out.print(f"{name}:{version} (v{change.semver}): {change.from_stage} → "
                  f"{change.to_stage}")
        if change.archived_previous is not None:
            out.print(f"{name}:{change.archived_previous}: Production → Archived")
        for alias, v in change.aliases_removed.items():
            out.print(f"removed {name}@{alias} (pointed at the archived version {v})")
