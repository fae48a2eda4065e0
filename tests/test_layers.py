"""The import contracts in pyproject.toml's [tool.importlinter] hold (docs/DECISIONS.md,
"Packaging and layout"): core imports no adapter or framework, core's packages import downward
only, and the UI helpers stay apart from the API and the CLI. Each contract runs on its own so
a failure names it and prints import-linter's report (every offending chain, with lines)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.factories import ROOT

CONTRACTS = [c["id"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())
             ["tool"]["importlinter"]["contracts"]]


def test_every_contract_is_checked() -> None:
    assert {"core-is-no-adapter", "core-layers", "ui-apart-from-api-and-cli",
            "api-and-cli-apart-from-ui"} <= set(CONTRACTS)


@pytest.mark.parametrize("contract", CONTRACTS)
def test_import_contract_holds(contract: str) -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is missing: `make setup` (pip install -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's packages, not another's
    proc = subprocess.run([str(lint), "--no-cache", "--no-logo", "--contract", contract],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"contract {contract} broken:\n{proc.stdout}{proc.stderr}", pytrace=False)
