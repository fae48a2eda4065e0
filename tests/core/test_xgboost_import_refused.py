"""An imported XGBoost model is refused before XGBoost's native loader reads it, as CatBoost's
is (core/registry/trust.py, review s8 L4): its state is raw bytes no check can read first.
The workbench's own XGBoost versions, covered by their fingerprints, keep loading
(tests/core/test_artifact_trust.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xgboost import XGBClassifier, XGBRegressor

from core.errors import ArtifactIntegrityError
from core.registry.skops_io import sio


@pytest.mark.parametrize("factory", [XGBClassifier, XGBRegressor])
def test_an_imported_xgboost_model_is_refused_before_xgboost_reads_it(
        session, tmp_path: Path, factory) -> None:
    from core.registry import list_models
    from core.registry.importer import import_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    model = factory(n_estimators=2, max_depth=2, n_jobs=1).fit(X, (X[:, 0] > 0).astype(int))
    path = tmp_path / "xgb.skops"
    path.write_bytes(sio.dumps(model))
    with pytest.raises(ArtifactIntegrityError, match="XGBoost model cannot be checked"):
        import_model("xgb", path, session=session)
    assert list_models(session=session) == []
