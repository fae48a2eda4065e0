"""The Train page and the optional PyTorch networks (issue 18): without the 'deep' extra it says
how to enable them; with it, the networks are offered in the estimator picker."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.automl import deep
from core.automl.catalog import CATALOG
from tests.factories import DATA, ROOT, store_session


def _train_page() -> AppTest:
    from core.data.datasets import ingest_bytes

    with store_session() as s:
        ingest_bytes(pd.read_csv(DATA / "wine.csv").to_csv(index=False).encode(), "wine.csv",
                     session=s)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    return at


def _captions(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.caption)


def test_without_torch_the_train_page_says_how_to_enable_the_networks(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # whether a package is installed is the machine's, an outer edge
    monkeypatch.setattr(deep, "available", lambda: False)
    at = _train_page()
    assert "pip install -e '.[deep]'" in _captions(at)


def test_with_torch_the_networks_are_offered(home: Path) -> None:
    pytest.importorskip("torch", reason="the optional 'deep' extra (PyTorch) is not installed")
    at = _train_page()
    assert "pip install -e '.[deep]'" not in _captions(at)
    picker = at.multiselect(key="train_estimators")
    assert {CATALOG[k].label for k in ("deep_tabular", "lstm", "tcn")} <= set(picker.options)
    assert "searched only when chosen" in picker.help
