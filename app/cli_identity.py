"""`workbench users …` and `workbench keys …`: who may sign in to a team server, and the keys
machines use (docs/identity/auth.md). Passwords come from stdin (or a hidden prompt), or are
generated and printed once; a key is printed once, at creation, and never again. The CLI acts
as the machine's operator: it holds the store itself."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, principal, session, table
from core.identity import DEFAULT_WORKSPACE

users_app = typer.Typer(no_args_is_help=True,
                        help="Users who sign in (POST /v1/auth/token, the app's login).")
keys_app = typer.Typer(no_args_is_help=True, help="API keys for machines and scripts.")

RoleOpt = Annotated[str, typer.Option(help="viewer (reads and predicts), editor (also "
                                           "uploads, trains, deploys) or admin (also users "
                                           "and keys).")]
WorkspaceOpt = Annotated[str, typer.Option(help="The workspace it belongs to.")]
ReasonOpt = Annotated[str, typer.Option(help="Why (kept in the audit log).")]


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")


def _password(generate: bool) -> tuple[str, bool]:
    """The password from stdin (first line) or a hidden prompt; generated when none is given
    or --generate. Returns (password, generated)."""
    from core.identity.passwords import generate as new_password

    given = ""
    if not generate:
        if sys.stdin is not None and sys.stdin.isatty():
            given = typer.prompt("Password (empty: generate one)", default="",
                                 hide_input=True, confirmation_prompt=True,
                                 show_default=False)
        elif sys.stdin is not None:
            given = sys.stdin.readline().rstrip("\r\n")
    return (given, False) if given else (new_password(), True)


def _show_generated(name: str, password: str) -> None:
    out.print(f"Generated password for {name} (shown once, store it now): {password}",
              highlight=False, soft_wrap=True)


# -- users ------------------------------------------------------------------------------------
@users_app.command("add")
@guarded
def users_add(
    name: Annotated[str, typer.Argument(help="The user name they sign in with.")],
    role: RoleOpt = "viewer",
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    generate: Annotated[bool, typer.Option(
        "--generate", help="Generate the password (printed once) instead of reading it.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Add a user; the password is read from stdin (or a prompt), or generated and printed
    once."""
    from core.identity.users import add_user

    password, generated = _password(generate)
    with session() as s:
        info = add_user(name, password, role=role, workspace=workspace, session=s,
                        actor=principal().actor)
    if json_out:
        emit_json({**info.model_dump(mode="json"),
                   **({"password": password} if generated else {})})
        return
    out.print(f"Added {info.name} ({info.role.value} in {info.workspace}).")
    if generated:
        _show_generated(info.name, password)


@users_app.command("list")
@guarded
def users_list(workspace: Annotated[str | None, typer.Option(
        help="Only this workspace.")] = None, json_out: JsonOpt = False) -> None:
    """The active users (never their passwords)."""
    from core.identity.users import list_users

    with session() as s:
        users = list_users(session=s, workspace=workspace)
    if json_out:
        emit_json([u.model_dump(mode="json") for u in users])
        return
    out.print(table(f"Users ({len(users)})", [u.model_dump(mode="json") for u in users],
                    ["name", "role", "workspace", "created_at"]))


@users_app.command("remove")
@guarded
def users_remove(name: Annotated[str, typer.Argument(help="The user to remove.")],
                 reason: ReasonOpt = "") -> None:
    """Remove a user: their tokens stop working at once."""
    from core.identity.users import remove_user

    with session() as s:
        remove_user(name, session=s, actor=principal().actor, reason=reason)
    out.print(f"Removed {name}; their sign-in tokens no longer work.")


@users_app.command("passwd")
@guarded
def users_passwd(
    name: Annotated[str, typer.Argument(help="The user.")],
    generate: Annotated[bool, typer.Option(
        "--generate", help="Generate the password (printed once).")] = False,
) -> None:
    """Set a new password (stdin, a prompt, or generated); tokens issued before stop
    working."""
    from core.identity.users import set_password

    password, generated = _password(generate)
    with session() as s:
        set_password(name, password, session=s, actor=principal().actor)
    out.print(f"New password set for {name}; their earlier tokens no longer work.")
    if generated:
        _show_generated(name, password)


@users_app.command("role")
@guarded
def users_role(name: Annotated[str, typer.Argument(help="The user.")],
               role: Annotated[str, typer.Argument(help="viewer, editor or admin.")],
               reason: ReasonOpt = "") -> None:
    """Change a user's role; they sign in again to use it."""
    from core.identity.users import set_role

    with session() as s:
        info = set_role(name, role, session=s, actor=principal().actor, reason=reason)
    out.print(f"{info.name} is now {info.role.value}.")


# -- keys -------------------------------------------------------------------------------------
@keys_app.command("create")
@guarded
def keys_create(
    name: Annotated[str, typer.Option("--name", help="What the key is for (audit actor).")],
    role: RoleOpt = "viewer",
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    json_out: JsonOpt = False,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from core.identity.keys import create_key

    with session() as s:
        created = create_key(name, role=role, workspace=workspace, session=s,
                             actor=principal().actor)
    if json_out:
        emit_json({**created.info.model_dump(mode="json"), "key": created.key})
        return
    info = created.info
    out.print(f"Created key {info.name} ({info.role.value} in {info.workspace}). Send it as "
              "`Authorization: Bearer KEY`; it is shown only now:", soft_wrap=True)
    out.print(created.key, highlight=False, soft_wrap=True)


@keys_app.command("list")
@guarded
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The keys (name, prefix, role, workspace; never the key)."""
    from core.identity.keys import list_keys

    with session() as s:
        keys = list_keys(session=s, include_revoked=all_keys, workspace=workspace)
    if json_out:
        emit_json([k.model_dump(mode="json") for k in keys])
        return
    out.print(table(f"API keys ({len(keys)})", [k.model_dump(mode="json") for k in keys],
                    ["name", "prefix", "role", "workspace", "created_at", "revoked_at"]))


@keys_app.command("revoke")
@guarded
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name or prefix.")],
                reason: ReasonOpt = "") -> None:
    """Revoke a key: refused from now on."""
    from core.identity.keys import revoke_key

    with session() as s:
        info = revoke_key(name, session=s, actor=principal().actor, reason=reason)
    out.print(f"Revoked key {info.name} ({info.prefix}).")
