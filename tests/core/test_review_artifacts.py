"""Review of issue 15: writing an artifact cannot leave the run's root through a symlinked
folder inside it (reads already could not; writes followed the link)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import core.tracking as tracking
from core.errors import InputError
from core.store import Database


def test_a_write_through_a_linked_folder_is_refused(backend: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    db = Database()
    try:
        with tracking.start_run(experiment="x", db=db) as run:
            run.log_artifact(b"fine", "b.txt")
            os.symlink(outside, tracking.run_root(run.run_id) / "out")
            with pytest.raises(InputError, match="symbolic link"):
                run.log_artifact(b"planted", "out/evil.txt")
            assert run.log_artifact(b"deep", "a/c.txt").path == "a/c.txt"
    finally:
        db.dispose()
    assert list(outside.iterdir()) == []
