"""The PyTorch tabular network (core/automl/deep): scikit-learn surface for binary, multiclass and
regression; saved through the registry as JSON + safetensors and loaded to the same
predictions; repeatable with a seed; its search keeps the budget; a tampered or hostile
artifact is refused with a clear error before anything is built from it."""

from __future__ import annotations

import functools
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="the optional 'deep' extra (PyTorch) is not "
                                            "installed: pip install -e '.[deep]'")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402

from core.automl.catalog import CATALOG, get_spec, specs_for  # noqa: E402
from core.automl.deep.tabular import TabularNetClassifier, TabularNetRegressor  # noqa: E402
from core.automl.search import search  # noqa: E402
from core.automl.train import build_pipeline, prepare  # noqa: E402
from core.errors import ArtifactIntegrityError  # noqa: E402
from core.registry.artifacts import load_trusted_bytes, load_verified, save_pipeline  # noqa: E402
from core.registry.deep import MANIFEST  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "data"
FAST = {"hidden_units": 16, "n_layers": 1, "max_epochs": 40, "patience": 5, "batch_size": 32,
        "learning_rate": 1e-2}


def _iris(binary: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    X["size"] = np.where(X["sepal length (cm)"] > 5.8, "large", "small")  # a category
    X.loc[::11, "petal width (cm)"] = np.nan
    labels = pd.Series(np.asarray(["setosa", "versicolor", "virginica"])[y], name="species")
    return X, (labels == "virginica").map({True: "yes", False: "no"}) if binary else labels


def _stored_pipeline(task: str, home: Path):
    """A fitted pipeline as training builds it, saved through the registry."""
    pipe, data = _fitted(task)
    return pipe, data, save_pipeline(pipe, f"net-{task}")


@functools.cache
def _fitted(task: str):
    if task == "regression":
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        X["band"] = pd.cut(X["bmi"], 3, labels=["low", "mid", "high"]).astype(str)
        X, y = X.iloc[:200], pd.Series(y[:200])
    else:
        X, y = _iris(binary=task == "binary")
    data = prepare(pd.concat([X, y.rename("target")], axis=1), "target", task=task)
    pipe = build_pipeline(get_spec("deep_tabular"), task, FAST, data.schema).fit(data.X, data.y)
    return pipe, data


def test_the_networks_are_listed_but_only_searched_when_named() -> None:
    assert {"deep_tabular", "lstm", "tcn"} <= set(CATALOG)
    assert all(s.key not in {"deep_tabular", "lstm", "tcn"} for s in specs_for("binary"))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_train_save_load_predict_identical(task: str, home: Path) -> None:
    pipe, data, stored = _stored_pipeline(task, home)
    assert stored.relpath.endswith(".wbdeep")
    with zipfile.ZipFile(home / stored.relpath) as zf:  # data and tensors, no pickle
        names = set(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST))
    assert {MANIFEST, "pipeline.skops"} <= names and any(n.endswith(".safetensors")
                                                          for n in names)
    assert not any(n.endswith((".pkl", ".pt", ".pth")) for n in names)
    fitted = [n for n in manifest["networks"] if n["state"] is not None]
    assert fitted and fitted[0]["state"]["arch"]["kind"] == "tabular"
    loaded = load_verified(stored.relpath, stored.fingerprint, f"net-{task}:1")
    np.testing.assert_array_equal(loaded.predict(data.X), pipe.predict(data.X))
    if task != "regression":
        np.testing.assert_array_equal(loaded.predict_proba(data.X), pipe.predict_proba(data.X))
        assert list(loaded.classes_) == list(pipe.classes_) == data.problem.classes
        assert (pipe.predict(data.X) == data.y).mean() > 0.8  # it learned something
    else:
        assert np.corrcoef(pipe.predict(data.X), data.y)[0, 1] > 0.5


def test_scikit_learn_surface_and_categories_unseen_at_fit() -> None:
    X, y = _iris()
    model = TabularNetClassifier(**FAST)
    assert clone(model).get_params() == model.get_params()
    model.set_params(dropout=0.2, norm="batch").fit(X, y)
    assert model.get_params()["norm"] == "batch" and list(model.classes_) == sorted(set(y))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    odd = X.assign(size="never seen")  # an unseen category is the "unknown" embedding
    assert model.predict(odd).shape == (len(X),)
    assert model.training_["stopped"] in {"early stopping", "max_epochs", "time limit"}
    with pytest.raises(ValueError, match="norm"):
        TabularNetRegressor(norm="group").fit(X.drop(columns="size"), np.arange(len(X)))


def test_repeatable_with_a_seed() -> None:
    X, y = _iris()
    a = TabularNetClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    b = TabularNetClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    c = TabularNetClassifier(**FAST, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert torch.get_num_threads() >= 1 and not torch.are_deterministic_algorithms_enabled()


def test_a_time_limit_stops_training_inside_the_epochs() -> None:
    X, y = _iris()
    big = pd.concat([X] * 40, ignore_index=True)
    model = TabularNetClassifier(hidden_units=256, max_epochs=10_000, patience=10_000,
                                 batch_size=8, max_time_s=0.5).fit(big, pd.concat([y] * 40))
    assert model.training_["stopped"] == "time limit"
    assert model.training_["epochs"] < 10_000


@pytest.mark.slow  # a real search (a few seconds)
@pytest.mark.serial  # a wall-clock bound: alone, not beside a parallel worker
def test_a_search_of_the_network_keeps_its_budget() -> None:
    frame = pd.read_csv(DATA / "breast_cancer.csv")
    started = time.monotonic()
    result = search(frame, "diagnosis", budget=4, seed=0, estimators=["deep_tabular"],
                    ensemble=False)
    wall = time.monotonic() - started
    assert wall <= 4 * 1.1 + 2, f"took {wall:.1f}s for a 4s budget"
    assert any(t.status == "ok" for t in result.trials)
    assert result.best.estimator == "deep_tabular"


# -- hostile artifacts -------------------------------------------------------------------------

def _rewrite(data: bytes, edit) -> bytes:
    """The container with its manifest (or a member) changed by `edit(name, body)`."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, edit(item.filename, src.read(item.filename)))
    return out.getvalue()


def _manifest_edit(change):
    def edit(name: str, body: bytes) -> bytes:
        if name != MANIFEST:
            return body
        doc = json.loads(body)
        for net in doc["networks"]:
            if net["state"] is not None:
                change(net)
        return json.dumps(doc).encode()
    return edit


@pytest.fixture
def stored_binary(home: Path):
    pipe, data, stored = _stored_pipeline("binary", home)
    return (home / stored.relpath).read_bytes(), stored


@pytest.mark.parametrize(("change", "message"), [
    (lambda n: n["state"]["arch"].update(kind="transformer"), "unknown layer kind 'transformer'"),
    (lambda n: n["state"]["arch"].update(hidden=[10**9]), "over the limit"),
    (lambda n: n["state"]["arch"].update(cardinalities=[10**7]), "over the limit"),
    (lambda n: n["state"]["arch"].update(hidden=[32]), "do not fit the architecture"),
    (lambda n: n["state"]["arch"].update(exec="os.system"), "unknown fields"),
    (lambda n: n.update({"class": "torch.nn.Module"}), "not allowed: 'torch.nn.Module'"),
    (lambda n: n["state"]["prep"]["numeric"][0].update(mean="nan"), "malformed"),
    (lambda n: n["params"].update(norm="evil"), "invalid"),
])
def test_a_hostile_architecture_is_refused_with_a_clear_error(stored_binary, change,
                                                              message: str) -> None:
    data, _ = stored_binary
    with pytest.raises(ArtifactIntegrityError, match=message):
        load_trusted_bytes(_rewrite(data, _manifest_edit(change)), "crafted.wbdeep")


def test_tampered_weights_are_refused(stored_binary, home: Path) -> None:
    data, stored = stored_binary

    def garble(name: str, body: bytes) -> bytes:
        return body[:-16] if name.endswith(".safetensors") and body else body

    with pytest.raises(ArtifactIntegrityError, match="safetensors"):
        load_trusted_bytes(_rewrite(data, garble), "crafted.wbdeep")
    (home / stored.relpath).write_bytes(_rewrite(data, garble))  # a stored file: fingerprint
    with pytest.raises(ArtifactIntegrityError, match="fingerprint"):
        load_verified(stored.relpath, stored.fingerprint, "net-binary:1")


def test_a_zip_bomb_is_refused_before_anything_is_unpacked(stored_binary) -> None:
    """A member of zeros compresses ~1000:1: the container claims more than it can hold."""
    data, _ = stored_binary
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
        dst.writestr("padding.bin", b"\0" * (64 * 2**20))
    with pytest.raises(ArtifactIntegrityError, match="crafted"):
        load_trusted_bytes(out.getvalue(), "bomb.wbdeep")


@pytest.mark.slow  # torch.optim's first use imports torch._dynamo (seconds)
def test_our_adamw_steps_as_torch_optim_adamw() -> None:
    """base.AdamW avoids torch.optim's import of torch._dynamo; it must compute the same."""
    from core.automl.deep.base import AdamW

    theirs = torch.linspace(-1, 1, 12).reshape(4, 3).requires_grad_(True)
    ours = theirs.detach().clone().requires_grad_(True)
    reference = torch.optim.AdamW([theirs], lr=1e-2, weight_decay=1e-2)
    mine = AdamW([ours], lr=1e-2, weight_decay=1e-2)
    for _ in range(30):
        for p, opt in ((theirs, reference), (ours, mine)):
            opt.zero_grad()
            ((p ** 3).sum() + p.sum()).backward()
            opt.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_network_version_is_registered_downloaded_and_reimported(session, tmp_path: Path,
                                                                   home: Path) -> None:
    """The registry records the format; the downloaded file imports through the same checks
    (a tampered copy is refused before anything is built) and predicts the same."""
    from core.registry import load_pipeline, register_version
    from core.registry.artifacts import read_verified
    from core.registry.importer import import_model

    pipe, data = _fitted("binary")
    mv = register_version(pipe, session=session, name="irisnet", task="binary",
                          target="target", input_schema=data.schema,
                          classes=data.problem.classes)
    assert mv.artifact_format == "wbdeep"
    _, _, loaded = load_pipeline("irisnet:1", session=session)
    np.testing.assert_array_equal(loaded.predict_proba(data.X), pipe.predict_proba(data.X))

    download = tmp_path / "irisnet-v1.wbdeep"
    download.write_bytes(read_verified(mv.artifact_path, mv.fingerprint, "irisnet:1"))
    again = import_model("irisnet2", download, session=session)
    _, _, reloaded = load_pipeline(f"irisnet2:{again.version}", session=session)
    np.testing.assert_array_equal(reloaded.predict(data.X), pipe.predict(data.X))

    crafted = tmp_path / "crafted.wbdeep"
    crafted.write_bytes(_rewrite(download.read_bytes(), _manifest_edit(
        lambda n: n["state"]["arch"].update(kind="transformer"))))
    with pytest.raises(ArtifactIntegrityError, match="unknown layer kind"):
        import_model("irisnet3", crafted, session=session)
