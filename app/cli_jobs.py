"""`workbench automl | train | submit | worker | jobs | cancel | pause | resume | logs | retrain |
schedule`: training and its jobs, merged into the main CLI by `app.cli`. Same contract as
app/cli.py: exit 2 with a one-paragraph message on bad input, `--json` prints one JSON
document, progress and logs go to stderr.

Every training command builds one `TrainingRequest` from the same options (`_request`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_common import (
    JsonOpt,
    database,
    emit_json,
    err,
    guarded,
    out,
    scoped_database,
    session,
    table,
)
from core.automl.request import TrainingRequest
from core.errors import InputError
from core.jobs.states import JobState, Trigger
from core.store.shapes import Params

commands = typer.Typer()
schedule_app = typer.Typer(help="Recurring retraining (cron or daily HH:MM, UTC).",
                           no_args_is_help=True)

TargetOpt = Annotated[str, typer.Option("--target", help="The column to predict.")]
TaskOpt = Annotated[str, typer.Option(help="auto, classification or regression.")]
MetricOpt = Annotated[str | None, typer.Option(
    help="roc_auc, log_loss, accuracy, f1, rmse, mae or r2.")]
BudgetOpt = Annotated[float | None, typer.Option(
    help="Search time in seconds (default 60; with --trials and no budget the search stops "
         "at N trials or after 3600 s).", min=1)]
TrialsOpt = Annotated[int | None, typer.Option(
    "--trials", help="Stop after N trials (pruned and failed ones count) or at the budget, "
                     "whichever comes first.", min=1)]
SpaceOpt = Annotated[list[str] | None, typer.Option(
    "--space", help="Override a search space, repeatable: ESTIMATOR.PARAM=LOW:HIGH (a range), "
                    "=A,B,C (choices) or =VALUE (fixed), e.g. xgboost.max_depth=3:8.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed for a reproducible run.")]
NameOpt = Annotated[str | None, typer.Option(help="Model name (default: file stem).")]
TimeColumnOpt = Annotated[str | None, typer.Option(help="Validate in time order.")]
EstimatorsOpt = Annotated[str | None, typer.Option(
    help="Comma-separated estimator keys to search (default: all).")]
SearchOpt = Annotated[str, typer.Option(help="Search method: tpe, random or grid.")]
EnsembleOpt = Annotated[bool, typer.Option(help="Try an ensemble of the best trials.")]
PortfolioOpt = Annotated[bool, typer.Option(
    help="Try the shipped zero-shot portfolio's configurations first.")]
TargetKindOpt = Annotated[str, typer.Option(
    help="level (predict the column as is), or for price tables: direction, return, "
         "log_return of --target over --horizon periods.")]
HorizonOpt = Annotated[int, typer.Option(help="Periods ahead for market targets.")]
TickerOpt = Annotated[str | None, typer.Option(help="Ticker column (market).")]
CostOpt = Annotated[float, typer.Option(help="Backtest cost per trade, bps.")]
DaskOpt = Annotated[str | None, typer.Option(
    "--dask", metavar="ADDRESS", help="Evaluate the search's trials in parallel on this Dask "
    "scheduler's workers (tcp://HOST:8786); overrides WORKBENCH_DASK_SCHEDULER.")]
ExcludeOpt = Annotated[list[str] | None, typer.Option(
    "--exclude", help="A column to leave out of the features, repeatable (a date that only "
                      "encodes the row order, an id stored as a number).")]


def _request(data: Path | int, target: str, *, task: str = "auto", estimators: str | None = None,
             target_kind: str = "level", horizon: int = 1, ticker_column: str | None = None,
             cost_bps: float = 5.0, **options: Any) -> TrainingRequest:
    """The request the options spell: comma-separated estimators, a market target unless
    the target kind is `level`."""
    keys = [k.strip() for k in estimators.split(",") if k.strip()] if estimators else None
    market = None if target_kind == "level" else {
        "kind": target_kind, "horizon": horizon, "ticker_column": ticker_column,
        "cost_bps": cost_bps}
    return TrainingRequest.create(dataset=data, target=target, task=task, estimators=keys,
                                  market=market, **options)


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.strip()


def _parse_space(items: list[str] | None) -> dict[str, dict[str, Any]] | None:
    """`--space xgboost.max_depth=3:8 --space rf.criterion=gini,entropy` as the request's
    `search_space` (checked against the catalogue by `TrainingRequest`)."""
    space: dict[str, dict[str, Any]] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        estimator, dot, param = key.strip().partition(".")
        if not sep or not dot or not estimator or not param or not raw.strip():
            raise InputError(f"--space {item!r} must look like ESTIMATOR.PARAM=LOW:HIGH, "
                             "ESTIMATOR.PARAM=A,B,C or ESTIMATOR.PARAM=VALUE, e.g. "
                             "xgboost.max_depth=3:8.")
        if ":" in raw:
            low, _, high = raw.partition(":")
            value: Any = {"low": _value(low), "high": _value(high)}
        elif "," in raw:
            value = [_value(v) for v in raw.split(",") if v.strip()]
        else:
            value = _value(raw)
        space.setdefault(estimator, {})[param.strip()] = value
    return space or None


def _parse_params(items: list[str]) -> Params:
    params: Params = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--param {item!r} must look like NAME=VALUE, e.g. max_depth=6.")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def _run_training(request: TrainingRequest, *, json_out: bool) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from core.usecases.training import Progress as SearchProgress
    from core.usecases.training import run_training

    budget, trials = request.budget, request.n_trials
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        # the bar follows whichever limit ends the search: trials or the budget
        task = bar.add_task("preparing data", total=1.0)
        started = time.monotonic()

        def progress(state: SearchProgress) -> None:
            best = state.best_score
            best_txt = f"{best:.4f}" if isinstance(best, float) else "-"
            done = (time.monotonic() - started) / budget
            if trials:
                done = max(done, state.trials_done / trials)
            bar.update(task, completed=min(done, 1.0),
                       description=f"trials {state.trials_done} · best {state.metric} "
                                   f"{best_txt} · {state.last_estimator}")
            if not err.is_terminal:
                err.print(f"trial {state.trials_done}: {state.last_estimator} "
                          f"(best {state.metric} {best_txt})", highlight=False)

        outcome = run_training(scoped_database(), request, progress=progress)
    result = outcome.result
    board = result.leaderboard()
    metric = result.data.metric.name
    for warning in result.notes:
        err.print(f"[yellow]note:[/] {warning}", highlight=False)
    if json_out:
        emit_json({
            "model": outcome.model, "version": outcome.version.version, "metric": metric,
            "score": result.best.score, "task": result.data.task,
            "task_reason": result.data.problem.reason, "job_id": outcome.job_id,
            "dataset_fingerprint": outcome.dataset.fingerprint,
            "elapsed_s": result.elapsed_s, "suggestions": result.suggestions,
            "evaluation": result.evaluation,
            "backtest": outcome.version.evaluation.get("backtest"),
            "leaderboard": board.astype(object).where(board.notna(), None).to_dict("records"),
        })
        return
    cols = ["rank", "estimator", f"{metric}_mean", f"{metric}_std", "fit_time_s",
            "predict_ms_per_1k", "status", "reason"]
    out.print(table(f"Leaderboard ({result.data.task}: {result.data.problem.reason})",
                    board.to_dict("records"), cols))
    for tip in result.suggestions:
        out.print(f"• {tip}", highlight=False)
    bt = outcome.version.evaluation.get("backtest")
    if bt:
        m = bt["metrics"]
        out.print("Backtest (walk-forward, out-of-fold): " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()),
            highlight=False)
    out.print(f"Registered {outcome.model}:{outcome.version.version} "
              f"({result.best.estimator}, {metric} {result.best.score:.4f}, "
              f"searched {result.elapsed_s:.1f}s)")


@commands.command()
@guarded
def automl(
    data: Annotated[Path, typer.Argument(help="A .csv or .parquet file.")],
    target: TargetOpt,
    task: TaskOpt = "auto",
    metric: MetricOpt = None,
    budget: BudgetOpt = None,
    seed: SeedOpt = 0,
    name: NameOpt = None,
    time_column: TimeColumnOpt = None,
    estimators: EstimatorsOpt = None,
    search: SearchOpt = "tpe",
    ensemble: EnsembleOpt = True,
    target_kind: TargetKindOpt = "level",
    horizon: HorizonOpt = 1,
    ticker_column: TickerOpt = None,
    cost_bps: CostOpt = 5.0,
    exclude: ExcludeOpt = None,
    trials: TrialsOpt = None,
    space: SpaceOpt = None,
    dask: DaskOpt = None,
    portfolio: PortfolioOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Search for the best pipeline, print the leaderboard and register the winner."""
    _use_dask(dask)
    _run_training(_request(data, target, task=task, metric=metric, budget=budget, seed=seed,
                           name=name, time_column=time_column, estimators=estimators,
                           search=search, ensemble=ensemble, target_kind=target_kind,
                           horizon=horizon, ticker_column=ticker_column, cost_bps=cost_bps,
                           exclude=exclude or None, n_trials=trials,
                           search_space=_parse_space(space), portfolio=portfolio),
                  json_out=json_out)


@commands.command()
@guarded
def train(
    data: Annotated[Path, typer.Argument(help="A .csv or .parquet file.")],
    target: TargetOpt,
    estimator: Annotated[str, typer.Option(help="Estimator key, e.g. hgb, xgboost, linear.")],
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable.")] = None,
    task: TaskOpt = "auto",
    metric: MetricOpt = None,
    seed: SeedOpt = 0,
    name: NameOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train one given configuration (no search), evaluate and register it."""
    _run_training(_request(data, target, task=task, metric=metric, seed=seed, name=name,
                           kind="fixed", estimator=estimator,
                           params=_parse_params(param or [])), json_out=json_out)


@commands.command()
@guarded
def submit(
    data: Annotated[str, typer.Argument(help="A .csv/.parquet file or a stored dataset id.")],
    target: TargetOpt,
    task: TaskOpt = "auto",
    metric: MetricOpt = None,
    budget: BudgetOpt = None,
    seed: SeedOpt = 0,
    name: Annotated[str | None, typer.Option(help="Model name.")] = None,
    time_column: TimeColumnOpt = None,
    estimators: EstimatorsOpt = None,
    search: SearchOpt = "tpe",
    ensemble: EnsembleOpt = True,
    target_kind: TargetKindOpt = "level",
    horizon: HorizonOpt = 1,
    ticker_column: TickerOpt = None,
    cost_bps: CostOpt = 5.0,
    exclude: ExcludeOpt = None,
    trials: TrialsOpt = None,
    space: SpaceOpt = None,
    portfolio: PortfolioOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Queue a training job for a worker and print its id (starts a local worker if none)."""
    from app.workers import ensure_local_worker
    from core.usecases.training import submit as submit_job

    request = _request(int(data) if data.isdigit() else Path(data), target, task=task,
                       metric=metric, budget=budget, seed=seed, name=name,
                       time_column=time_column, estimators=estimators, search=search,
                       ensemble=ensemble, target_kind=target_kind, horizon=horizon,
                       ticker_column=ticker_column, cost_bps=cost_bps,
                       exclude=exclude or None, n_trials=trials,
                       search_space=_parse_space(space), portfolio=portfolio)
    with session() as s:
        job = submit_job(request, session=s)
    started = ensure_local_worker(database())
    if json_out:
        emit_json({"job_id": job.id, "state": job.state, "worker_started": bool(started)})
    else:
        out.print(job.id)


def _monitor_only(parent_pid: int | None) -> None:
    """Alert checks every 30 s, and reaping of lost jobs, until SIGTERM/Ctrl-C (or, for
    `workbench serve`'s child, until the parent is gone: a server killed outright cannot stop
    us). The parent names itself: a server stopped while this process was still importing
    would otherwise be missed (we would take init, our new parent, for it)."""
    import logging
    import os
    import signal
    import threading

    from core.jobs.reaper import run_reaper
    from core.usecases.alert_actions import run_monitor

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # jobs of a dead worker must not show RUNNING while no worker is alive to reap them
    threading.Thread(target=run_reaper, args=(database(), stop), daemon=True,
                     name="reaper").start()
    if parent_pid is not None:
        def watch() -> None:
            while os.getppid() == parent_pid and not stop.wait(1.0):
                pass
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
    run_monitor(stop, database())


@commands.command()
@guarded
def worker(
    max_jobs: Annotated[int | None, typer.Option(help="Exit after this many jobs.")] = None,
    idle_exit: Annotated[float | None, typer.Option(help="Exit after idling this long (s).")]
    = None,
    monitor_only: Annotated[bool, typer.Option(
        "--monitor-only", help="Run only the alert checks and telemetry compaction, every "
        "30 s; claim no jobs (what `workbench serve` starts beside the server).")] = False,
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
    dask: DaskOpt = None,
) -> None:
    """Run a job worker in this process (claims queued jobs). SIGTERM or Ctrl-C stops it: a
    running job ends CANCELLED at its next check and registers nothing."""
    import logging

    _use_dask(dask)

    from core.usecases.worker import job_worker

    if monitor_only:
        return _monitor_only(parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    w = job_worker(database())  # its run() turns SIGTERM/SIGINT into a clean stop of the job
    err.print(f"worker {w.id} started")
    done = w.run(max_jobs=max_jobs, idle_exit_s=idle_exit)
    err.print(f"worker {w.id} stopped after {done} job(s)")


def _use_dask(address: str | None) -> None:
    """--dask ADDRESS: the setting, for this process and the job processes it starts."""
    if address:
        import os

        from core.settings import reset_settings

        os.environ["WORKBENCH_DASK_SCHEDULER"] = address
        reset_settings()


@commands.command()
@guarded
def cancel(job_id: int, json_out: JsonOpt = False) -> None:
    """Cancel a job: queued ones at once, running ones between trials (trials are kept)."""
    from core.jobs.ledger import request_cancel
    from core.jobs.reaper import reap_lost_jobs

    with session() as s:
        reap_lost_jobs(session=s, by="cli")  # a lost job is FAILED already, not waiting
        job = request_cancel(job_id, session=s)
    doc = {"job_id": job.id, "state": job.state, "cancel_requested": job.cancel_requested}
    emit_json(doc) if json_out else out.print(
        f"job {job_id}: "
        f"{'cancelled' if job.state == JobState.CANCELLED else 'cancel requested'}")


def _request_pause(job_id: int, paused: bool, json_out: bool) -> None:
    from core.jobs.ledger import request_pause
    from core.jobs.reaper import reap_lost_jobs

    with session() as s:
        reap_lost_jobs(session=s, by="cli")
        job = request_pause(job_id, paused, session=s)
    word = "pause" if paused else "resume"
    emit_json({"job_id": job.id, "pause_requested": paused}) if json_out else out.print(
        f"job {job_id}: {word} requested")


@commands.command()
@guarded
def pause(job_id: int, json_out: JsonOpt = False) -> None:
    """Pause a running job: no new trials start until it is resumed."""
    _request_pause(job_id, True, json_out)


@commands.command()
@guarded
def resume(job_id: int, json_out: JsonOpt = False) -> None:
    """Resume a paused job: the same search continues."""
    _request_pause(job_id, False, json_out)


@commands.command()
@guarded
def logs(job_id: int) -> None:
    """Print a job's captured log and its state transitions."""
    from core.jobs.ledger import get_job
    from core.jobs.views import read_job_detail

    with session() as s:
        detail = read_job_detail(job_id, session=s, by="cli")
        text = get_job(job_id, session=s).log
    for t in detail.transitions:
        out.print(f"{t.at:%Y-%m-%d %H:%M:%S} {t.from_state or '-'} → {t.to_state} {t.reason}",
                  highlight=False)
    if text:
        out.print(text, highlight=False)


@commands.command()
@guarded
def retrain(name: str, json_out: JsonOpt = False) -> None:
    """Queue a retrain of NAME with its last settings on its latest data (promotion-gated)."""
    from app.workers import ensure_local_worker
    from core.usecases.retraining import retrain as queue_retrain

    with session() as s:
        job = queue_retrain(name, session=s, trigger=Trigger.API)
    ensure_local_worker(database())
    emit_json({"job_id": job.id, "state": job.state}) if json_out else out.print(job.id)


@commands.command()
@guarded
def jobs(json_out: JsonOpt = False) -> None:
    """List training jobs with their state and progress."""
    from core.jobs.views import read_jobs

    with session() as s:
        rows = [j.model_dump(mode="json") for j in read_jobs(session=s, by="cli")]
    if json_out:
        emit_json(rows)
    else:
        out.print(table("Jobs", rows, ["id", "state", "kind", "trigger", "model", "target",
                                       "trials", "best", "cpu_seconds", "created_at",
                                       "error"]))


@schedule_app.command("add")
@guarded
def schedule_add(
    name: str,
    when: Annotated[str, typer.Argument(help="HH:MM daily (UTC) or a cron expression.")],
    budget: Annotated[float | None, typer.Option()] = None,
    auto_canary: Annotated[bool, typer.Option(help="Canary a version that passes the gate.")]
    = False,
    min_gain: Annotated[float, typer.Option(help="Absolute margin over production.")] = 0.0,
    min_gain_rel: Annotated[float, typer.Option(help="Relative margin over production.")] = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Retrain NAME on its latest data on a schedule."""
    from core.jobs.public import SchedulePublic
    from core.jobs.schedules import create_schedule

    with session() as s:
        sched = create_schedule(name, when, session=s,
                                settings={"budget": budget} if budget else {},
                                auto_canary=auto_canary, gate_min_abs=min_gain,
                                gate_min_rel=min_gain_rel)
    emit_json(SchedulePublic.of(sched).model_dump(mode="json")) if json_out else out.print(
        f"schedule {sched.id}: {name} at '{sched.cron}' (UTC), next {sched.next_run_at}")


@schedule_app.command("list")
@guarded
def schedule_list(json_out: JsonOpt = False) -> None:
    from core.jobs.public import SchedulePublic
    from core.jobs.schedules import list_schedules

    with session() as s:
        rows = [SchedulePublic.of(x).model_dump(mode="json")
                for x in list_schedules(session=s)]
    emit_json(rows) if json_out else out.print(table("Schedules", rows, [
        "id", "model", "cron", "paused", "auto_canary", "next_run_at", "last_run_at"]))


@schedule_app.command("pause")
@guarded
def schedule_pause(schedule_id: int) -> None:
    from core.jobs.schedules import set_paused

    with session() as s:
        set_paused(schedule_id, True, session=s)
    out.print(f"schedule {schedule_id} paused")


@schedule_app.command("resume")
@guarded
def schedule_resume(schedule_id: int) -> None:
    from core.jobs.schedules import set_paused

    with session() as s:
        set_paused(schedule_id, False, session=s)
    out.print(f"schedule {schedule_id} resumed")


@schedule_app.command("delete")
@guarded
def schedule_delete(schedule_id: int) -> None:
    from core.jobs.schedules import delete_schedule

    with session() as s:
        delete_schedule(schedule_id, session=s)
    out.print(f"schedule {schedule_id} deleted")


commands.add_typer(schedule_app, name="schedule")
