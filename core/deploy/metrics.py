"""The serving runtime's Prometheus metrics, through `prometheus_client`.

With several server workers (`workbench serve --workers N`) each worker is its own process, so
counts kept in memory would show one random worker per scrape. `serve` therefore sets
PROMETHEUS_MULTIPROC_DIR before the workers start: prometheus_client then keeps every value in
a small memory-mapped file per process in that directory, and a scrape, answered by any worker,
sums the files of all of them (`MultiProcessCollector`). Without it (tests, one embedded app)
the values live in this object's own registry, so two apps in one process do not mix.

Names follow Prometheus conventions: the `workbench_` prefix, `_total` counters, durations in
seconds (docs/DECISIONS.md, Serving, lists them).
"""

from __future__ import annotations

import bisect
import os
import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import values as _values

from core.store.scope import ModelKey

# Latency bucket edges in ms, shared by the stored telemetry and the Prometheus histogram.
BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]  # + overflow
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
SECONDS_BUCKETS = tuple(ms / 1000.0 for ms in BUCKETS_MS)
OUTCOMES = ("ok", "failed", "rejected")


def multiprocess_dir() -> str | None:
    """The shared directory of a multi-worker server, or None in a single process.

    prometheus_client picks where values live when it is first imported: the directory
    counts only if it was set by then (`serve` sets it before the workers start)."""
    if _values.ValueClass is _values.MutexValue:
        return None
    return os.environ.get(MULTIPROC_ENV) or None


def multiprocess_exposition(path: str) -> bytes:
    """The scrape of every process that wrote to `path`: counters and histograms summed,
    the loaded-models gauge summed over live processes."""
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


class ServingMetrics:
    """Per-version request counters and the latency histogram, plus the loaded-model gauge.

    `observe` is on the prediction path: the labelled children of each version are looked up
    once and kept, so a request costs a few increments (no database write). In a multi-worker
    server each increment of a prometheus_client value is a locked write to its memory-mapped
    file (~4 µs a request, against ~1.8 in memory: a share of the CPU that one worker's second
    core would not pay); there a request's counts are held in memory instead and `publish`
    adds them to the files, from the telemetry flush (every `WORKBENCH_TELEMETRY_FLUSH_S`)
    and before this worker answers a scrape. Another worker's last second may then be
    missing from a scrape: the next one has it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")
        self.requests = Counter(
            "workbench_requests", "Prediction requests that reached a model version.",
            labels, registry=self.registry)
        self.errors = Counter(
            "workbench_request_errors", "Failed predictions per model version (the version "
            "could not score the records).", labels, registry=self.registry)
        self.outcomes = Counter(
            "workbench_request_outcomes", "Requests that reached a model version, by outcome: "
            "ok, failed (the version could not score them), rejected (records not matching "
            "its schema).", (*labels, "outcome"), registry=self.registry)
        self.duration = Histogram(
            "workbench_request_duration_seconds", "Time to score a request (ok or failed) at "
            "one model version, in seconds.", labels, buckets=SECONDS_BUCKETS,
            registry=self.registry)
        self.telemetry_dropped = Counter(
            "workbench_telemetry_dropped", "Prediction-log entries, samples and shadow results "
            "that never reached the store (refused by it, or dropped when the buffer waiting "
            "for it was full).", registry=self.registry)
        self.models_loaded = Gauge(
            "workbench_models_loaded", "Model versions held in memory (summed over the "
            "server's live workers).", registry=self.registry, multiprocess_mode="livesum")
        self._children: dict[tuple[str, int], tuple] = {}
        self.deferred = multiprocess_dir() is not None
        # per version: [requests, failed, rejected, seconds, count per latency bucket...]
        self._held: dict[tuple[str, int], list] = {}
        self._held_lock = threading.Lock()

    def _of(self, name: str, version: int) -> tuple:
        key = (name, version)
        children = self._children.get(key)
        if children is None:
            v = str(version)
            name = _label(name)
            children = self._children[key] = (
                self.requests.labels(name, v), self.errors.labels(name, v),
                {o: self.outcomes.labels(name, v, o) for o in OUTCOMES},
                self.duration.labels(name, v))
        return children

    def observe(self, name: str, version: int, seconds: float, ok: bool) -> None:
        """A request the version scored, successfully or not, in `seconds`."""
        if self.deferred:
            with self._held_lock:
                held = self._hold(name, version)
                held[0] += 1
                held[1] += 0 if ok else 1
                held[3] += seconds
                held[4 + bisect.bisect_left(SECONDS_BUCKETS, seconds)] += 1
            return
        requests, errors, outcomes, duration = self._of(name, version)
        requests.inc()
        if ok:
            outcomes["ok"].inc()
        else:
            errors.inc()
            outcomes["failed"].inc()
        duration.observe(seconds)

    def reject(self, name: str, version: int) -> None:
        """A request whose records did not match the version's schema (not scored)."""
        if self.deferred:
            with self._held_lock:
                held = self._hold(name, version)
                held[0] += 1
                held[2] += 1
            return
        requests, _, outcomes, _ = self._of(name, version)
        requests.inc()
        outcomes["rejected"].inc()

    def _hold(self, name: str, version: int) -> list:
        held = self._held.get((name, version))
        if held is None:
            held = self._held[(name, version)] = [0, 0, 0, 0.0] + [0] * (
                len(SECONDS_BUCKETS) + 1)
        return held

    def publish(self) -> None:
        """Add the counts held since the last call to the shared files (deferred mode)."""
        if not self.deferred:
            return
        with self._held_lock:
            held, self._held = self._held, {}
        for (name, version), (n, failed, rejected, seconds, *buckets) in held.items():
            requests, errors, outcomes, duration = self._of(name, version)
            requests.inc(n)
            for outcome, k in (("ok", n - failed - rejected), ("failed", failed),
                               ("rejected", rejected)):
                if k:
                    outcomes[outcome].inc(k)
            if failed:
                errors.inc(failed)
            if n - rejected:
                # prometheus_client has no public call adding many observations at once;
                # tests/core/test_metrics_deferred.py holds this equal to `observe`'s result
                duration._sum.inc(seconds)
                for bucket, k in zip(duration._buckets, buckets, strict=True):
                    if k:
                        bucket.inc(k)

    def dropped(self, n: int) -> None:
        self.telemetry_dropped.inc(n)

    def set_loaded(self, n: int) -> None:
        self.models_loaded.set(n)

    def exposition(self) -> bytes:
        """The text a scrape gets: every worker's values summed in multi-worker mode."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        self.publish()
        return multiprocess_exposition(path)


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop a stopped worker's live gauges from the shared directory (its counters stay:
    they are totals since the server started). A no-op in a single process."""
    path = path or multiprocess_dir()
    if path is not None:
        _multiprocess.mark_process_dead(pid, path)


def _label(name: str) -> str:
    """A served name's `model` label: `workspace/name` outside `default` (core/store/scope)."""
    return name.label if isinstance(name, ModelKey) else name
