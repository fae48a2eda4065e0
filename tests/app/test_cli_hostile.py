"""Hostile uploads: each is refused with exit code 2 and a precise message, and the store is
left exactly as it was (no dataset, job, version or artifact file written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.factories import DATA, store_snapshot, write

runner = CliRunner()

GOOD_ROWS = "\n".join(f"{i},{i % 7},{'a' if i % 2 else 'b'},{i % 2}" for i in range(40))

CASES = {
    "empty": ("", "y", "the file is empty"),
    "whitespace_only": ("\n\n  \n", "y", "the file is empty"),
    "header_only": ("x,z,c,y\n", "y", "header but no data rows"),
    "duplicate_columns": ("x,z,x,y\n" + GOOD_ROWS, "y",
                          "column name 'x' appears twice (columns 1 and 3)"),
    "blank_column_name": ("x,,c,y\n" + GOOD_ROWS, "y", "column 2 has a blank name"),
    "target_missing": ("x,z,c,label\n" + GOOD_ROWS, "lable",
                       "target column 'lable' is not in the data. Did you mean 'label'"),
    "target_constant": ("x,z,c,y\n" + "\n".join(f"{i},{i},a,1" for i in range(30)), "y",
                        "has the same value (1) in every row"),
    "target_all_nan": ("x,z,c,y\n" + "\n".join(f"{i},{i},a," for i in range(30)), "y",
                       "target column 'y' is empty in every row"),
    "inf_values": ("x,z,c,y\n" + GOOD_ROWS + "\n5,inf,a,1\n", "y",
                   "column 'z' has infinite values (data rows 41)"),
    "mixed_types": ("x,z,c,y\n" + GOOD_ROWS + "\n5,oops,a,1\n", "y",
                    "column 'z' is mostly numbers but has text in data rows 41"),
    "too_few_rows": ("x,z,c,y\n" + "\n".join(GOOD_ROWS.splitlines()[:5]), "y",
                     "The table has 5 rows with a target value; training needs at least 30"),
    "ragged_line": ("x,z,c,y\n1,2,a,0\n3,4,b,1,9,9\n", "y", "line 3"),
    "bad_encoding": (b"x,z,c,y\n" + b"\x81\x8d\x8f\x90\x9d,1,a,0\n" * 3, "y",
                     "not UTF-8 or Windows-1252"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_refused_and_store_unchanged(case: str, home: Path,
                                                      tmp_path: Path) -> None:
    content, target, message = CASES[case]
    runner.invoke(app, ["seed"])  # a store with something in it, to see nothing changes
    before = store_snapshot()
    path = write(tmp_path / f"{case}.csv", content)
    result = runner.invoke(app, ["automl", str(path), "--target", target, "--budget", "2"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert store_snapshot() == before


def test_upload_over_the_size_limit_is_refused(home: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "0.01")
    path = write(tmp_path / "big.csv", "x,y\n" + "\n".join(f"{i},{i % 2}" for i in range(5000)))
    result = runner.invoke(app, ["automl", str(path), "--target", "y"])
    assert result.exit_code == 2
    assert "over the upload limit of 0 MB" in result.stderr.replace("\n", " ")
    assert "WORKBENCH_MAX_UPLOAD_MB" in result.stderr.replace("\n", " ")
    assert store_snapshot()["rows"]["dataset"] == 0


def test_all_empty_column_is_dropped_with_a_warning(home: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(DATA / "wine.csv")
    frame.insert(2, "notes", np.nan)
    path = tmp_path / "wine_notes.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["automl", str(path), "--target", "cultivar", "--budget", "2"])
    assert result.exit_code == 0, result.output
    assert "Column 'notes' is empty in every row and was left out" in result.stderr
    versions = runner.invoke(app, ["versions", "wine_notes", "--json"])
    import json

    (version,) = json.loads(versions.stdout)
    assert version["version"] == 1


def test_unknown_metric_and_bad_task_are_input_errors(home: Path) -> None:
    path = str(DATA / "diabetes.csv")
    result = runner.invoke(app, ["automl", path, "--target", "progression", "--metric", "auc"])
    assert result.exit_code == 2 and "Unknown metric 'auc'" in result.stderr
    result = runner.invoke(app, ["automl", path, "--target", "progression",
                                 "--metric", "roc_auc"])
    assert result.exit_code == 2
    assert "does not apply to a regression problem" in result.stderr.replace("\n", " ")
    result = runner.invoke(app, ["automl", path, "--target", "progression", "--task", "magic"])
    assert result.exit_code == 2 and "Unknown task 'magic'" in result.stderr
    assert store_snapshot()["rows"]["dataset"] == 0
