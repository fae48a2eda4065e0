"""`workbench keygen`, `workbench rotate-key` and `workbench artifacts` (app/cli_artifacts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from core.store.sealing import new_key_text, parse_key
from tests.factories import numeric_pipeline, register_numeric, store_session

runner = CliRunner()


def test_keygen_prints_a_usable_key(home: Path) -> None:
    result = runner.invoke(app, ["keygen"])
    assert result.exit_code == 0, result.output
    assert len(parse_key(result.stdout.strip(), "keygen").secret) == 32


def test_rotate_key_from_stdin_and_from_a_file(home: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    old, new, newer = new_key_text(), new_key_text(), new_key_text()
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", old)
    with store_session() as s:
        register_numeric(s)
    shown = json.loads(runner.invoke(app, ["artifacts", "--json"]).stdout)
    assert shown["encrypted"] and shown["key_id"] == parse_key(old, "k").id

    result = runner.invoke(app, ["rotate-key", "--json"], input=new + "\n")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["rotated"], doc["failed"], doc["done"]) == (1, [], True)
    assert doc["key_id"] == parse_key(new, "k").id

    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", new)
    key_file = tmp_path / "newer.key"
    key_file.write_text(newer)
    result = runner.invoke(app, ["rotate-key", "--new-key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert "1 artifact(s) re-encrypted" in result.stdout and "Done" in result.stdout

    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", newer)
    pipe, X = numeric_pipeline()
    with store_session() as s:
        from core.registry import load_pipeline

        assert (load_pipeline("churn:1", session=s)[2].predict(X) == pipe.predict(X)).all()


def test_rotate_key_refuses_a_bad_new_key_and_reports_an_unreadable_artifact(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["rotate-key"], input="not a key\n")
    assert result.exit_code == 2 and "workbench keygen" in result.output
    missing = runner.invoke(app, ["rotate-key", "--new-key-file", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "cannot be read" in missing.output

    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", new_key_text())
    with store_session() as s:
        register_numeric(s)
    monkeypatch.delenv("WORKBENCH_ARTIFACT_KEY")  # the old key is not given
    result = runner.invoke(app, ["rotate-key"], input=new_key_text())
    assert result.exit_code == 1
    assert "churn:1" in result.output and "WORKBENCH_ARTIFACT_KEY" in result.output


def test_rotate_key_rotates_every_workspace_not_only_the_callers(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key belongs to the store: after "Done", dropping the old key must leave every
    workspace's versions loadable (a rotation scoped to the CLI's workspace did not)."""
    from core.identity.workspaces import add_workspace
    from core.registry import load_pipeline
    from core.store.scope import scope

    old, new = new_key_text(), new_key_text()
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", old)
    with store_session() as s:
        add_workspace("team-a", session=s)
        s.commit()
        register_numeric(s)
    with store_session() as s:
        scope(s, "team-a")
        register_numeric(s)
    result = runner.invoke(app, ["rotate-key", "--json"], input=new + "\n")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["rotated"], doc["remaining"], doc["done"]) == (2, 0, True)

    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", new)  # the old key is gone
    pipe, X = numeric_pipeline()
    for ws in ("default", "team-a"):
        with store_session() as s:
            scope(s, ws)
            assert (load_pipeline("churn:1", session=s)[2].predict(X) == pipe.predict(X)).all()
