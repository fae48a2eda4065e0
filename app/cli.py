"""The `workbench` command line: a thin adapter over core.

Contract (ARCHITECTURE.md): exit 0 on success; on bad input a one-paragraph message on stderr
and exit 2, never a traceback; `--json` prints exactly one JSON document on stdout; progress
and logs go to stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli_artifacts import commands as _artifact_commands
from app.cli_audit import commands as _audit_commands
from app.cli_common import JsonOpt, emit_json, err, guarded, out, session
from app.cli_common import table as _table
from app.cli_deploy import register as _register_deploy_commands
from app.cli_identity import register as _register_identity_commands
from app.cli_jobs import commands as _job_commands
from app.cli_onnx import commands as _onnx_commands
from app.cli_registry import register as _register_registry_commands
from app.cli_scorecard import commands as _scorecard_commands
from app.cli_tracking import commands as _tracking_commands
from app.cli_workspaces import commands as _workspace_commands
from app.cli_workspaces import workspace_option as _workspace_option
from app.ui_files import streamlit_entry_point

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ML Workbench: AutoML, model registry and deployments for tabular data.")
app.add_typer(_job_commands)  # automl, train, submit, worker, jobs, cancel, …, schedule
app.add_typer(_scorecard_commands)  # scorecard
app.add_typer(_tracking_commands)  # runs, run
app.add_typer(_workspace_commands, name="workspaces")  # workspaces list|add
app.callback()(_workspace_option)  # the global --workspace / WORKBENCH_WORKSPACE
app.add_typer(_audit_commands)  # audit
_register_identity_commands(app)  # users, keys
app.add_typer(_artifact_commands)  # keygen, rotate-key, artifacts
app.add_typer(_onnx_commands)  # export --format onnx


@app.command()
@guarded
def predict(
    model_ref: Annotated[str, typer.Argument(
        help="NAME, NAME@ALIAS, NAME:VERSION or NAME@v1.2.0.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict (.csv or .parquet).")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the predictions.")],
    json_out: JsonOpt = False,
    coverage: Annotated[float | None, typer.Option(
        help="Regression: coverage of the lower/upper interval columns, one of the levels "
             "the version stores (default its own, 0.9).", min=0.01, max=0.999)] = None,
) -> None:
    """Write predictions (and class probabilities, or a regression's lower/upper prediction
    interval) for every row of DATA."""
    from core.data.export import safe_csv_bytes
    from core.data.ingest import read_path
    from core.fsutil import atomic_write
    from core.predict import predict as run_predict
    from core.settings import get_settings

    frame = read_path(data, max_bytes=get_settings().max_upload_bytes, for_training=False).frame
    with session() as s:
        result = run_predict(model_ref, frame, session=s, coverage=coverage)
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
    model_ref: Annotated[str, typer.Argument(
        help="NAME, NAME@ALIAS, NAME:VERSION or NAME@v1.2.0.")],
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
            "version", "semver", "stage", "aliases", "estimator", "metric", "score",
            "dataset_id", "job_id", "parent_version", "fingerprint", "created_at"]))


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
    path: Annotated[Path, typer.Argument(
        help="A skops file, an MLflow sklearn model dir, or an .onnx file (with --schema).")],
    schema: Annotated[Path | None, typer.Option(
        help="ONNX only: JSON with the columns and kinds, task and classes.")] = None,
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
        mv = import_model(name, path, session=s, accept_library_mismatch=accept_library_mismatch,
                          schema=schema)
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


datasets_app = typer.Typer(help="Stored datasets: list them (the default) or delete one.")
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback(invoke_without_command=True)
@guarded
def datasets(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List stored datasets."""
    from core.data.datasets import list_datasets_public

    if ctx.invoked_subcommand is not None:
        return
    with session() as s:
        rows = [d.model_dump(mode="json") for d in list_datasets_public(session=s)]
    if json_out:
        emit_json(rows)
    else:
        for row in rows:
            row["fingerprint"] = row["fingerprint"][:12]
        out.print(_table("Datasets", rows, ["id", "name", "rows", "columns", "fingerprint",
                                            "created_at"]))


@datasets_app.command("delete")
@guarded
def datasets_delete(
    dataset: Annotated[str, typer.Argument(help="The dataset's id, name or fingerprint.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Delete a stored dataset and its file. Refused while a model version or a job was
    trained on it (their lineage would be lost)."""
    from core.data.datasets import delete_dataset, get_dataset

    with session() as s:
        ds = get_dataset(dataset, session=s)
    if not yes and not typer.confirm(f"Delete dataset {ds.id} ({ds.name}, {ds.n_rows} rows)? "
                                     "This cannot be undone.", err=True):
        raise typer.Exit(1)
    with session() as s:
        gone = delete_dataset(ds.id, session=s, actor="cli", reason=reason)
    if json_out:
        emit_json({"deleted": gone.id, "name": gone.name})
    else:
        out.print(f"dataset {gone.id} ({gone.name}) deleted")


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
        "--insecure", help="Listen on a non-loopback interface although no user signs in "
        "(anyone who can reach it can deploy and train).")] = False,
) -> None:
    """Start the Streamlit workbench on 127.0.0.1 (another interface needs users to sign in,
    `workbench users add`, or --insecure)."""
    from app.bind_guard import check_bind, configured_authentication, insecure_warning
    from app.cli_common import database
    from core.settings import get_settings

    settings = get_settings()
    home = settings.home  # a bad setting stops here with its message, not in every page
    # the app's sign-in form protects it once users exist (WORKBENCH_API_TOKEN does not: it
    # is the API's)
    signin = configured_authentication(settings.model_copy(update={"workbench_api_token": None}),
                                       database())
    if check_bind(host, command="workbench ui", authentication=signin, insecure=insecure):
        err.print(insecure_warning(host, port), style="bold red", highlight=False)
    # The home as an absolute path: a job worker the app starts runs in another directory
    # (the package's), where the default ./.workbench would be another, empty store.
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    raise typer.Exit(subprocess.call(ui_command(host, port), env=env))


_register_deploy_commands(app)  # serve, deploy, promote, rollback
_register_registry_commands(app)  # stage


def main() -> None:
    app()

