"""The `workbench` command line: a thin adapter over core.

Contract (ARCHITECTURE.md): exit 0 on success; on bad input a one-paragraph message on stderr
and exit 2, never a traceback; `--json` prints exactly one JSON document on stdout; progress
and logs go to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli_common import JsonOpt, database, emit_json, err, guarded, out, session
from app.cli_deploy import register as _register_deploy_commands
from app.ui_files import streamlit_entry_point
from core.errors import WorkbenchError
from core.jobs.views import job_doc, schedule_doc

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ML Workbench: AutoML, model registry and deployments for tabular data.")


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise WorkbenchError(f"--param {item!r} must look like NAME=VALUE, e.g. max_depth=6.")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def _run_training(data: Path, target: str, *, json_out: bool, **kwargs: Any) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from core.automl.runner import run_training

    budget = kwargs.get("budget", 60.0)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("preparing data", total=budget)
        started = time.monotonic()

        def progress(state: dict[str, Any]) -> None:
            best = state.get("best_score")
            best_txt = f"{best:.4f}" if isinstance(best, float) else "-"
            bar.update(task, completed=min(time.monotonic() - started, budget),
                       description=f"trials {state['trials_done']} · best {state['metric']} "
                                   f"{best_txt} · {state['last_estimator']}")
            if not err.is_terminal:
                err.print(f"trial {state['trials_done']}: {state['last_estimator']} "
                          f"(best {state['metric']} {best_txt})", highlight=False)

        outcome = run_training(data, target, progress=progress, **kwargs)
    board = outcome.result.leaderboard()
    metric = outcome.result.data.metric.name
    for warning in outcome.result.notes:
        err.print(f"[yellow]note:[/] {warning}", highlight=False)
    result = outcome.result
    if json_out:
        emit_json({
            "model": outcome.model, "version": outcome.version.version, "metric": metric,
            "score": outcome.result.best.score, "task": outcome.result.data.task,
            "task_reason": outcome.result.data.problem.reason, "job_id": outcome.job_id,
            "dataset_fingerprint": outcome.dataset.fingerprint,
            "elapsed_s": result.elapsed_s, "suggestions": result.suggestions,
            "evaluation": result.evaluation,
            "backtest": outcome.version.evaluation.get("backtest"),
            "leaderboard": board.astype(object).where(board.notna(), None).to_dict("records"),
        })
        return
    cols = ["rank", "estimator", f"{metric}_mean", f"{metric}_std", "fit_time_s",
            "predict_ms_per_1k", "status", "reason"]
    out.print(_table(f"Leaderboard ({outcome.result.data.task}: "
                     f"{outcome.result.data.problem.reason})",
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


@app.command()
@guarded
def automl(
    data: Annotated[Path, typer.Argument(help="A .csv or .parquet file.")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    task: Annotated[str, typer.Option(help="auto, classification or regression.")] = "auto",
    metric: Annotated[str | None, typer.Option(help="roc_auc, log_loss, accuracy, f1, rmse, "
                                               "mae or r2.")] = None,
    budget: Annotated[float, typer.Option(help="Search time in seconds.", min=1)] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed for a reproducible run.")] = 0,
    name: Annotated[str | None, typer.Option(help="Model name (default: file stem).")] = None,
    time_column: Annotated[str | None, typer.Option(help="Validate in time order.")] = None,
    estimators: Annotated[str | None, typer.Option(
        help="Comma-separated estimator keys to search (default: all).")] = None,
    search: Annotated[str, typer.Option(help="Search method: tpe, random or grid.")] = "tpe",
    ensemble: Annotated[bool, typer.Option(help="Try an ensemble of the best trials.")] = True,
    target_kind: Annotated[str, typer.Option(
        help="level (predict the column as is), or for price tables: direction, return, "
             "log_return of --target over --horizon periods.")] = "level",
    horizon: Annotated[int, typer.Option(help="Periods ahead for market targets.")] = 1,
    ticker_column: Annotated[str | None, typer.Option(help="Ticker column (market).")] = None,
    cost_bps: Annotated[float, typer.Option(help="Backtest cost per trade, bps.")] = 5.0,
    json_out: JsonOpt = False,
) -> None:
    """Search for the best pipeline, print the leaderboard and register the winner."""
    keys = [k.strip() for k in estimators.split(",") if k.strip()] if estimators else None
    market = None if target_kind == "level" else {
        "kind": target_kind, "horizon": horizon, "ticker_column": ticker_column,
        "cost_bps": cost_bps}
    _run_training(data, target, json_out=json_out, task=None if task == "auto" else task,
                  metric=metric, budget=budget, seed=seed, name=name, time_column=time_column,
                  estimators=keys, sampler=search, ensemble=ensemble, market=market)


@app.command()
@guarded
def train(
    data: Annotated[Path, typer.Argument(help="A .csv or .parquet file.")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    estimator: Annotated[str, typer.Option(help="Estimator key, e.g. hgb, xgboost, linear.")],
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable.")] = None,
    task: Annotated[str, typer.Option(help="auto, classification or regression.")] = "auto",
    metric: Annotated[str | None, typer.Option()] = None,
    seed: Annotated[int, typer.Option()] = 0,
    name: Annotated[str | None, typer.Option(help="Model name (default: file stem).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train one given configuration (no search), evaluate and register it."""
    from core.automl.catalog import get_spec

    get_spec(estimator)
    _run_training(data, target, json_out=json_out, task=None if task == "auto" else task,
                  metric=metric, seed=seed, name=name, estimators=[estimator],
                  params=_parse_params(param or []), budget=3600.0)


@app.command()
@guarded
def predict(
    model_ref: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict (.csv or .parquet).")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the predictions.")],
    json_out: JsonOpt = False,
) -> None:
    """Write predictions (and class probabilities) for every row of DATA."""
    from core.data.export import safe_csv_bytes
    from core.data.ingest import read_path
    from core.fsutil import atomic_write
    from core.predict import predict as run_predict
    from core.settings import get_settings

    frame = read_path(data, max_bytes=get_settings().max_upload_bytes, for_training=False).frame
    with session() as s:
        result = run_predict(model_ref, frame, session=s)
    atomic_write(out_path, safe_csv_bytes(result.frame))
    summary = {"model": result.model, "version": result.version.version,
               "rows": len(result.frame), "out": str(out_path)}
    if json_out:
        emit_json(summary)
    else:
        out.print(f"Wrote {len(result.frame)} predictions of {result.model}:"
                  f"{result.version.version} to {out_path}")


@app.command()
@guarded
def drift(
    model_ref: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    data: Annotated[Path, typer.Argument(help="A batch to compare with the training data.")],
    alert: Annotated[bool, typer.Option(help="Feed the result into DRIFT alerts.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Per-feature drift of a batch against a version's training data (test, effect, flag)."""
    from core.data.ingest import read_path
    from core.monitor.offline import drift_report
    from core.settings import get_settings

    frame = read_path(data, max_bytes=get_settings().max_upload_bytes, for_training=False).frame
    with session() as s:
        report = drift_report(model_ref, frame, session=s)
        if alert:
            from core.usecases.alert_actions import raise_drift_alerts

            report.alerts_opened = [a.id for a in raise_drift_alerts(report, session=s)]
    if json_out:  # `alerts_opened` only when alerts were asked for, as before
        emit_json(report.model_dump(mode="json", exclude_unset=True))
        return
    out.print(_table(f"Drift of {data.name} against {report.model}:{report.version} "
                     f"({len(report.drifted)} of {report.features} features drifted)",
                     [r.model_dump() for r in report.results],
                     ["feature", "test", "statistic", "p_value", "effect_size", "psi",
                      "threshold", "drifted", "n", "note"]))


@app.command()
@guarded
def monitor(
    name: str,
    window: Annotated[str, typer.Option(help="5m, 1h, 24h or 7d.")] = "1h",
    json_out: JsonOpt = False,
) -> None:
    """Live traffic, latency, errors and accuracy from feedback, per version."""
    from core.monitor.live import monitor_report

    with session() as s:
        live = monitor_report(name, window, session=s)
    if json_out:
        emit_json(live.model_dump(mode="json"))
        return
    rows = [{"version": v, **d.model_dump(), **live.accuracy.get(v, {})}
            for v, d in live.versions.items()]
    out.print(_table(f"{name}, last {window}", rows, [
        "version", "requests", "ok", "failed", "rejected", "rate_per_s", "error_rate",
        "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "n", "accuracy", "f1", "rmse",
        "mae"]))


@app.command()
@guarded
def alerts(model: Annotated[str | None, typer.Option()] = None,
           json_out: JsonOpt = False) -> None:
    """Open and acknowledged alerts."""
    from core.monitor.alerts import list_alerts

    with session() as s:
        rows = [a.model_dump(mode="json") for a in list_alerts(model, session=s)]
    emit_json(rows) if json_out else out.print(_table("Alerts", rows, [
        "id", "model", "version", "kind", "feature", "severity", "state", "message", "action",
        "opened_at"]))


@app.command()
@guarded
def ack(alert_id: int, json_out: JsonOpt = False) -> None:
    """Acknowledge an alert: it stays quiet until its condition clears and recurs."""
    from core.usecases.alert_actions import acknowledge

    with session() as s:
        a = acknowledge(alert_id, session=s)
    emit_json(a.model_dump(mode="json")) if json_out else \
        out.print(f"alert {alert_id} acknowledged")


@app.command()
@guarded
def models(json_out: JsonOpt = False) -> None:
    """List registered models with their latest version and aliases."""
    from core.registry import list_models

    with session() as s:
        rows = [m.model_dump(mode="json") for m in list_models(session=s)]
    if json_out:
        emit_json(rows)
    elif not rows:
        out.print("No models yet. Train one: workbench automl data/breast_cancer.csv "
                  "--target diagnosis")
    else:
        out.print(_table("Models", rows, ["name", "versions", "latest_version", "task",
                                          "metric", "latest_score", "aliases"]))


@app.command()
@guarded
def versions(name: str, json_out: JsonOpt = False) -> None:
    """List the versions of a model with aliases, metrics and fingerprints."""
    from core.registry import list_versions

    with session() as s:
        rows = [v.model_dump(mode="json") for v in list_versions(name, session=s)]
    if json_out:
        emit_json(rows)
    else:
        for row in rows:
            row["fingerprint"] = row["fingerprint"][:12]
        out.print(_table(f"Versions of {name}", rows, [
            "version", "aliases", "estimator", "metric", "score", "dataset_id", "job_id",
            "parent_version", "fingerprint", "created_at"]))


@app.command()
@guarded
def alias(
    name: str, version: int, alias_name: Annotated[str, typer.Argument(metavar="ALIAS")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Point ALIAS (e.g. production, staging) of model NAME at VERSION."""
    from core.usecases.aliases import set_alias

    with session() as s:
        event = set_alias(name, version, alias_name, session=s, reason=reason)
    doc = {"model": name, "alias": alias_name, "version": version,
           "previous_version": event.from_version}
    if json_out:
        emit_json(doc)
    else:
        moved = f" (was {event.from_version})" if event.from_version else ""
        out.print(f"{name}@{alias_name} → version {version}{moved}")


@app.command()
@guarded
def history(name: str, json_out: JsonOpt = False) -> None:
    """Every alias move of a model: who, when, from which version to which, and why."""
    from core.registry import alias_history

    with session() as s:
        rows = [e.model_dump(mode="json") for e in alias_history(name, session=s)]
    if json_out:
        emit_json(rows)
    else:
        out.print(_table(f"Alias history of {name}", rows,
                         ["at", "alias", "from_version", "to_version", "actor", "reason"]))


@app.command("import")
@guarded
def import_(
    name: str,
    path: Annotated[Path, typer.Argument(help="A skops file or an MLflow sklearn model dir.")],
    accept_library_mismatch: Annotated[bool, typer.Option(
        "--accept-library-mismatch",
        help="Import a file saved by another scikit-learn version (predictions may differ).",
    )] = False,
    json_out: JsonOpt = False,
) -> None:
    """Register an existing scikit-learn pipeline (skops file or MLflow directory) as the
    next version of NAME. Pickle-based models are refused: they could run any code; so are
    files holding functions, partials, operators or methods (each is named)."""
    from core.registry.importer import import_model

    with session() as s:
        mv = import_model(name, path, session=s, accept_library_mismatch=accept_library_mismatch)
    doc = {"model": name, "version": mv.version, "task": mv.task, "fingerprint": mv.fingerprint}
    emit_json(doc) if json_out else out.print(f"Registered {name}:{mv.version} ({mv.task}) "
                                              f"from {path}")


@app.command()
@guarded
def accept(
    name: str,
    version: int,
    reason: Annotated[str, typer.Option(help="Why the difference is acceptable.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Let NAME:VERSION load although another scikit-learn version saved it (on this
    scikit-learn only; recorded in the audit log)."""
    from core.registry import accept_library_mismatch, library_mismatch

    with session() as s:
        mv = accept_library_mismatch(name, version, session=s, reason=reason)
    diff = library_mismatch(mv)
    if json_out:
        emit_json({"model": name, "version": version, "accepted_on": mv.accepted_sklearn,
                   "library_mismatch": diff.model_dump(mode="json") if diff else None})
        return
    saved = f" (saved with scikit-learn {diff.saved})" if diff else ""
    out.print(f"{name}:{version}{saved} may now load on scikit-learn {mv.accepted_sklearn}.")


@app.command()
@guarded
def datasets(json_out: JsonOpt = False) -> None:
    """List stored datasets."""
    from core.data.datasets import list_datasets_public

    with session() as s:
        rows = [d.model_dump(mode="json") for d in list_datasets_public(session=s)]
    if json_out:
        emit_json(rows)
    else:
        for row in rows:
            row["fingerprint"] = row["fingerprint"][:12]
        out.print(_table("Datasets", rows, ["id", "name", "rows", "columns", "fingerprint",
                                            "created_at"]))


@app.command()
@guarded
def submit(
    data: Annotated[str, typer.Argument(help="A .csv/.parquet file or a stored dataset id.")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    task: Annotated[str, typer.Option(help="auto, classification or regression.")] = "auto",
    metric: Annotated[str | None, typer.Option()] = None,
    budget: Annotated[float, typer.Option(help="Search time in seconds.", min=1)] = 60.0,
    seed: Annotated[int, typer.Option()] = 0,
    name: Annotated[str | None, typer.Option(help="Model name.")] = None,
    time_column: Annotated[str | None, typer.Option()] = None,
    json_out: JsonOpt = False,
) -> None:
    """Queue a training job for a worker and print its id (starts a local worker if none)."""
    from core.automl.runner import submit as submit_job
    from core.jobs.worker import ensure_local_worker

    job = submit_job(data, target, task=None if task == "auto" else task, metric=metric,
                     budget=budget, seed=seed, name=name, time_column=time_column)
    started = ensure_local_worker()
    if json_out:
        emit_json({"job_id": job.id, "state": job.state, "worker_started": bool(started)})
    else:
        out.print(job.id)


def _monitor_only(exit_with_parent: bool) -> None:
    """Alert checks every 30 s, and reaping of lost jobs, until SIGTERM/Ctrl-C (or, for
    `workbench serve`'s child, until the parent is gone: a server killed outright cannot stop
    us)."""
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
    threading.Thread(target=run_reaper, args=(stop,), daemon=True, name="reaper").start()
    if exit_with_parent:
        parent = os.getppid()

        def watch() -> None:
            while not stop.wait(1.0):
                if os.getppid() != parent:
                    stop.set()

        threading.Thread(target=watch, daemon=True).start()
    run_monitor(stop, database())


@app.command()
@guarded
def worker(
    max_jobs: Annotated[int | None, typer.Option(help="Exit after this many jobs.")] = None,
    idle_exit: Annotated[float | None, typer.Option(help="Exit after idling this long (s).")]
    = None,
    monitor_only: Annotated[bool, typer.Option(
        "--monitor-only", help="Run only the alert checks and telemetry compaction, every "
        "30 s; claim no jobs (what `workbench serve` starts beside the server).")] = False,
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run a job worker in this process (claims queued jobs). SIGTERM or Ctrl-C stops it: a
    running job ends CANCELLED at its next check and registers nothing."""
    import logging

    from core.jobs.worker import JobWorker

    if monitor_only:
        return _monitor_only(exit_with_parent)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    w = JobWorker()  # its run() turns SIGTERM/SIGINT into a clean stop of the running job
    err.print(f"worker {w.id} started")
    done = w.run(max_jobs=max_jobs, idle_exit_s=idle_exit)
    err.print(f"worker {w.id} stopped after {done} job(s)")


@app.command()
@guarded
def cancel(job_id: int, json_out: JsonOpt = False) -> None:
    """Cancel a job: queued ones at once, running ones between trials (trials are kept)."""
    from core.jobs.ledger import request_cancel
    from core.jobs.reaper import reap_lost_jobs

    reap_lost_jobs(by="cli")  # a lost job is FAILED already, not waiting for a dead worker
    job = request_cancel(job_id)
    doc = {"job_id": job.id, "state": job.state, "cancel_requested": job.cancel_requested}
    emit_json(doc) if json_out else out.print(
        f"job {job_id}: {'cancelled' if job.state == 'CANCELLED' else 'cancel requested'}")


def _request_pause(job_id: int, paused: bool, json_out: bool) -> None:
    from core.jobs.ledger import request_pause
    from core.jobs.reaper import reap_lost_jobs

    reap_lost_jobs(by="cli")
    job = request_pause(job_id, paused)
    word = "pause" if paused else "resume"
    emit_json({"job_id": job.id, "pause_requested": paused}) if json_out else out.print(
        f"job {job_id}: {word} requested")


@app.command()
@guarded
def pause(job_id: int, json_out: JsonOpt = False) -> None:
    """Pause a running job: no new trials start until it is resumed."""
    _request_pause(job_id, True, json_out)


@app.command()
@guarded
def resume(job_id: int, json_out: JsonOpt = False) -> None:
    """Resume a paused job: the same search continues."""
    _request_pause(job_id, False, json_out)


@app.command()
@guarded
def logs(job_id: int) -> None:
    """Print a job's captured log and its state transitions."""
    from core.jobs.ledger import transitions_of
    from core.jobs.views import read_job

    job = read_job(job_id, by="cli")
    for t in transitions_of(job_id):
        out.print(f"{t.at:%Y-%m-%d %H:%M:%S} {t.from_state or '-'} → {t.to_state} {t.reason}",
                  highlight=False)
    if job.log:
        out.print(job.log, highlight=False)


@app.command()
@guarded
def retrain(name: str, json_out: JsonOpt = False) -> None:
    """Queue a retrain of NAME with its last settings on its latest data (promotion-gated)."""
    from core.jobs.schedules import retrain as queue_retrain
    from core.jobs.worker import ensure_local_worker

    job = queue_retrain(name, trigger="api")
    ensure_local_worker()
    emit_json({"job_id": job.id, "state": job.state}) if json_out else out.print(job.id)


schedule_app = typer.Typer(help="Recurring retraining (cron or daily HH:MM, UTC).",
                           no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


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
    from core.jobs.schedules import create_schedule

    sched = create_schedule(name, when, settings={"budget": budget} if budget else {},
                            auto_canary=auto_canary, gate_min_abs=min_gain,
                            gate_min_rel=min_gain_rel)
    emit_json(schedule_doc(sched)) if json_out else out.print(
        f"schedule {sched.id}: {name} at '{sched.cron}' (UTC), next {sched.next_run_at}")


@schedule_app.command("list")
@guarded
def schedule_list(json_out: JsonOpt = False) -> None:
    from core.jobs.schedules import list_schedules

    rows = [schedule_doc(s) for s in list_schedules()]
    emit_json(rows) if json_out else out.print(_table("Schedules", rows, [
        "id", "model", "cron", "paused", "auto_canary", "next_run_at", "last_run_at"]))


@schedule_app.command("pause")
@guarded
def schedule_pause(schedule_id: int) -> None:
    from core.jobs.schedules import set_paused

    set_paused(schedule_id, True)
    out.print(f"schedule {schedule_id} paused")


@schedule_app.command("resume")
@guarded
def schedule_resume(schedule_id: int) -> None:
    from core.jobs.schedules import set_paused

    set_paused(schedule_id, False)
    out.print(f"schedule {schedule_id} resumed")


@schedule_app.command("delete")
@guarded
def schedule_delete(schedule_id: int) -> None:
    from core.jobs.schedules import delete_schedule

    delete_schedule(schedule_id)
    out.print(f"schedule {schedule_id} deleted")


@app.command()
@guarded
def jobs(json_out: JsonOpt = False) -> None:
    """List training jobs with their state and progress."""
    from core.jobs.views import read_jobs

    rows = [job_doc(j) for j in read_jobs(by="cli")]
    if json_out:
        emit_json(rows)
    else:
        out.print(_table("Jobs", rows, ["id", "state", "kind", "trigger", "model", "target",
                                        "trials", "best", "cpu_seconds", "created_at",
                                        "error"]))


@app.command()
@guarded
def seed(json_out: JsonOpt = False) -> None:
    """Store the sample datasets from data/ (idempotent: the same content is stored once)."""
    from core.data.datasets import ingest_path
    from core.samples import sample_files

    rows = []
    with session() as s:
        for path in sample_files():
            stored = ingest_path(path, session=s)
            rows.append({"dataset": stored.dataset.name, "id": stored.dataset.id,
                         "new": stored.created})
    if json_out:
        emit_json(rows)
    else:
        for row in rows:
            state = "stored" if row["new"] else "already stored"
            err.print(f"sample {row['dataset']}: {state} (dataset {row['id']})")


def ui_command(host: str, port: int) -> list[str]:
    """The Streamlit command `workbench ui` runs (the bind address always explicit)."""
    return [sys.executable, "-m", "streamlit", "run", str(streamlit_entry_point()),
            f"--server.address={host}", f"--server.port={port}", "--server.headless=true",
            "--browser.gatherUsageStats=false"]


@app.command()
@guarded
def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (a directory with "
                                              "--with-artifacts).")],
    force: Annotated[bool, typer.Option(help="Replace PATH if it exists.")] = False,
    with_artifacts: Annotated[bool, typer.Option(
        help="Write a directory laid out like WORKBENCH_HOME: workbench.db + artifacts/.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Copy the registry while servers and workers keep running (SQLite online backup);
    for PostgreSQL, say how to use pg_dump. Restoring: docs/trust/storage.md."""
    from dataclasses import asdict

    from core.settings import get_settings
    from core.store.backup import backup as run_backup

    result = run_backup(path, settings=get_settings(), force=force,
                        with_artifacts=with_artifacts)
    if json_out:
        emit_json({k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()})
        return
    files = "" if result.artifacts is None else f" and {result.artifacts} artifact file(s)"
    out.print(f"Backed up {result.models} model(s), {result.versions} version(s) and "
              f"{result.datasets} dataset(s){files} to {result.path}", highlight=False)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command()
@guarded
def ui(
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8501,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen on a non-loopback interface although the UI has no login "
        "(anyone who can reach it can deploy and train).")] = False,
) -> None:
    """Start the Streamlit workbench on 127.0.0.1 (another interface needs --insecure: the
    UI has no login yet)."""
    from app.bind_guard import check_bind, insecure_warning
    from core.settings import get_settings

    home = get_settings().home  # a bad setting stops here with its message, not in every page
    if check_bind(host, command="workbench ui", authentication=None, insecure=insecure):
        err.print(insecure_warning(host, port), style="bold red", highlight=False)
    # The home as an absolute path: a job worker the app starts runs in another directory
    # (the package's), where the default ./.workbench would be another, empty store.
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    raise typer.Exit(subprocess.call(ui_command(host, port), env=env))


_register_deploy_commands(app)  # serve, deploy, promote, rollback


def main() -> None:
    app()

