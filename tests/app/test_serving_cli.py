"""`workbench deploy | promote | rollback` (registered by app.cli_deploy.register)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from app.cli_deploy import register as register_commands
from tests.factories import register

cli = typer.Typer()
register_commands(cli)
runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_deploy_promote_rollback_from_the_cli(home: Path) -> None:
    for seed in range(3):
        register(seed=seed)
    assert json.loads(run("deploy", "churn", "1", "--json").stdout)["stable"] == 1
    doc = json.loads(run("deploy", "churn", "2", "--percent", "10", "--json").stdout)
    assert (doc["stable"], doc["candidate"], doc["percent"], doc["mode"]) == (1, 2, 10, "canary")
    assert "10 % → version 2" in run("deploy", "churn", "2", "--percent", "10").stdout
    doc = json.loads(run("promote", "churn", "--reason", "better", "--json").stdout)
    assert (doc["stable"], doc["candidate"]) == (2, None)
    doc = json.loads(run("deploy", "churn", "3", "--percent", "100", "--shadow", "--json").stdout)
    assert doc["mode"] == "shadow"
    assert json.loads(run("rollback", "churn", "--json").stdout)["candidate"] is None


def test_cli_refusals_exit_2_without_traceback(home: Path) -> None:
    register()
    for args in (["deploy", "churn", "1", "--percent", "150"], ["deploy", "nope", "1"],
                 ["deploy", "churn", "4"], ["promote", "churn"], ["rollback", "churn"]):
        result = run(*args, code=2)
        assert "Traceback" not in result.output and "error" in result.output


def test_cli_guard_rails_are_checked_and_name_the_option(home: Path) -> None:
    register()
    register(seed=1)
    run("deploy", "churn", "1")
    for option, value in (("--min-requests", "inf"), ("--min-requests", "1e308"),
                          ("--max-error-rate", "-1"), ("--max-p99-ms", "-100")):
        result = run("deploy", "churn", "2", option, value, code=2)
        assert option in result.output and "Traceback" not in result.output
    doc = json.loads(run("deploy", "churn", "2", "--min-requests", "20", "--max-p99-ms",
                         "250", "--json").stdout)
    assert doc["guard_rails"] == {"max_error_rate": 0.05, "max_p99_ms": 250.0,
                                  "min_requests": 20}
