"""`workbench workspaces list|add NAME` and the global `--workspace` option (issue 16)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, principal, session, set_workspace
from app.cli_common import table as _table
from core.identity.workspaces import add_workspace, list_workspaces

commands = typer.Typer(help="Workspaces (tenants): list them (the default) or add one.")


def workspace_option(
    workspace: Annotated[str | None, typer.Option(
        "--workspace", envvar="WORKBENCH_WORKSPACE",
        help="The workspace every command acts in (default: `default`).")] = None,
) -> None:
    """ML Workbench: AutoML, model registry and deployments for tabular data."""
    set_workspace(workspace)


@commands.callback(invoke_without_command=True)
@guarded
def workspaces(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the workspaces."""
    if ctx.invoked_subcommand is None:
        _print_workspaces(json_out)


@commands.command("list")
@guarded
def list_cmd(json_out: JsonOpt = False) -> None:
    """List the workspaces."""
    _print_workspaces(json_out)


def _print_workspaces(json_out: bool) -> None:
    with session() as s:
        rows = [{"name": w.name, "created_at": w.created_at.isoformat()}
                for w in list_workspaces(session=s)]
    if json_out:
        emit_json(rows)
    else:
        out.print(_table("Workspaces", rows, ["name", "created_at"]))


@commands.command("add")
@guarded
def add_cmd(name: Annotated[str, typer.Argument(help="Lowercase letters, digits, - or _.")],
            json_out: JsonOpt = False) -> None:
    """Create an empty workspace."""
    with session() as s:
        ws = add_workspace(name, session=s, actor=principal().actor)
    if json_out:
        emit_json({"name": ws.name, "created_at": ws.created_at.isoformat()})
    else:
        out.print(f"workspace {ws.name} created")
