"""API parity (issue 15, item 4): what the CLI and the pages show has a REST route with a
typed answer — a job's logs, trials and suggestions, a version's suggestions, importance and
lineage, every deployment, the catalogue — and POST /v1/jobs / `workbench submit` take every
option `workbench automl` takes (fixed configurations, n_trials, search_space included)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli
from app.cli_jobs import automl, submit
from core.automl.request import TrainingRequest
from core.identity import local_principal
from core.jobs import ledger
from core.store import Worker
from tests.factories import WINE, built_home, copy_home, store_session

SPACE = ["--space", "knn.n_neighbors=4:6", "--space", "knn.weights=uniform"]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def wine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wine v1: a 4-trial search with overrides (job 1); v2: a fixed linear configuration
    retrained from it (job 2); v1 is production."""
    with built_home(tmp_path_factory, "parity") as path:
        _cli("automl", str(WINE), "--target", "cultivar", "--name", "wine", "--estimators",
             "linear,knn", "--trials", "4", *SPACE)
        _cli("train", str(WINE), "--target", "cultivar", "--name", "wine", "--estimator",
             "linear", "--param", "C=0.5")
        _cli("alias", "wine", "1", "production")
    return path


@pytest.fixture
def client(home: Path, wine_home: Path) -> Iterator[TestClient]:
    """The API on a copy of the wine store, with a live worker's row: queued jobs stay
    queued (no worker process is spawned to run them)."""
    copy_home(wine_home, home)
    with store_session() as s:
        s.add(Worker(id="parity-worker", host="test", pid=1))
        s.commit()
    with TestClient(create_app(background=False)) as c:
        yield c


def _refused(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}
    for word in words:
        assert word in body["detail"], body["detail"]


# -- jobs -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_search_honours_the_cli_controls_and_stores_them(client: TestClient) -> None:
    job = client.get("/v1/jobs/1").json()
    assert job["settings"]["n_trials"] == 4
    assert job["settings"]["search_space"] == {"knn": {"n_neighbors": {"low": 4, "high": 6},
                                                       "weights": "uniform"}}
    trials = client.get("/v1/jobs/1/trials").json()["trials"]
    assert len([t for t in trials if t["estimator"] != "ensemble"]) == 4
    for t in trials:
        if t["estimator"] == "knn":
            assert 4 <= t["params"]["n_neighbors"] <= 6 and t["params"]["weights"] == "uniform"


@pytest.mark.slow
def test_job_logs_trials_and_suggestions(client: TestClient) -> None:
    logs = client.get("/v1/jobs/1/logs").json()
    assert logs["state"] == "COMPLETED"
    assert [t["to"] for t in logs["transitions"]] == ["RUNNING", "COMPLETED"]
    assert isinstance(logs["log"], str)
    board = client.get("/v1/jobs/1/trials").json()
    assert board["metric"] == "log_loss" and board["greater_is_better"] is False
    rows = board["trials"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    scored = [r["cv_mean"] for r in rows if r["status"] == "ok"]
    assert scored == sorted(scored)  # log loss: lower first
    assert all(r["reason"] for r in rows if r["status"] in ("pruned", "failed"))
    tips = client.get("/v1/jobs/1/suggestions").json()
    assert tips["version"] == 1 and tips["model"] == "wine"
    assert isinstance(tips["suggestions"], list)


@pytest.mark.slow
@pytest.mark.parametrize("route", ["logs", "trials", "suggestions"])
def test_job_views_of_an_unknown_job_are_404_and_a_bad_id_422(client: TestClient,
                                                             route: str) -> None:
    _refused(client.get(f"/v1/jobs/999/{route}"), 404, "No job 999")
    _refused(client.get(f"/v1/jobs/abc/{route}"), 422)


@pytest.mark.slow
def test_suggestions_of_a_job_that_registered_nothing_say_why(client: TestClient) -> None:
    queued = client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar",
                                           "n_trials": 2}).json()
    client.post(f"/v1/jobs/{queued['id']}/cancel")
    tips = client.get(f"/v1/jobs/{queued['id']}/suggestions").json()
    assert tips["suggestions"] == [] and "without registering a version" in tips["note"]


@pytest.mark.slow
def test_a_fixed_configuration_is_queued_with_trains_validation(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar", "kind": "fixed",
                                      "estimator": "knn", "params": {"n_neighbors": 7}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["kind"] == "fixed" and job["settings"]["params"] == {"n_neighbors": 7}
    assert job["settings"]["estimators"] == ["knn"]
    _refused(client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar",
                                           "kind": "fixed", "estimator": "knn",
                                           "params": {"neighbours": 7}}),
             422, "neighbours", "n_neighbors")
    _refused(client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar",
                                           "kind": "fixed"}), 422, "estimator")
    _refused(client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar",
                                           "kind": "fixed", "estimator": "svm9"}),
             422, "svm9", "xgboost")


@pytest.mark.slow
@pytest.mark.parametrize(("body", "words"), [
    ({"search_space": {"xgboost": {"max_depth": {"low": 3, "high": 20}}}},
     ["search_space", "xgboost.max_depth", "2..10"]),
    ({"search_space": {"xgboost": {"depth": 3}}}, ["xgboost.depth", "max_depth"]),
    ({"search_space": {"svm": {"C": 1}}}, ["'svm'", "linear"]),
    ({"estimators": ["linear"], "search_space": {"knn": {"weights": "uniform"}}},
     ["'knn'", "not among the estimators"]),
    ({"n_trials": 0}, ["n_trials", "from 1 to"]),
])
def test_post_jobs_refuses_bad_controls_naming_the_parameter(client: TestClient, body: dict,
                                                            words: list[str]) -> None:
    before = client.get("/v1/jobs").json()
    _refused(client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar", **body}),
             422, *words)
    assert client.get("/v1/jobs").json() == before


# -- versions ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_version_suggestions_and_importance(client: TestClient) -> None:
    tips = client.get("/v1/models/wine/versions/1/suggestions").json()
    assert tips["job_id"] == 1 and isinstance(tips["suggestions"], list)
    imp = client.get("/v1/models/wine/versions/1/importance").json()
    assert imp["metric"] == "log_loss" and imp["version"] == 1
    features = [f["feature"] for f in imp["features"]]
    assert set(features) <= set(WINE.read_text().splitlines()[0].split(","))
    assert features and imp["note"] is None
    scores = [f["importance"] for f in imp["features"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_lineage_is_a_graph_from_the_data_to_the_parent_versions(client: TestClient) -> None:
    graph = client.get("/v1/models/wine/versions/2/lineage").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert graph["root"] == "version:wine:2" and graph["truncated"] is False
    assert {n["kind"] for n in nodes.values()} == {"dataset", "job", "run", "version"}
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    runs = {e["from"]: e["to"] for e in graph["edges"] if e["relation"] == "tracked_as"}
    assert set(runs) == {"job:1", "job:2"}  # each job's tracking run, openable at /v1/runs
    assert client.get(f"/v1/runs/{runs['job:2'].split(':')[1]}").json()["job_id"] == 2
    assert nodes["version:wine:1"]["detail"]["semver"] == "1.0.0"
    assert nodes["version:wine:2"]["detail"]["stage"] in {"None", "Production"}
    dataset = next(i for i, n in nodes.items() if n["kind"] == "dataset")
    assert (dataset, "job:2", "input") in edges and (dataset, "job:1", "input") in edges
    assert ("job:2", "version:wine:2", "registered") in edges
    assert ("version:wine:2", "version:wine:1", "parent") in edges
    assert ("job:1", "version:wine:1", "registered") in edges
    assert nodes[dataset]["label"] == "wine"
    assert all(e["from"] in nodes and e["to"] in nodes for e in graph["edges"])
    first = client.get("/v1/models/wine/versions/1/lineage").json()
    assert "version:wine:2" not in {n["id"] for n in first["nodes"]}  # only its sources


@pytest.mark.slow
@pytest.mark.parametrize("view", ["suggestions", "importance", "lineage"])
def test_version_views_refuse_unknown_and_bad_versions(client: TestClient, view: str) -> None:
    _refused(client.get(f"/v1/models/wine/versions/9/{view}"), 404, "no version 9")
    _refused(client.get(f"/v1/models/nope/versions/1/{view}"), 404, "nope")
    _refused(client.get(f"/v1/models/wine/versions/0/{view}"), 422)
    _refused(client.get(f"/v1/models/wine/versions/x/{view}"), 422)
    _refused(client.get(f"/v1/models/bad%20name/versions/1/{view}"), 400, "bad name")


# -- deployments and the catalogue --------------------------------------------------------------
@pytest.mark.slow
def test_deployments_lists_every_serving_model(client: TestClient) -> None:
    rows = client.get("/v1/deployments").json()
    assert [(r["name"], r["stable"], r["candidate"]) for r in rows] == [("wine", 1, None)]
    r = client.post("/v1/deployments/wine", json={"version": 2, "percent": 10})
    assert r.status_code == 200, r.text
    rows = client.get("/v1/deployments").json()
    assert [(r["name"], r["stable"], r["candidate"], r["percent"]) for r in rows] == [
        ("wine", 1, 2, 10.0)]


def test_no_deployments_is_an_empty_list(home: Path) -> None:
    with TestClient(create_app(background=False)) as c:
        assert c.get("/v1/deployments").json() == []


def test_the_catalogue_lists_what_an_override_may_set(home: Path) -> None:
    with TestClient(create_app(background=False)) as c:
        entries = {e["key"]: e for e in c.get("/v1/catalog").json()}
        depth = next(p for p in entries["xgboost"]["parameters"] if p["name"] == "max_depth")
        assert (depth["type"], depth["low"], depth["high"]) == ("int", 2, 10)
        regression = {e["key"]: e for e in c.get("/v1/catalog?task=regression").json()}
        criterion = {p["name"]: p for p in regression["rf"]["parameters"]}["criterion"]
        assert "squared_error" in criterion["choices"] and "gini" not in criterion["choices"]
        assert criterion["searched_by_default"] is False
        assert c.get("/v1/catalog?task=magic").status_code == 422


# -- one set of options -----------------------------------------------------------------------
def _options(command) -> set[str]:
    return set(inspect.signature(command).parameters) - {"data"}


# where `automl` runs its search, not what it searches: a submitted job runs wherever the
# worker that claims it sends trials (`workbench worker --dask`, WORKBENCH_DASK_SCHEDULER)
WHERE_IT_RUNS = {"dask"}


def test_submit_takes_every_option_automl_takes() -> None:
    assert _options(submit) == _options(automl) - WHERE_IT_RUNS


def test_every_automl_option_is_a_field_of_post_jobs() -> None:
    """The CLI's names map onto TrainingRequest (the POST /v1/jobs body) one to one, but for
    the market target's options, which make up its `market` object."""
    spelled = {"search": "search", "trials": "n_trials", "space": "search_space",
               "target_kind": "market", "horizon": "market", "ticker_column": "market",
               "cost_bps": "market", "json_out": None, "dask": None}
    fields = set(TrainingRequest.model_json_schema(by_alias=True)["properties"])
    for option in _options(automl):
        field = spelled.get(option, option)
        assert field is None or field in fields, option


@pytest.mark.slow
def test_submit_and_post_jobs_accept_every_option(client: TestClient) -> None:
    options = ["--task", "classification", "--metric", "accuracy", "--budget", "30",
               "--seed", "3", "--name", "wine2", "--estimators", "knn,linear", "--search",
               "random", "--no-ensemble", "--exclude", "ash", "--trials", "5", *SPACE]
    result = CliRunner().invoke(cli, ["submit", "1", "--target", "cultivar", "--json",
                                      *options])
    assert result.exit_code == 0, result.output
    body = {"dataset": 1, "target": "cultivar", "task": "classification",
            "metric": "accuracy", "budget": 30, "seed": 3, "name": "wine2",
            "estimators": ["knn", "linear"], "search": "random", "ensemble": False,
            "exclude": ["ash"], "n_trials": 5,
            "search_space": {"knn": {"n_neighbors": {"low": 4, "high": 6},
                                     "weights": "uniform"}}}
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    with store_session() as s:
        jobs = ledger.list_jobs(session=s)
        by_cli, by_api = sorted((j for j in jobs if j.model_name == "wine2"),
                                key=lambda j: j.id)
    assert by_cli.settings == by_api.settings
    assert by_api.settings["n_trials"] == 5 and by_api.settings["sampler"] == "random"
    assert by_api.settings["exclude"] == ["ash"] and by_api.settings["ensemble"] is False


@pytest.mark.parametrize(("space", "words"), [
    ("xgboost.max_depth=3:20", ["xgboost.max_depth", "2..10"]),
    ("xgboost.depth=3", ["xgboost.depth", "max_depth"]),
    ("max_depth=3", ["ESTIMATOR.PARAM=LOW:HIGH"]),
    ("rf.criterion=gini,purity", ["rf.criterion", "'purity'", "entropy"]),
])
def test_automl_refuses_a_bad_override_with_exit_2(home: Path, space: str,
                                                   words: list[str]) -> None:
    result = CliRunner().invoke(cli, ["automl", str(WINE), "--target", "cultivar",
                                      "--space", space])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    for word in words:
        assert word in message
    assert "Traceback" not in result.output


# -- the rest of what the CLI and pages do ------------------------------------------------------
@pytest.mark.slow
def test_aliases_move_and_their_history_over_http(client: TestClient) -> None:
    r = client.post("/v1/models/wine/aliases/staging", json={"version": 2, "reason": "try"})
    assert r.status_code == 200, r.text
    assert r.json() == {"model": "wine", "alias": "staging", "version": 2,
                        "previous_version": None}
    moved = client.post("/v1/models/wine/aliases/staging", json={"version": 1}).json()
    assert moved["previous_version"] == 2
    history = client.get("/v1/models/wine/aliases/history").json()
    moves = [(e["alias"], e["from_version"], e["to_version"], e["actor"], e["reason"])
             for e in history if e["alias"] == "staging"]
    me = local_principal().actor  # single-user mode: the machine's operator
    assert sorted(moves, key=str) == sorted([("staging", None, 2, me, "try"),
                                             ("staging", 2, 1, me, "")], key=str)
    _refused(client.post("/v1/models/wine/aliases/staging", json={"version": 9}), 404, "9")
    _refused(client.post("/v1/models/wine/aliases/9", json={"version": 1}), 400,
             "not a valid alias")
    _refused(client.post("/v1/models/wine/aliases/staging", json={"version": 0}), 422)
    _refused(client.get("/v1/models/nope/aliases/history"), 404, "nope")


@pytest.mark.slow
def test_the_rollout_step_moves_the_candidate_share(client: TestClient) -> None:
    _refused(client.post("/v1/deployments/wine/percent", json={"percent": 50}), 409,
             "no candidate")
    client.post("/v1/deployments/wine", json={"version": 2, "percent": 10})
    r = client.post("/v1/deployments/wine/percent", json={"percent": 50,
                                                          "expect_candidate": 2})
    assert r.status_code == 200, r.text
    assert (r.json()["candidate"], r.json()["percent"]) == (2, 50.0)
    _refused(client.post("/v1/deployments/wine/percent", json={"percent": 60,
                                                               "expect_candidate": 1}), 409)
    _refused(client.post("/v1/deployments/wine/percent", json={"percent": 101}), 422)
    _refused(client.post("/v1/deployments/nope/percent", json={"percent": 5}), 404)


@pytest.mark.slow
def test_accept_workers_and_samples(client: TestClient) -> None:
    _refused(client.post("/v1/models/wine/versions/9/accept", json={}), 404, "9")
    r = client.post("/v1/models/wine/versions/1/accept", json={"reason": "same library"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted_on"] and r.json()["library_mismatch"] is None  # saved here
    (worker,) = client.get("/v1/workers").json()
    assert (worker["id"], worker["host"], worker["pid"]) == ("parity-worker", "test", 1)
    stored = client.post("/v1/datasets/samples").json()
    assert {"wine", "breast_cancer"} <= {row["dataset"] for row in stored}
    assert next(row for row in stored if row["dataset"] == "wine")["new"] is False
    again = client.post("/v1/datasets/samples").json()
    assert not any(row["new"] for row in again)


@pytest.mark.slow
def test_trials_without_a_budget_get_the_hour_cap_from_the_cli(client: TestClient) -> None:
    result = CliRunner().invoke(cli, ["submit", "1", "--target", "cultivar", "--trials", "3",
                                      "--json"])
    assert result.exit_code == 0, result.output
    job = client.get("/v1/jobs").json()[0]
    assert (job["settings"]["budget"], job["settings"]["n_trials"]) == (3600.0, 3)
    plain = CliRunner().invoke(cli, ["submit", "1", "--target", "cultivar", "--json"])
    assert plain.exit_code == 0, plain.output
    assert client.get("/v1/jobs").json()[0]["settings"]["budget"] == 60.0
