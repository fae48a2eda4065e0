"""The SQLite engine does not keep what a flush inserted: sqlite3's prepared-statement cache
held every cached statement's last bound values, and the telemetry flush's multi-row
INSERTs (a statement per row count) each held up to 1,000 logged requests' rows, so a
serving process grew by the size of what it logged (docs/serving/session18.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a child process, so its resident memory is this work's alone; in a thread, as the
# flush runs. 24 inserts of a different row count each, 200-400 rows of 40 KB text: a
# cache of statements with their bindings keeps ~290 MB of them; the live rows are 16 MB.
CHILD = textwrap.dedent("""
    import random, sys, threading
    from sqlalchemy import Column, Integer, MetaData, Table, Text, insert
    from core.store.db import make_engine

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")) / 1024

    engine = make_engine("sqlite:///" + sys.argv[1])
    table = Table("logged", MetaData(), Column("id", Integer, primary_key=True),
                  Column("rows", Text))
    table.metadata.create_all(engine)
    text = "x" * 40_000
    counts = random.Random(7).sample(range(200, 400), 24)
    before = []

    def flushes():
        for k, n in enumerate(counts):
            with engine.begin() as conn:
                conn.execute(insert(table), [{"rows": text + str(i)} for i in range(n)])
            if k == 1:
                before.append(rss_mb())

    t = threading.Thread(target=flushes)
    t.start()
    t.join()
    print(rss_mb() - before[0])
""")


def test_inserted_rows_are_not_kept_by_the_engine(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "t.db")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)
    growth = float(out.stdout.split()[-1])
    assert growth < 100, f"the process grew {growth:.0f} MB over 22 inserts"
