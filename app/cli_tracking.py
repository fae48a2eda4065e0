"""`workbench runs` and `workbench run`: experiment tracking from the command line (the same
listing, filters and documents as GET /v1/runs and GET /v1/runs/{id})."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, session, table

commands = typer.Typer()


@commands.command()
@guarded
def runs(
    experiment: Annotated[list[str] | None, typer.Option(
        "--experiment", "-e", help="Only this experiment (a model's name); repeatable.")] = None,
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="RUNNING, FINISHED, FAILED or KILLED; repeatable.")] = None,
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", "-f", help="KIND.KEY OP VALUE, e.g. 'metrics.roc_auc>0.8' or "
                               "'params.max_depth=3'; repeatable, all must hold.")] = None,
    sort: Annotated[str, typer.Option(help="start_time, name, metrics.KEY, params.KEY, …; "
                                           "'-' in front for descending.")] = "-start_time",
    limit: Annotated[int, typer.Option(help="Runs per page (1–1000).")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many runs (the next page).")] = 0,
    trials: Annotated[bool, typer.Option(
        "--trials/--no-trials", help="Include the child runs of searches (their trials).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List runs across experiments, newest first: training jobs, their trials (--trials) and
    runs logged from Python or REST."""
    from core.tracking import list_runs

    with session() as s:
        page = list_runs(session=s, experiment=experiment, status=status, filters=filters or (),
                         sort=sort, limit=limit, offset=offset, top_level=not trials)
    if json_out:
        emit_json(page.model_dump(mode="json"))
        return
    rows = [{**r.model_dump(mode="json"), "metrics": {k: round(v, 4) for k, v in
                                                      r.metrics.items()}}
            for r in page.runs]
    more = f", next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    out.print(table(f"Runs ({len(page.runs)} of {page.total}{more})", rows,
                    ["id", "experiment", "name", "status", "start_time", "duration_s",
                     "version_id", "metrics"]))


@commands.command()
@guarded
def run(run_id: Annotated[int, typer.Argument(help="The run's id (see `workbench runs`).")],
        json_out: JsonOpt = False) -> None:
    """Show one run: status, lineage, params, latest metrics, tags, child runs and artifacts."""
    from core.tracking import get_run, list_artifacts

    with session() as s:
        detail = get_run(run_id, session=s)
        files = list_artifacts(run_id, session=s)
    if json_out:
        emit_json({**detail.model_dump(mode="json"),
                   "artifacts": [f.model_dump(mode="json") for f in files]})
        return
    lineage = ", ".join(f"{k} {v}" for k, v in [("dataset", detail.dataset_id),
                                                 ("job", detail.job_id),
                                                 ("version", detail.version_id),
                                                 ("parent run", detail.parent_run_id)] if v)
    out.print(f"Run {detail.id} · {detail.name} · {detail.experiment} · {detail.status}"
              f"{' · ' + lineage if lineage else ''}", highlight=False)
    for title, values in (("Params", detail.params), ("Metrics (latest)", detail.metrics),
                          ("Tags", detail.tags)):
        if values:
            out.print(table(title, [{"key": k, "value": v} for k, v in values.items()],
                            ["key", "value"]))
    if detail.child_run_ids:
        out.print(f"Child runs: {len(detail.child_run_ids)} (workbench runs --trials)")
    if files:
        out.print(table("Artifacts", [f.model_dump() for f in files], ["path", "size_bytes"]))
