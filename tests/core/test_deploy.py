"""Deployments and routing: the split, stickiness (also across processes), audited
deploy/promote/rollback, state surviving a restart, guard rails on real failing predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlmodel import Session, select

from core.deploy import deployments as dep
from core.deploy.enums import DeploymentMode, GuardAction
from core.deploy.guards import judge
from core.deploy.rails import DEFAULT_GUARD_RAILS
from core.deploy.router import bucket, route
from core.deploy.telemetry import Counter
from core.errors import ConflictError, NotFoundError
from core.registry import alias_history
from core.store import AuditEvent, Database
from tests.factories import PLANS, ROOT, SCHEMA, record, register, store_session, training_frame


def moves(session: Session, name: str = "churn") -> list[tuple[int | None, int | None]]:
    """The production alias's history: (from, to) per move."""
    return [(e.from_version, e.to_version) for e in alias_history(name, session=session)]


@pytest.fixture
def bs(backend_db: Database) -> Iterator[Session]:
    """A session on the store of `backend` (SQLite, then PostgreSQL)."""
    with Session(backend_db.engine, expire_on_commit=False) as s:
        yield s


# -- router --------------------------------------------------------------------------------
def test_ten_percent_canary_over_ten_thousand_keys_lands_within_one_point() -> None:
    routed = [route("churn", 1, 2, 10, f"user-{i}") for i in range(10_000)]
    share = routed.count(2) / len(routed)
    assert 0.09 <= share <= 0.11
    random_share = [route("churn", 1, 2, 10, None) for _ in range(10_000)].count(2) / 10_000
    assert 0.09 <= random_share <= 0.11


def test_routing_is_sticky_and_raising_the_percent_keeps_candidate_keys() -> None:
    keys = [f"k{i}" for i in range(5_000)]
    at10 = {k: route("churn", 1, 2, 10, k) for k in keys}
    assert at10 == {k: route("churn", 1, 2, 10, k) for k in keys}  # every key, every time
    at50 = {k: route("churn", 1, 2, 50, k) for k in keys}
    assert all(at50[k] == 2 for k in keys if at10[k] == 2)
    assert all(route("churn", 1, 2, 100, k) == 2 for k in keys)
    assert all(route("churn", 1, 2, 0, k) == 1 for k in keys)
    assert all(route("churn", 1, None, 50, k) == 1 for k in keys)


def test_the_hash_is_identical_in_another_process() -> None:
    """Python's hash() is salted per process; ours must not be."""
    keys = [f"user-{i}" for i in range(2_000)]
    code = ("import json,sys; from core.deploy.router import bucket; "
            "print(json.dumps([bucket('churn', 2, k) for k in json.load(sys.stdin)]))")
    run = subprocess.run([sys.executable, "-c", code], input=json.dumps(keys), cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert json.loads(run.stdout) == [bucket("churn", 2, k) for k in keys]


# -- deployments ---------------------------------------------------------------------------
def test_first_deploy_is_production_then_candidate_promote_and_rollback(bs: Session) -> None:
    for seed in range(3):
        register(seed=seed)
    st = dep.deploy("churn", 1, 10, reason="first", session=bs)
    assert (st.stable, st.candidate, st.percent) == (1, None, 0.0)
    st = dep.deploy("churn", 2, 10, reason="try v2", session=bs)
    assert (st.stable, st.candidate, st.percent, st.mode) == (1, 2, 10.0, DeploymentMode.CANARY)
    st = dep.set_percent("churn", 50, session=bs)
    assert st.percent == 50
    st = dep.promote("churn", reason="v2 is better", session=bs)
    assert (st.stable, st.candidate, st.percent) == (2, None, 0.0)
    assert moves(bs) == [(None, 1), (1, 2)]
    dep.deploy("churn", 3, 25, mode="shadow", session=bs)
    st = dep.rollback("churn", reason="kill switch", session=bs)
    assert (st.stable, st.candidate, st.percent) == (2, None, 0.0)
    actions = [e.action for e in bs.exec(select(AuditEvent).order_by(AuditEvent.id))
               if e.action.startswith("deployment.")]
    assert actions == ["deployment.initial", "deployment.candidate", "deployment.percent",
                       "deployment.promote", "deployment.candidate", "deployment.rollback"]
    assert [e.action for e in dep.history("churn", session=bs)] == actions[::-1]
    restarted = Database()  # a restarted server reads the same rule
    try:
        with Session(restarted.engine) as s:
            st = dep.get_state("churn", session=s)
        assert st.stable == 2 and st.candidate is None
    finally:
        restarted.dispose()


def test_promote_is_one_transaction_and_reads_never_commit(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A promote that fails after moving the alias leaves nothing behind (the alias, the
    row and the audit event are one transaction); reads never commit the caller's session."""
    from sqlalchemy import event

    register(seed=0)
    register(seed=1)
    dep.deploy("churn", 1, session=session, warm=None)
    dep.deploy("churn", 2, 10, session=session, warm=None)
    commits: list[int] = []
    event.listen(session, "after_commit", lambda _s: commits.append(1))
    dep.get_state("churn", session=session)
    dep.history("churn", session=session)
    assert commits == []

    def failing_record(*args, **kwargs):
        raise RuntimeError("the disk filled up while writing the audit event")

    with monkeypatch.context() as m:
        m.setattr(dep, "record", failing_record)
        with pytest.raises(RuntimeError):
            dep.promote("churn", session=session)
    session.rollback()
    assert commits == []
    st = dep.get_state("churn", session=session)
    assert (st.stable, st.candidate) == (1, 2)  # the alias did not move without the row
    assert moves(session) == [(None, 1)]
    dep.promote("churn", session=session)
    assert commits == [1]
    assert moves(session)[-1] == (1, 2)


def test_refusals_change_nothing(bs: Session) -> None:
    register()
    register(seed=1)
    with pytest.raises(NotFoundError):
        dep.deploy("nope", 1, 10, session=bs)
    with pytest.raises(NotFoundError):
        dep.deploy("churn", 9, 10, session=bs)
    with pytest.raises(dep.InvalidRequestError):
        dep.deploy("churn", 1, 150, session=bs)
    with pytest.raises(dep.InvalidRequestError, match="canary, shadow"):
        dep.deploy("churn", 1, 10, mode="blue-green", session=bs)
    dep.deploy("churn", 1, session=bs)
    for refused in (lambda: dep.deploy("churn", 1, 10, session=bs),  # already stable
                    lambda: dep.rollback("churn", session=bs),
                    lambda: dep.promote("churn", session=bs)):
        with pytest.raises(ConflictError):
            refused()
        bs.rollback()  # what the adapter's unit of work does with a refused request
    assert dep.get_state("churn", session=bs).candidate is None


def test_a_version_that_fails_to_load_never_gets_traffic(session: Session) -> None:
    register()
    mv = register(seed=1)
    dep.deploy("churn", 1, session=session)
    from core.settings import get_settings

    (get_settings().home / mv.artifact_path).write_bytes(b"tampered")
    with pytest.raises(Exception, match="(?i)fingerprint|differs|sha"):
        dep.deploy("churn", 2, 50, session=session)
    assert dep.get_state("churn", session=session).candidate is None


def test_guard_rails_judge_only_after_min_requests() -> None:
    st = dep.DeploymentState(name="m", stable=1, candidate=2, percent=10,
                             guard_rails={**DEFAULT_GUARD_RAILS.as_dict(), "min_requests": 20})
    c = Counter()
    for i in range(19):
        c.add(1.0, i % 2 == 0, None)
    assert judge(st, c).action is GuardAction.HOLD
    c.add(1.0, False, None)
    assert judge(st, c).action is GuardAction.ROLLBACK
    slow = Counter()
    for _ in range(30):
        slow.add(3000.0, True, None)
    assert judge(st, slow).action is GuardAction.ROLLBACK and "p99" in judge(st, slow).reason
    fine = Counter()
    for _ in range(30):
        fine.add(1.0, True, None)
    assert judge(st, fine).action is GuardAction.HOLD
    st.auto_advance = True
    assert (judge(st, fine).action, judge(st, fine).percent) == (GuardAction.ADVANCE, 50.0)
    st.percent = 100
    assert judge(st, fine).action is GuardAction.PROMOTE
    st.mode = DeploymentMode.SHADOW  # a shadow never answers: people judge it
    assert judge(st, c).action is GuardAction.HOLD


# -- the lean per-request path -------------------------------------------------------------
def test_the_lean_path_matches_the_pipeline_or_stays_off(home: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    from core.deploy.cache import LoadedModel
    from core.deploy.fastpath import compile_fast

    mv = register(strict_categories=False)
    from core.registry import load_pipeline

    with store_session() as s:
        _, mv, pipe = load_pipeline("churn:1", session=s)
    lm = LoadedModel.build("churn", mv, pipe)
    assert lm.fast is not None
    X, _ = training_frame(seed=5, n=40)
    X.loc[3, "plan"] = "never-seen"  # handle_unknown="ignore": all zeros, like sklearn
    records = X.to_dict("records")
    preds, probas = lm.predict_records(records)
    expected = pipe.predict_proba(X)
    np.testing.assert_allclose(probas, expected, rtol=1e-12)
    assert lm.classes == ["no", "yes"]
    assert preds == list(pipe.predict(X))
    X2, y2 = training_frame(seed=1)
    odd = make_pipeline(ColumnTransformer([("f", FunctionTransformer(np.tanh), ["a", "b"])]),
                        LogisticRegression()).fit(X2, y2)
    assert compile_fast(odd, SCHEMA) is None  # not understood: the ordinary path


@pytest.mark.slow  # a real search per family
@pytest.mark.parametrize("family", ["linear", "hgb", "rf"])
def test_workbench_trained_pipelines_take_the_fast_path(home, family: str) -> None:
    """The AutoML's own preprocessing — median imputer with missing indicators, scaling,
    categorical cleaning, one-hot (linear) or ordinal (trees) codes with rare categories
    grouped, date parts — compiles to the lean path and answers exactly like the pipeline, also for
    missing values and categories it never saw."""
    from core.automl.search import search
    from core.deploy.fastpath import ForestWalker, TreeWalker, compile_fast
    from core.features.schema import align_to_schema
    from tests.factories import DATA

    frame = pd.read_csv(DATA / "breast_cancer.csv")
    frame.loc[::7, "mean_radius"] = np.nan  # so the imputer learns an indicator column
    bands = pd.cut(frame["mean_texture"], [0, 15, 18, 21, 25, 28, 39.5, 100],
                   labels=["a", "b", "c", "d", "e", "rare", "rarest"]).astype(object)
    frame["texture_band"] = bands.where(frame.index % 11 != 0, None)  # some missing
    frame["seen_on"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(frame.index * 37, "h")
                        ).strftime("%Y-%m-%d %H:%M")
    result = search(frame, "diagnosis", budget=4, estimators=[family], ensemble=False)
    fast = compile_fast(result.pipeline, result.data.schema)
    assert fast is not None
    rows = align_to_schema(frame.drop(columns=["diagnosis"]).head(60), result.data.schema)
    rows.loc[rows.index[:3], "texture_band"] = ["never-seen", None, "rarest"]
    rows.loc[rows.index[:2], "seen_on"] = [None, "not a date"]
    arrays = {c: rows[c].to_numpy() for c in rows.columns}
    np.testing.assert_allclose(fast.predict_proba(arrays), result.pipeline.predict_proba(rows),
                               rtol=1e-9)
    assert list(fast.predict(arrays)) == list(result.pipeline.predict(rows))
    walker = {"hgb": TreeWalker, "rf": ForestWalker}.get(family)  # through the label wrapper
    assert type(fast.scorer) is walker if walker else fast.scorer is fast.rest


WALKED = [("hgb", "binary"), ("hgb", "multiclass"), ("hgb", "regression"),
          ("forest", "multiclass"), ("forest", "regression"), ("extra", "binary")]


@pytest.mark.parametrize(("family", "task"), WALKED)
def test_tree_ensembles_are_walked_with_the_estimators_own_answers(family: str, task: str
                                                                   ) -> None:
    """Gradient boosting and forests behind the lean path skip sklearn's per-call overhead;
    the answers (missing values and unseen categories included) are the estimator's own."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer

    from core.deploy.fastpath import ForestWalker, TreeWalker, compile_fast

    makers = {"hgb": (HistGradientBoostingClassifier, HistGradientBoostingRegressor, TreeWalker,
                      {"max_iter": 30}),
              "forest": (RandomForestClassifier, RandomForestRegressor, ForestWalker,
                         {"n_estimators": 25, "random_state": 0}),
              "extra": (ExtraTreesClassifier, ExtraTreesRegressor, ForestWalker,
                        {"n_estimators": 25, "random_state": 0})}
    classifier, regressor, walker, params = makers[family]
    X, y = training_frame(seed=3, n=400)
    if task == "multiclass":
        y = np.where(X["b"] > 0.5, "high", y)
    est = regressor(**params) if task == "regression" else classifier(**params)
    target = X["a"] * 2 + X["b"] if task == "regression" else y
    pre = ColumnTransformer([("num", SimpleImputer(add_indicator=True), ["a", "b"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore",
                                                   sparse_output=False), ["plan"])])
    pipe = make_pipeline(pre, est).fit(X, target)
    fast = compile_fast(pipe, SCHEMA)
    assert fast is not None and isinstance(fast.scorer, walker)
    rows, _ = training_frame(seed=9, n=60)
    rows.loc[::5, "a"] = np.nan
    rows.loc[::7, "plan"] = "never-seen"
    for batch in (rows.head(5), rows):  # few rows walk all trees at once; many, tree by tree
        arrays = {c: batch[c].to_numpy(dtype=float if c != "plan" else object) for c in batch}
        if task == "regression":
            np.testing.assert_allclose(fast.predict(arrays), pipe.predict(batch), rtol=1e-12)
        else:
            np.testing.assert_allclose(fast.predict_proba(arrays), pipe.predict_proba(batch),
                                       rtol=1e-12)
            assert list(fast.predict(arrays)) == list(pipe.predict(batch))


def test_concurrent_requests_share_a_predict_call_and_keep_their_own_answers(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batcher scores queued requests together (on the loop up to batch_max_rows, on the
    predict thread beyond), hands each caller its own rows, and a record the pipeline refuses
    fails only the request that sent it."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from core.deploy import batcher, service
    from core.store.db import Database

    register(strict_categories=True)
    dep.deploy("churn", 1, percent=100, session=session)
    sizes: list[int] = []
    real = batcher._score_batch

    def counting(batch):
        sizes.append(len(batch))
        return real(batch)

    monkeypatch.setattr(batcher, "_score_batch", counting)
    serving = service.Serving(Database())
    serving.batcher.max_rows = 16
    pipe = serving.model("churn", 1).pipeline

    def expected(records: list[dict]) -> list:
        return list(pipe.predict(pd.DataFrame(records)))

    async def run():
        singles = [[record(i, PLANS[i % 3])] for i in range(12)]
        big = [record(i, "pro") for i in range(40)]  # over max_rows: the predict thread
        bad = [record(0, "gold")]  # a plan the strict encoder never saw
        return await asyncio.gather(*[serving.predict("churn", r) for r in singles],
                                    serving.predict("churn", big),
                                    serving.predict("churn", bad), return_exceptions=True)

    try:  # in a thread of its own: earlier tests may leave an event loop running in this one
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(asyncio.run, run()).result()
    finally:
        serving.stop()
    *ok, big_answer, refused = answers
    assert [a.predictions for a in ok] == [expected([record(i, PLANS[i % 3])])
                                           for i in range(12)]
    assert big_answer.predictions == expected([record(i, "pro") for i in range(40)])
    assert all(len(a.probabilities) == len(a.predictions) for a in [*ok, big_answer])
    assert isinstance(refused, batcher.PredictionFailedError)
    assert max(sizes) > 1  # requests were scored together


def test_a_weighted_ensemble_is_lean_when_every_member_is() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from core.automl.ensemble import WeightedEnsemble
    from core.deploy.fastpath import EnsembleFast, compile_fast

    X, y = training_frame(seed=4, n=300)

    def member(est):
        pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])
        return make_pipeline(pre, est).fit(X, y)

    ensemble = WeightedEnsemble([member(LogisticRegression()),
                                 member(HistGradientBoostingClassifier(max_iter=20))],
                                [0.25, 0.75], task="binary")
    fast = compile_fast(ensemble, SCHEMA)
    assert isinstance(fast, EnsembleFast)
    rows, _ = training_frame(seed=8, n=30)
    arrays = {c: rows[c].to_numpy(dtype=float if c != "plan" else object) for c in rows}
    np.testing.assert_allclose(fast.predict_proba(arrays), ensemble.predict_proba(rows),
                               rtol=1e-9)
    assert list(fast.predict(arrays)) == list(ensemble.predict(rows))
    from sklearn.preprocessing import FunctionTransformer

    odd = make_pipeline(ColumnTransformer([("f", FunctionTransformer(np.tanh), ["a", "b"])]),
                        LogisticRegression()).fit(X, y)
    mixed = WeightedEnsemble([ensemble.pipelines[0], odd], [0.5, 0.5], task="binary")
    assert compile_fast(mixed, SCHEMA) is None  # one member not understood: ordinary path


def test_the_simulator_refuses_a_table_without_the_models_columns(db: Database) -> None:
    """An unrelated table used to send 1000 failing requests and chart nothing: it is refused
    before any request, naming the missing columns."""
    from core.deploy.simulator import simulate
    from core.errors import SchemaMismatchError
    from tests.factories import DATA, store_snapshot

    register()
    with db.session() as s:
        dep.deploy("churn", 1, session=s)
    before = store_snapshot()
    with pytest.raises(SchemaMismatchError, match="lacks .* columns churn:1 needs"):
        simulate("churn", pd.read_csv(DATA / "wine.csv"), 100, db=db)
    assert store_snapshot() == before
