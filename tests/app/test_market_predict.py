"""A market model answers the same through REST as through the CLI: both turn raw price rows
into the model's input with one function (core.features.inputs.model_input), indicators
rebuilt from each ticker's history in the request; concurrent requests are never batched into
one history."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from app.api import create_app
from core.automl.catalog import get_spec
from core.automl.train import build_pipeline, prepare
from core.data.ingest import read_path
from core.deploy import deployments as dep
from core.deploy.service import Serving
from core.features.targets import market_table
from core.predict import predict
from core.registry import register_version
from core.store import Database
from tests.factories import DATA, store_session

STOCKS = pd.read_csv(DATA / "stocks.csv")


@cache
def _fitted() -> tuple:
    """A small direction model on AAPL+IBM 2011-2012 (fitted once per test session)."""
    prices = STOCKS[STOCKS["ticker"].isin(["AAPL", "IBM"]) & (STOCKS["date"] >= "2011-01-01")
                    & (STOCKS["date"] < "2013-01-01")]
    table = market_table(prices, kind="direction", horizon=1, price_column="adj_close")
    data = prepare(table.frame, table.target, time_column="date")
    spec = get_spec("hgb")
    with threadpool_limits(limits=1):
        pipe = build_pipeline(spec, data.task, dict(spec.defaults[0]), data.schema)
        pipe.fit(data.X, data.y)
    return pipe, data, table


def register_market_model(db: Database, name: str = "prices") -> None:
    """Registered with the market settings the AutoML runner stores
    (core.usecases.training._market_evaluation), and deployed."""
    pipe, data, table = _fitted()
    with db.session() as s:
        register_version(pipe, session=s, name=name, task=data.task, target=table.target,
                         input_schema=data.schema, classes=list(data.problem.classes),
                         evaluation={"market": {"kind": table.kind, "horizon": table.horizon,
                                                "price_column": table.price_column,
                                                "time_column": table.time_column,
                                                "ticker_column": table.ticker_column}})
    with store_session() as _s:
        dep.deploy(name, 1, session=_s)


def history(since: str, until: str) -> pd.DataFrame:
    """Raw price rows, tickers interleaved by date as an export would have them."""
    rows = STOCKS[STOCKS["ticker"].isin(["AAPL", "IBM"]) & (STOCKS["date"] >= since)
                  & (STOCKS["date"] < until)]
    return rows.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)


def cli_answers(db: Database, rows: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """What `workbench predict` writes: the file read as the CLI reads it, then core.predict."""
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    frame = read_path(path, max_bytes=1 << 30, for_training=False).frame
    with db.session() as s:
        return predict("prices", frame, session=s).frame


def test_rest_answers_a_market_model_like_the_cli(db: Database, tmp_path: Path) -> None:
    register_market_model(db)
    rows = history("2013-01-01", "2013-06-01")  # ~100 rows per ticker: every indicator defined
    want = cli_answers(db, rows, tmp_path)
    assert want["prediction"].nunique() == 2  # the features matter: not one constant answer
    with TestClient(create_app(background=False)) as client:
        r = client.post("/v1/models/prices/predict", json={"records": rows.to_dict("records")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["predictions"] == want["prediction"].tolist()
        got = np.array([[p["up"], p["down"]] for p in body["probabilities"]])
        np.testing.assert_array_equal(got, want[["proba_up", "proba_down"]].to_numpy())
        # the MLflow route takes the same rows; indicator values a caller sends are ignored
        stale = rows.assign(ret_1=0.5, rsi_14=99.0)
        r = client.post("/v1/models/prices/invocations",
                        json={"dataframe_records": stale.to_dict("records")})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want["prediction"].tolist()
        # without the price columns the model needs, a 422 that names them
        r = client.post("/v1/models/prices/predict",
                        json={"records": rows.drop(columns=["volume"]).to_dict("records")})
        assert r.status_code == 422 and r.json()["error"] == "schema_mismatch"
        assert "'volume'" in r.json()["detail"]


def test_concurrent_market_requests_are_not_one_history(db: Database, tmp_path: Path) -> None:
    """Batched together, one request's rows would become the other's history (the same
    tickers and dates overlap): each request is scored alone."""
    register_market_model(db)
    early, late = history("2013-01-01", "2013-04-01"), history("2013-02-01", "2013-06-01")
    want = [cli_answers(db, early, tmp_path)["prediction"].tolist(),
            cli_answers(db, late, tmp_path)["prediction"].tolist()]
    serving = Serving(db)
    serving.warm("prices", 1)

    async def both() -> list:
        return await asyncio.gather(
            serving.predict("prices", early.to_dict("records")),
            serving.predict("prices", late.to_dict("records")))

    try:  # in a thread of its own: earlier tests may leave an event loop running in this one
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(asyncio.run, both()).result()
    finally:
        serving.stop()
    assert [a.predictions for a in answers] == want


def test_cli_refuses_rows_without_the_market_columns(db: Database) -> None:
    from core.errors import SchemaMismatchError

    register_market_model(db)
    for drop in ("ticker", "date"):
        with pytest.raises(SchemaMismatchError, match=repr(drop)):
            with db.session() as s:
                predict("prices", history("2013-01-01", "2013-03-01").drop(columns=[drop]),
                        session=s)
