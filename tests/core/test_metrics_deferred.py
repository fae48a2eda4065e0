"""In a multi-worker server a request's Prometheus counts are held in memory and added to the
shared files in one go (core/deploy/metrics.py): a scrape then reads exactly what counting
each request into the files wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from core.deploy.metrics import multiprocess_exposition
from tests.factories import ROOT

CHILD = """
import sys
from core.deploy.metrics import ServingMetrics

m = ServingMetrics()
assert m.deferred
m.deferred = sys.argv[1] == "held"
latencies = [0.0004, 0.0005, 0.0006, 0.003, 0.01, 0.2, 4.9, 12.0, 0.0]
for i, seconds in enumerate(latencies * 3):
    m.observe("churn", 1 + i % 2, seconds, i % 4 != 0)
    if i % 5 == 0:
        m.reject("churn", 2)
        m.publish()  # a flush between requests, as the flush thread does
m.reject("churn", 3)
m.observe("team-a/churn", 1, 0.02, True)
m.publish()
"""


def _scrape_of(mode: str, directory: Path) -> set[tuple]:
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", CHILD, mode, str(directory)], cwd=ROOT, env=env,
                   check=True)
    text = multiprocess_exposition(str(directory)).decode()
    return {(sample.name, tuple(sorted(sample.labels.items())), sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_held_counts_scrape_as_counting_each_request(tmp_path: Path) -> None:
    held = _scrape_of("held", tmp_path / "held")
    direct = _scrape_of("direct", tmp_path / "direct")
    assert held == direct
    assert ("workbench_request_duration_seconds_count",
            (("model", "churn"), ("version", "1")), 14.0) in held


CHILD_UNPUBLISHED = """
from core.deploy.metrics import ServingMetrics

m = ServingMetrics()
m.observe("churn", 1, 0.003, True)
print(m.exposition().decode())  # a scrape this worker answers publishes its own counts first
"""


def test_a_worker_answering_a_scrape_shows_its_own_counts_at_once(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", CHILD_UNPUBLISHED], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    assert 'workbench_requests_total{model="churn",version="1"} 1.0' in out
