"""`workbench users …` and `workbench keys …`: passwords from stdin or generated and shown
once, keys shown once, and what they create signs in to the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def cheap_hashes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")


def _ok(args: list[str], stdin: str | None = None) -> str:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_users_are_added_listed_changed_and_removed(home: Path) -> None:
    _ok(["workspaces", "add", "team-a"])
    assert "Added ann (editor in team-a)" in _ok(
        ["users", "add", "ann", "--role", "editor", "--workspace", "team-a"],
        stdin="password-1\n")
    shown = _ok(["users", "add", "bob", "--role", "viewer"], stdin="\n")
    generated = shown.split("store it now): ")[1].split()[0]
    listed = json.loads(_ok(["users", "list", "--json"]))
    assert [(u["name"], u["role"], u["workspace"]) for u in listed] == [
        ("ann", "editor", "team-a"), ("bob", "viewer", "default")]
    assert "password" not in json.dumps(listed) and generated not in json.dumps(listed)
    with TestClient(create_app(background=False)) as c:
        for name, password in (("ann", "password-1"), ("bob", generated)):
            assert c.post("/v1/auth/token", json={"username": name, "password": password}
                          ).status_code == 200, name
        _ok(["users", "passwd", "ann"], stdin="password-2\n")
        _ok(["users", "role", "bob", "editor"])
        _ok(["users", "remove", "bob", "--reason", "left"])
        assert c.post("/v1/auth/token", json={"username": "ann", "password": "password-2"}
                      ).status_code == 200
        assert c.post("/v1/auth/token", json={"username": "bob", "password": generated}
                      ).status_code == 401
    assert [u["name"] for u in json.loads(_ok(["users", "list", "--json"]))] == ["ann"]


def test_bad_input_is_exit_2_with_the_rule(home: Path) -> None:
    for args, stdin, says in (
            (["users", "add", "ann", "--role", "owner"], "password-1\n", "not a role"),
            (["users", "add", "ann"], "short\n", "at least 8"),
            (["users", "remove", "nobody"], None, "no user 'nobody'"),
            (["keys", "revoke", "nothing"], None, "no active key 'nothing'")):
        result = runner.invoke(app, args, input=stdin)
        assert result.exit_code == 2, result.output
        assert says in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_key_is_printed_once_and_works_until_revoked(home: Path) -> None:
    _ok(["workspaces", "add", "team-a"])
    created = json.loads(_ok(["keys", "create", "--name", "ci", "--role", "editor",
                              "--workspace", "team-a", "--json"]))
    key = created["key"]
    assert created["role"] == "editor" and created["workspace"] == "team-a"
    listing = _ok(["keys", "list", "--json"])
    assert key not in listing and json.loads(listing)[0]["prefix"] == created["prefix"]
    with TestClient(create_app(background=False)) as c:
        me = c.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["actor"] == "ci" and me.json()["role"] == "editor"
        assert "Revoked key ci" in _ok(["keys", "revoke", "ci"])
        assert c.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"}
                     ).status_code == 401
    assert json.loads(_ok(["keys", "list", "--json"])) == []
    assert len(json.loads(_ok(["keys", "list", "--all", "--json"]))) == 1


def test_serve_counts_users_as_authentication(home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append(kw))
    monkeypatch.setenv("WORKBENCH_BIND_HOST", "unset")  # restored after the test
    refused = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--no-monitor"])
    assert refused.exit_code == 2 and "workbench users add" in " ".join(refused.output.split())
    _ok(["users", "add", "root-admin", "--role", "admin"], stdin="password-1\n")
    assert runner.invoke(app, ["serve", "--host", "0.0.0.0", "--no-monitor"]).exit_code == 0
    assert [c["host"] for c in calls] == ["0.0.0.0"]
