"""`workbench serve` and `workbench ui` listen on 127.0.0.1 by default and refuse any other
interface without authentication unless --insecure (issue 12, defect 6). The servers are not
started: uvicorn.run and the Streamlit process are the outer edges, replaced by recorders."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from app.cli import app, ui_command

runner = CliRunner()


@pytest.fixture
def launched(home: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What would have been started: uvicorn.run's arguments, or Streamlit's command line."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"target": target,
                                                                           **kw}))
    monkeypatch.setattr(subprocess, "call", lambda argv, **kw: calls.append({"argv": argv})
                        or 0)
    monkeypatch.setenv("WORKBENCH_BIND_HOST", "unset")  # restored after the test
    return calls


def _refused(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_serve_binds_loopback_by_default(launched: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["serve", "--no-monitor"])
    assert result.exit_code == 0, result.output
    (call,) = launched
    assert call["host"] == "127.0.0.1" and call["target"] == "app.api:app_factory"
    assert os.environ["WORKBENCH_BIND_HOST"] == "127.0.0.1"  # the workers' Host allow-list


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "myhost.example"])
def test_serve_refuses_an_open_interface_without_a_token(launched: list[dict[str, Any]],
                                                         host: str) -> None:
    message = _refused(["serve", "--host", host, "--no-monitor"])
    assert "--insecure" in message and "WORKBENCH_API_TOKEN" in message and host in message
    assert launched == []


def test_serve_opens_up_with_a_token_or_insecure(launched: list[dict[str, Any]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--no-monitor", "--insecure"])
    assert result.exit_code == 0, result.output
    assert "WITHOUT authentication" in " ".join(result.output.split())
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret")
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--no-monitor"])
    assert result.exit_code == 0, result.output
    assert [c["host"] for c in launched] == ["0.0.0.0", "0.0.0.0"]
    monkeypatch.delenv("WORKBENCH_API_TOKEN")
    for loopback in ("localhost", "127.0.0.2", "::1"):  # loopback needs nothing
        assert runner.invoke(app, ["serve", "--host", loopback, "--no-monitor"]).exit_code == 0


def test_ui_binds_loopback_by_default(launched: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["ui"])
    assert result.exit_code == 0, result.output
    (call,) = launched
    assert "--server.address=127.0.0.1" in call["argv"] and "streamlit" in call["argv"]
    assert call["argv"] == ui_command("127.0.0.1", 8501)


def test_ui_refuses_an_open_interface_unless_insecure(launched: list[dict[str, Any]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret")  # protects the API, not the UI
    message = _refused(["ui", "--host", "0.0.0.0"])
    assert "--insecure" in message and "no login" in message
    assert launched == []
    result = runner.invoke(app, ["ui", "--host", "0.0.0.0", "--port", "9000", "--insecure"])
    assert result.exit_code == 0, result.output
    assert launched[0]["argv"] == ui_command("0.0.0.0", 9000)
    assert "--server.address=0.0.0.0" in launched[0]["argv"]


def test_make_run_and_streamlit_config_bind_loopback() -> None:
    """`make run` and a bare `streamlit run streamlit_app.py` from the checkout."""
    import tomllib

    from tests.factories import ROOT

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    run_line = next(line for line in (ROOT / "Makefile").read_text().splitlines()
                    if "streamlit run" in line)
    assert "--server.address=127.0.0.1" in run_line


def test_ui_opens_up_once_users_sign_in(launched: list[dict[str, Any]]) -> None:
    """With a user the app shows its sign-in form, so another interface needs no --insecure."""
    from core.identity.users import add_user
    from tests.factories import store_session

    with store_session() as s:
        add_user("alice", "correct horse battery staple", role="admin", session=s)
    result = runner.invoke(app, ["ui", "--host", "0.0.0.0", "--port", "9000"])
    assert result.exit_code == 0, result.output
    assert launched[0]["argv"] == ui_command("0.0.0.0", 9000)
