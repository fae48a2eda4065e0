"""Users and keys belong to workspaces that exist (a name the scoping refuses, or one never
created, is refused with the valid names and how to create one), and the audit events of
user, key and workspace changes are the workspace's concerned: GET /v1/audit shows each
workspace its own, never `default`'s viewers another's."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli

runner = CliRunner()


def _cli(*args: str, stdin: str | None = None):
    return runner.invoke(cli, list(args), input=stdin)


def test_users_and_keys_of_refused_or_unknown_workspaces_are_refused(backend: str,
                                                                     home: Path) -> None:
    assert _cli("workspaces", "add", "team-a").exit_code == 0
    for ws, says in (("Team A", "is not a workspace name"), ("../x", "is not a workspace name"),
                     ("nosuch", "Unknown workspace 'nosuch'")):
        for args, stdin in ((("users", "add", "ann", "--workspace", ws), "password-1\n"),
                            (("keys", "create", "--name", "ci", "--workspace", ws), None)):
            r = _cli(*args, stdin=stdin)
            text = " ".join(r.output.split())
            assert r.exit_code != 0 and says in text, (args, r.output)
            assert "default, team-a" in text and "workbench workspaces add" in text, text
            assert "Traceback" not in r.output
    assert _cli("users", "list", "--json").stdout.strip() == "[]"  # nothing was stored
    assert _cli("keys", "list", "--json").stdout.strip() == "[]"
    ok = _cli("users", "add", "ann", "--workspace", "team-a", stdin="password-1\n")
    assert ok.exit_code == 0, ok.output


def _key(ws: str, role: str = "viewer") -> dict[str, str]:
    r = _cli("keys", "create", "--name", f"{ws}-{role}", "--role", role, "--workspace", ws,
             "--json")
    assert r.exit_code == 0, r.output
    return {"Authorization": f"Bearer {json.loads(r.stdout)['key']}"}


def test_identity_changes_are_audited_in_the_workspace_concerned(backend: str,
                                                                 home: Path) -> None:
    for ws in ("team-a", "team-b"):
        assert _cli("workspaces", "add", ws).exit_code == 0
    # the operator (acting in `default`) manages team-a's user and team-b's key
    assert _cli("users", "add", "ann", "--workspace", "team-a",
                stdin="password-1\n").exit_code == 0
    assert _cli("users", "role", "ann", "editor").exit_code == 0
    assert _cli("users", "passwd", "ann", stdin="password-2\n").exit_code == 0
    assert _cli("users", "remove", "ann").exit_code == 0
    assert _cli("keys", "create", "--name", "bot", "--workspace", "team-b").exit_code == 0
    assert _cli("keys", "revoke", "bot").exit_code == 0
    keys = {ws: _key(ws) for ws in ("default", "team-a", "team-b")}
    with TestClient(create_app(background=False)) as c:
        seen = {}
        for ws, headers in keys.items():
            r = c.get("/v1/audit?limit=1000", headers=headers)
            assert r.status_code == 200, r.text
            seen[ws] = {(e["action"], e["entity"]) for e in r.json()["entries"]}
    assert {("user.add", "user:ann"), ("user.role", "user:ann"), ("user.passwd", "user:ann"),
            ("user.remove", "user:ann"), ("workspace.add", "workspace:team-a"),
            ("key.create", "key:team-a-viewer")} <= seen["team-a"]
    assert {("key.create", "key:bot"), ("key.revoke", "key:bot"),
            ("workspace.add", "workspace:team-b")} <= seen["team-b"]
    assert seen["default"] == {("key.create", "key:default-viewer")}
    assert not any("team-b" in entity or entity == "key:bot" for _, entity in seen["team-a"])
    assert not any("team-a" in entity or "ann" in entity for _, entity in seen["team-b"])
