"""`workbench stage` and the lifecycle in the CLI: moves with --json, stage and semver in
`versions --json`, exit 2 with the restore hint when an Archived version is deployed, and an
Archived version still predicting when named explicitly (NAME:VERSION, NAME@v1.0.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from app.cli import app
from tests.factories import record, register

runner = CliRunner()


def run_json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    return " ".join(result.stderr.split())  # as one paragraph, whatever the console width


def test_stage_moves_and_versions_show_them(home: Path) -> None:
    for seed in range(3):
        register(seed=seed)
    move = run_json("stage", "churn", "1", "Production", "--reason", "first")
    assert (move["from_stage"], move["to_stage"], move["production"]) == ("None",
                                                                          "Production", 1)
    move = run_json("stage", "churn", "2", "production", "--archive-existing",
                    "--expect-production", "1")
    assert (move["archived_previous"], move["semver"]) == (1, "1.0.1")
    rows = run_json("versions", "churn")
    assert [(r["stage"], r["semver"], r["archived"]) for r in rows] == [
        ("Archived", "1.0.0", True), ("Production", "1.0.1", False), ("None", "1.0.2", False)]
    assert "another request" in refused("stage", "churn", "3", "Production",
                                        "--expect-production", "none")
    assert "None, Staging, Production, Archived" in refused("stage", "churn", "3", "Live")
    plain = runner.invoke(app, ["stage", "churn", "3", "Staging"])
    assert plain.exit_code == 0 and "churn:3 (v1.0.2): None → Staging" in plain.stdout


def test_an_archived_version_is_not_deployed_but_still_predicts(home: Path,
                                                               tmp_path: Path) -> None:
    register()
    register(seed=1)
    run_json("stage", "churn", "2", "Archived")
    hint = "workbench stage churn 2 Staging"
    assert hint in refused("deploy", "churn", "2")
    run_json("deploy", "churn", "1")
    assert hint in refused("deploy", "churn", "2", "--percent", "20")
    assert hint in refused("deploy", "churn", "2", "--shadow")
    assert hint in refused("alias", "churn", "2", "production")
    pd.DataFrame([record(i) for i in range(5)]).to_csv(tmp_path / "rows.csv", index=False)
    for ref in ("churn:2", "churn@v1.0.1"):  # explicit: for analysis
        done = run_json("predict", ref, str(tmp_path / "rows.csv"), "--out",
                        str(tmp_path / "p.csv"))
        assert (done["version"], done["rows"]) == (2, 5)
