"""The run manifest: ``ops.runs`` rows, table versions and code version.

``ops.runs`` is an append-only log, like ``ops.stage_metrics``: a run writes
one ``running`` row when it starts and one ``succeeded`` or ``failed`` row
when it ends, so a run killed with SIGKILL still leaves a trace (a ``running``
row with no end). Appends are the one write every engine and format does
atomically; updating a row in place would need MERGE, which Parquet (classic
local Spark) lacks. The latest row per ``run_id`` is the run's state:
``SELECT * FROM ops.runs QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY
written_at DESC) = 1`` on Spark, or see ``latest_runs``.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs.runtime.tables import TABLES, Tables

log = logging.getLogger("sftmix")

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("stages", T.StringType()),  # comma-separated, in run order
        T.StructField("status", T.StringType()),  # running | succeeded | failed
        T.StructField("failed_stage", T.StringType()),
        T.StructField("error", T.StringType()),
        T.StructField("config_file", T.StringType()),
        T.StructField("config_hash", T.StringType()),
        T.StructField("git_sha", T.StringType()),
        T.StructField("sftmix_version", T.StringType()),
        T.StructField("engine", T.StringType()),
        T.StructField("table_format", T.StringType()),
        T.StructField("input_versions", T.StringType()),  # JSON: table -> version when the run started
        T.StructField("output_versions", T.StringType()),  # JSON: table -> version when it ended
        T.StructField("started_at", T.StringType()),
        T.StructField("ended_at", T.StringType()),
        T.StructField("seconds", T.DoubleType()),
        T.StructField("written_at", T.StringType()),
    ]
)

# How much of an error's text a run row keeps: the first lines name the cause; the rest is in the log.
MAX_ERROR_CHARS = 4000


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    """One row of ``ops.runs``; the same object is written at start and again at the end."""

    run_id: str
    stages: list[str]
    config_file: str
    config_hash: str
    git_sha: str | None
    sftmix_version: str
    engine: str
    table_format: str
    input_versions: dict[str, int | None]
    started_at: str
    status: str = "running"
    failed_stage: str | None = None
    error: str | None = None
    output_versions: dict[str, int | None] | None = None
    ended_at: str | None = None
    seconds: float | None = None

    def row(self) -> tuple:
        return (
            self.run_id,
            ",".join(self.stages),
            self.status,
            self.failed_stage,
            (self.error or "")[:MAX_ERROR_CHARS] or None,
            self.config_file,
            self.config_hash,
            self.git_sha,
            self.sftmix_version,
            self.engine,
            self.table_format,
            json.dumps(self.input_versions, sort_keys=True),
            json.dumps(self.output_versions, sort_keys=True) if self.output_versions is not None else None,
            self.started_at,
            self.ended_at,
            self.seconds,
            utc_now(),
        )


def write_run(spark_tables: Tables, record: RunRecord) -> None:
    frame = spark_tables.spark.createDataFrame([record.row()], RUNS_SCHEMA)
    spark_tables.write(frame, "ops.runs", mode="append")


def latest_runs(runs: DataFrame) -> DataFrame:
    """One row per run: its latest status row (the log holds a start row and an end row)."""
    order = Window.partitionBy("run_id").orderBy(F.col("written_at").desc())
    return runs.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).drop("_n")


def last_failed_run(tables: Tables) -> dict | None:
    """The most recent run whose latest row says ``failed`` (for ``sftmix run --resume``)."""
    if not tables.exists("ops.runs"):
        return None
    latest = latest_runs(tables.read("ops.runs")).orderBy(F.col("written_at").desc()).limit(1).collect()
    if not latest or latest[0]["status"] != "failed":
        return None
    return latest[0].asDict()


def table_versions(tables: Tables, names: tuple[str, ...] = TABLES) -> dict[str, int | None]:
    """The current version of every existing table (None where the format has no versions).

    Path-based Delta goes through the ``deltalake`` package because Sail has no
    ``DESCRIBE HISTORY``; catalog Delta tables (Databricks, delta-spark) use SQL.
    Parquet tables (classic local Spark) have no versions: they are listed with None.
    """
    versions: dict[str, int | None] = {}
    for name in names:
        if name in ("ops.runs", "ops.stage_metrics") or not tables.exists(name):
            continue  # the logs change with every run; their versions say nothing about inputs
        versions[name] = _version(tables, name)
    return versions


def _version(tables: Tables, name: str) -> int | None:
    if tables.table_format != "delta":
        return None
    location = tables.location(name)
    try:
        if not tables.storage.use_catalog and ("://" not in location or location.startswith("file://")):
            from deltalake import DeltaTable

            return int(DeltaTable(location.removeprefix("file://")).version())
        target = tables.qualified(name) if tables.storage.use_catalog else f"delta.`{location}`"
        rows = tables.spark.sql(f"DESCRIBE HISTORY {target} LIMIT 1").select("version").collect()
        return int(rows[0]["version"]) if rows else None
    except Exception as error:  # noqa: BLE001 - a version is provenance, never a reason to fail a run
        log.debug("no version for %s: %s", name, error)
        return None


def git_sha(where: Path | None = None) -> str | None:
    """The commit of the code that runs, with ``-dirty`` for local edits; None outside a checkout (wheel)."""
    where = where or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None
