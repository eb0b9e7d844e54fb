"""Crash safety, measured: SIGKILL a run in the middle of a stage's write, rerun, compare.

The stage runs in a child process (``sftmix run`` with a test stage) on Sail,
writing a Delta table. The child is killed once some of the new version's data
files are on disk but before the commit: readers must still see the previous
version whole, ``ops.runs`` must show the run as started and never ended, and
``--from`` with the same run id must leave the table exactly as an
uninterrupted run does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from deltalake import DeltaTable

from .conftest import REPO

ROWS = 400

# A stage writing silver.fake = (id, id * seed) in 4 files; with SLOW set, the last partition dawdles,
# so the other three files land well before the commit.
CHILD = f"""
import os, sys, time
from pyspark.sql import functions as F
from sftmix.jobs import cli, pipeline
from sftmix.jobs.runtime.context import StageResult

def scaled(rt):
    seed, slow = rt.config.seed, bool(os.environ.get("SLOW"))

    @F.udf("long")
    def times_seed(x):
        if slow and x >= {ROWS * 3 // 4}:
            time.sleep(0.1)
        return x * seed

    frame = rt.spark.range(0, {ROWS}, 1, 4).select("id", times_seed("id").alias("value"))
    rt.tables.write(frame, "silver.fake")
    return StageResult({ROWS}, {ROWS})

pipeline.STAGES.clear()
pipeline.STAGES["scaled"] = scaled
sys.exit(cli.main(sys.argv[1:]))
"""


def run_child(conf: Path, *args: str, slow: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if slow:
        env["SLOW"] = "1"
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "run", "--conf", str(conf), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def table_rows(path: Path) -> list[tuple[int, int]]:
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted((r["id"], r["value"]) for r in rows)


def test_sigkill_mid_write_then_resume_gives_the_uninterrupted_table(tmp_path: Path) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"extends": str(REPO / "conf" / "base.yaml"),
                                    "storage": {"root": str(tmp_path / "lake")}}))
    table = tmp_path / "lake" / "silver" / "fake"

    first = run_child(conf, "--run-id", "r1", "--set", "seed=1")
    assert first.wait(timeout=120) == 0, first.stderr.read()[-3000:]  # type: ignore[union-attr]
    committed = set(os.listdir(table))
    assert table_rows(table) == [(i, i) for i in range(ROWS)]

    killed = run_child(conf, "--run-id", "r2", "--set", "seed=2", slow=True)
    deadline = time.monotonic() + 120
    # Kill as soon as the new version has data files on disk (the write is under way, not committed).
    while time.monotonic() < deadline and killed.poll() is None:
        if len({f for f in os.listdir(table) if f.endswith(".parquet")} - committed) >= 1:
            break
        time.sleep(0.02)
    new_files = {f for f in os.listdir(table) if f.endswith(".parquet")} - committed
    assert killed.poll() is None, "the run finished before it could be killed mid-write"
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert new_files, "no data file of the new version appeared before the kill"

    # Readers still see version 0 whole: the half-written version was never committed.
    assert DeltaTable(str(table)).version() == 0
    assert table_rows(table) == [(i, i) for i in range(ROWS)]
    runs = DeltaTable(str(tmp_path / "lake" / "ops" / "runs")).to_pyarrow_table().to_pylist()
    assert sorted((r["run_id"], r["status"]) for r in runs) == [("r1", "running"), ("r1", "succeeded"),
                                                                ("r2", "running")]

    resumed = run_child(conf, "--from", "scaled", "--run-id", "r2", "--set", "seed=2")
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()[-3000:]  # type: ignore[union-attr]
    assert table_rows(table) == [(i, 2 * i) for i in range(ROWS)]  # what an uninterrupted run writes
    live = {Path(uri).name for uri in DeltaTable(str(table)).file_uris()}
    assert not live & new_files, "the killed run's files must not be part of the table"
