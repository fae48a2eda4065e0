"""`workbench serve | deploy | promote | rollback`: registered onto the main CLI by
`app.cli` (`from app.cli_deploy import register; register(app)`). Same contract as app/cli.py:
exit 2 with a one-paragraph message on bad input, `--json` prints one JSON document."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_common import JsonOpt, database, emit_json, err, guarded, out, session
from core.deploy.enums import DeploymentMode
from core.deploy.rails import DEFAULT_GUARD_RAILS, DEFAULT_STEPS
from core.errors import WorkbenchError

if TYPE_CHECKING:  # core.deploy.deployments pulls in the registry: loaded when a command runs
    from core.deploy.public import DeploymentState

# prometheus_client's multiprocess mode (core/deploy/metrics.py): set before the workers start
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

ReasonOpt = Annotated[str, typer.Option(help="Why (kept in the deployment history).")]
STEPS = " → ".join(f"{p:g}" for p in DEFAULT_STEPS)


def _say(st: DeploymentState) -> None:
    if st.candidate is None:
        out.print(f"{st.name}: 100 % → version {st.stable} (stable)")
    elif st.mode == DeploymentMode.SHADOW:
        out.print(f"{st.name}: 100 % → version {st.stable} (stable); version {st.candidate} "
                  f"scores {st.percent:g} % of requests in shadow")
    else:
        out.print(f"{st.name}: {100 - st.percent:g} % → version {st.stable} (stable), "
                  f"{st.percent:g} % → version {st.candidate} (candidate)")


def _report(st: DeploymentState, json_out: bool) -> None:
    if json_out:
        emit_json(st.model_dump(mode="json"))
    else:
        _say(st)


def _exit_quietly(*_: object) -> None:
    raise SystemExit(0)  # a server stopped on request; `finally` blocks still run


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _forget_worker(metrics_dir: Path | None) -> Callable[[int], None]:
    """What the supervisor does when a worker is gone: its live gauges leave the scrape
    (its counts stay, summed as before)."""
    def forget(pid: int) -> None:
        if metrics_dir is not None:
            from core.deploy.metrics import mark_process_dead

            mark_process_dead(pid, str(metrics_dir))
    return forget


def fresh_metrics_dir(home: Path) -> Path:
    """A new, empty directory for this server's per-worker metric files, under
    HOME/serve-metrics/ and named after this process; the directories of servers that are
    gone (killed before they could clean up) are removed first, so no old count is summed."""
    parent = home / "serve-metrics"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        owner = old.name.split("-", 1)[0]
        if not owner.isdigit() or not _pid_alive(int(owner)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8001,
        workers: Annotated[int, typer.Option(help="Server worker processes.", min=1,
                                             max=64)] = 1,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
        monitor: Annotated[bool, typer.Option(
            help="Also run the alert checks and telemetry compaction (a separate process, "
            "stopped with the server).")] = True,
        insecure: Annotated[bool, typer.Option(
            "--insecure", help="Listen on a non-loopback interface without WORKBENCH_API_TOKEN "
            "(anyone who can reach it can deploy).")] = False,
    ) -> None:
        """Start the REST API (OpenAPI docs at /docs). Workers share deployment state through
        the database. Listens on 127.0.0.1 unless told otherwise; another interface needs
        WORKBENCH_API_TOKEN or --insecure."""
        import signal
        import subprocess
        import sys

        import uvicorn

        from app.bind_guard import (
            check_bind,
            configured_authentication,
            insecure_warning,
            is_loopback,
        )
        from app.http_protocol import CoalescingHttpToolsProtocol
        from app.serve_workers import Supervisor, reuse_port_works
        from core.settings import get_settings, reset_settings

        token = None if is_loopback(host) else configured_authentication(get_settings(),
                                                                          database())
        if check_bind(host, command="workbench serve", authentication=token, insecure=insecure):
            err.print(insecure_warning(host, port), style="bold red", highlight=False)
        os.environ["WORKBENCH_BIND_HOST"] = host  # the workers' Host allow-list starts from it
        if workers > 1:  # the workers share the cores: none takes a second one for a walk
            os.environ.setdefault("WORKBENCH_WALK_THREADS", "1")
        reset_settings()
        # built and migrated once before the workers start (or exit 1); they open their own
        database().engine.dispose()
        monitor_proc = subprocess.Popen(  # its own process: it must not hold the server's GIL
            [sys.executable, "-m", "app", "worker", "--monitor-only",
             "--parent-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL) if monitor else None
        # Several workers (started after the monitor, which counts nothing): each counts in
        # its own files there, and a scrape sums them all. One worker runs in this process
        # and counts in memory (correct, and cheaper).
        metrics_dir = fresh_metrics_dir(get_settings().home) if workers > 1 else None
        if metrics_dir is not None:
            os.environ[MULTIPROC_ENV] = str(metrics_dir)
        err.print(f"serving on http://{host}:{port} (docs: /docs, workers: {workers}"
                  f"{', alerts checked every 30 s' if monitor else ''})")
        # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default
        # action that would end this process before `finally` stops the monitor.
        signal.signal(signal.SIGTERM, _exit_quietly)
        code = 0
        try:
            if workers > 1 and reuse_port_works():  # a socket per worker (app/serve_workers.py)
                code = Supervisor(host, port, workers, log_level,
                                  on_worker_exit=_forget_worker(metrics_dir)).run()
            else:
                uvicorn.run("app.api:app_factory", factory=True, host=host, port=port,
                            workers=workers, log_level=log_level, access_log=False,
                            http=CoalescingHttpToolsProtocol)
        finally:
            if monitor_proc is not None:
                monitor_proc.terminate()
                try:
                    monitor_proc.wait(timeout=10)
                except subprocess.TimeoutExpired:  # mid-pass: its transaction rolls back
                    monitor_proc.kill()
                    monitor_proc.wait()  # reaped here, never left a zombie
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
        if code:
            raise typer.Exit(code)

    @app.command()
    @guarded
    def deploy(
        name: str,
        version: int,
        percent: Annotated[float, typer.Option(help="Candidate share of traffic, 0-100.")]
        = 10.0,
        shadow: Annotated[bool, typer.Option("--shadow", help="Score a copy of the traffic; "
                                             "stable keeps answering.")] = False,
        auto_advance: Annotated[bool, typer.Option(
            "--auto-advance", help=f"Step {STEPS} → promote while the guard rails "
            "hold.")] = False,
        max_error_rate: Annotated[float | None, typer.Option(
            help="Guard rail: roll back when the candidate's error rate exceeds this fraction "
            f"(default {DEFAULT_GUARD_RAILS.max_error_rate:g}).")] = None,
        max_p99_ms: Annotated[float | None, typer.Option(
            help="Guard rail: roll back when the candidate's p99 latency exceeds this many ms "
            f"(default {DEFAULT_GUARD_RAILS.max_p99_ms:g}).")] = None,
        min_requests: Annotated[float | None, typer.Option(
            help="Guard rail: requests a step needs before the rails judge it "
            f"(default {DEFAULT_GUARD_RAILS.min_requests:g}).")] = None,
        reason: ReasonOpt = "",
        json_out: JsonOpt = False,
        runtime: Annotated[str | None, typer.Option(
            help="What answers this version: auto (the faster of python and onnx, measured at "
            "load), python, or onnx (needs `workbench export NAME:VERSION --format onnx` "
            "first). Naming the stable version only changes its runtime.")] = None,
    ) -> None:
        """Deploy VERSION of NAME: production at 100 % if the model has none yet, otherwise
        the candidate at --percent."""
        from core.deploy import deployments as dep

        if not 0 <= percent <= 100:
            raise WorkbenchError(f"--percent must be from 0 to 100, not {percent:g}.")
        given = {"max_error_rate": max_error_rate, "max_p99_ms": max_p99_ms,
                 "min_requests": min_requests}
        rails = dep.check_guard_rails({k: v for k, v in given.items() if v is not None},
                                      label=lambda key: "--" + key.replace("_", "-"))
        with session() as s:
            st = dep.deploy(name, version, percent, session=s,
                            mode=DeploymentMode.SHADOW if shadow else DeploymentMode.CANARY,
                            guard_rails=rails or None, auto_advance=auto_advance or None,
                            reason=reason, runtime=runtime)
        _report(st, json_out)

    @app.command()
    @guarded
    def promote(name: str, reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
        """Make the candidate of NAME the stable version (moves the production alias)."""
        from core.deploy import deployments as dep

        with session() as s:
            st = dep.promote(name, session=s, reason=reason)
        _report(st, json_out)

    @app.command()
    @guarded
    def rollback(name: str, reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
        """Remove the candidate of NAME: 100 % of traffic back to stable at once."""
        from core.deploy import deployments as dep

        with session() as s:
            st = dep.rollback(name, session=s, reason=reason)
        _report(st, json_out)
