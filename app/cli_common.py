"""Pieces every CLI module shares: consoles, the --json option, the error contract."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from app.jsonout import dumps
from core.errors import WorkbenchError
from core.identity import Principal, local_principal
from core.settings import get_settings
from core.store.db import Database
from core.store.failures import storage_failure
from core.store.scope import scope

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def guarded(fn):
    """Map user errors to exit code 2 with a message, unavailable storage to exit 1 with a
    message; never show a traceback for them."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            failure = storage_failure(exc)
            if failure is not None:  # not the caller's mistake: exit 1 (ARCHITECTURE.md)
                err.print(f"[bold red]error:[/] {failure.message}", highlight=False,
                          soft_wrap=True)
                raise typer.Exit(1) from None
            if os.environ.get("WORKBENCH_DEBUG"):
                raise
            err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                      "Set WORKBENCH_DEBUG=1 to see the traceback, and please report it.",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def emit_json(doc: Any) -> None:
    sys.stdout.write(dumps(doc) + "\n")


def table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    """A rich table of `rows` showing `columns`, cells written plainly."""
    out_table = Table(title=title, title_justify="left")
    for col in columns:
        out_table.add_column(col)
    for row in rows:
        out_table.add_row(*[_cell(row.get(c)) for c in columns])
    return out_table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# -- the CLI's composition root ---------------------------------------------------------------
# One store per process, built on a command's first use (so `--help` and `ui` never open it),
# keyed by URL because tests run many homes in one process (`forget_databases`).
_databases: dict[str, Database] = {}


def database() -> Database:
    url = get_settings().db_url
    db = _databases.get(url)
    if db is None:
        db = _databases[url] = Database(url)
    return db


def forget_databases() -> None:
    for db in _databases.values():
        db.dispose()
    _databases.clear()


_workspace: dict[str, str] = {}  # the global --workspace option, when given


def set_workspace(name: str | None) -> None:
    """The global `--workspace` option (app/cli_workspaces.py); None forgets it."""
    _workspace.pop("name", None)
    if name:
        _workspace["name"] = name
        # what `serve`, `ui` and the processes they start act in when nobody signs in
        os.environ["WORKBENCH_WORKSPACE"] = name


def principal() -> Principal:
    """The CLI acts as the machine's operator (it holds the store itself): an admin of the
    workspace --workspace or WORKBENCH_WORKSPACE names, `default` otherwise."""
    return local_principal(_workspace.get("name"))


def scoped_database() -> Database:
    """The store as the principal's workspace sees it (for use cases that take a `db`);
    internal loops (worker, monitor, reaper) take the unscoped `database()`."""
    ws = principal().workspace
    with session():  # refuses an unknown workspace, clearly
        pass
    return database().in_workspace(ws)


@contextmanager
def session() -> Iterator[Session]:
    """A session for one command, scoped to the principal's workspace (an unknown one is a
    clear error): the use cases it calls commit their own work."""
    from core.identity.workspaces import require_workspace

    with Session(database().engine, expire_on_commit=False) as s:
        ws = require_workspace(principal().workspace, session=s)
        scope(s, ws)  # every query: this workspace only (core/store/scope.py)
        yield s
