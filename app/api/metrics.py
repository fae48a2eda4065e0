"""The Prometheus exposition of this process's serving counters (`GET /metrics`)."""

from __future__ import annotations

from core.deploy.service import Serving
from core.deploy.telemetry import BUCKETS_MS


def prometheus_text(serving: Serving) -> str:
    lines = ["# HELP workbench_requests_total Prediction requests per model version.",
             "# TYPE workbench_requests_total counter"]
    totals = dict(serving.telemetry.totals)
    for (name, v), c in sorted(totals.items()):
        lines.append(f'workbench_requests_total{{model="{name}",version="{v}"}} {c.count}')
    lines += ["# HELP workbench_request_errors_total Failed predictions per model version.",
              "# TYPE workbench_request_errors_total counter"]
    for (name, v), c in sorted(totals.items()):
        lines.append(f'workbench_request_errors_total{{model="{name}",version="{v}"}} '
                     f'{c.errors}')
    lines += ["# HELP workbench_request_outcomes_total Requests that reached a model version, "
              "by outcome: ok, failed (the version could not score them), rejected (records "
              "not matching its schema).",
              "# TYPE workbench_request_outcomes_total counter"]
    for (name, v), c in sorted(totals.items()):
        for outcome, n in (("ok", c.ok), ("failed", c.errors), ("rejected", c.rejected)):
            lines.append(f'workbench_request_outcomes_total{{model="{name}",version="{v}",'
                         f'outcome="{outcome}"}} {n}')
    lines += ["# HELP workbench_request_latency_ms Prediction latency in milliseconds.",
              "# TYPE workbench_request_latency_ms histogram"]
    for (name, v), c in sorted(totals.items()):
        cum = 0
        for edge, n in zip([*BUCKETS_MS, "+Inf"], c.hist, strict=True):
            cum += n
            lines.append(f'workbench_request_latency_ms_bucket{{model="{name}",version="{v}",'
                         f'le="{edge}"}} {cum}')
        lines.append(f'workbench_request_latency_ms_sum{{model="{name}",version="{v}"}} '
                     f'{c.latency_sum_ms:.3f}')
        lines.append(f'workbench_request_latency_ms_count{{model="{name}",version="{v}"}} '
                     f'{c.scored}')
    lines += ["# HELP workbench_models_loaded Versions held in memory.",
              "# TYPE workbench_models_loaded gauge",
              f"workbench_models_loaded {len(serving.cache.loaded())}"]
    return "\n".join(lines) + "\n"
