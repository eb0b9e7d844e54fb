"""The runtime a job gets: config, engine session, tables, run id, metrics.

Every launcher (the CLI, spark-submit of ``jobs/<stage>.py``, a Databricks
wheel task) opens one with ``open_runtime`` and hands it to a stage's
``run(rt)``; stages never build sessions or read YAML themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from sftmix.jobs.runtime.config import Config, load_config
from sftmix.jobs.runtime.engine import Engine, start_engine
from sftmix.jobs.runtime.tables import Tables

log = logging.getLogger("sftmix")

DEFAULT_CONF = "conf/local.yaml"

STAGE_METRICS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("stage", T.StringType()),
        T.StructField("rows_in", T.LongType()),
        T.StructField("rows_out", T.LongType()),
        T.StructField("rejected", T.StringType()),  # JSON object: reason -> rows
        T.StructField("details", T.StringType()),  # JSON object: stage-specific figures
        T.StructField("seconds", T.DoubleType()),
        T.StructField("finished_at", T.StringType()),
    ]
)


@dataclass
class StageResult:
    """What a stage reports: rows in and out, rejected rows per reason, extra figures."""

    rows_in: int
    rows_out: int
    rejected: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Runtime:
    config: Config
    engine: Engine
    tables: Tables
    run_id: str

    @property
    def spark(self) -> SparkSession:
        return self.engine.spark

    def run_stage(self, stage: str, body: Any) -> StageResult:
        """Run ``body(self)``, log one line, and append the figures to ops.stage_metrics."""
        log.info("%s: started (run %s)", stage, self.run_id)
        started = time.perf_counter()
        result: StageResult = body(self)
        seconds = time.perf_counter() - started
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(result.rejected.items()))
        log.info(
            "%s: %d rows in, %d rows out in %.1f s%s",
            stage, result.rows_in, result.rows_out, seconds, f" (rejected: {rejected})" if rejected else "",
        )
        self.record_metrics(stage, result, seconds)
        return result

    def record_metrics(self, stage: str, result: StageResult, seconds: float) -> None:
        row = (
            self.run_id,
            stage,
            int(result.rows_in),
            int(result.rows_out),
            json.dumps(result.rejected, sort_keys=True),
            json.dumps(result.details, sort_keys=True, default=str),
            float(seconds),
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        frame = self.spark.createDataFrame([row], STAGE_METRICS_SCHEMA)
        self.tables.write(frame, "ops.stage_metrics", mode="append")

    def small_frame(self, rows: list[tuple], schema: T.StructType) -> DataFrame:
        return self.spark.createDataFrame(rows, schema)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@contextlib.contextmanager
def open_runtime(
    conf: str = DEFAULT_CONF, overrides: dict[str, Any] | None = None, run_id: str | None = None
) -> Iterator[Runtime]:
    config = load_config(conf, overrides)
    engine = start_engine(config.engine, config.storage)
    tables = Tables(engine.spark, config.storage, engine.table_format)
    try:
        yield Runtime(config, engine, tables, run_id or new_run_id())
    finally:
        engine.stop()


def stage_main(stage: str, body: Any, argv: list[str] | None = None) -> None:
    """Entry point of ``spark-submit jobs/<stage>.py --conf FILE [--run-id ID]``."""
    parser = argparse.ArgumentParser(prog=f"sftmix-{stage}")
    parser.add_argument("--conf", default=DEFAULT_CONF)
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    setup_logging()
    with open_runtime(args.conf, run_id=args.run_id) as rt:
        rt.run_stage(stage, body)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("py4j", "pyspark", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
