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
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

import sftmix
import sftmix.conf
from sftmix.jobs import ops
from sftmix.jobs.runtime.config import Config, load_config
from sftmix.jobs.runtime.engine import Engine, start_engine
from sftmix.jobs.runtime.tables import Tables

log = logging.getLogger("sftmix")

DEFAULT_CONF = "conf/local.yaml"
# A stage that runs longer than this logs a "still running" line this often, so a long
# stage on a cluster is visibly alive (and its phase is visible) before its summary line.
PROGRESS_SECONDS = 30.0

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


StageBody = Callable[["Runtime"], StageResult]


class Phases:
    """Where a stage's time went: seconds per named phase, in order, for its metrics (``details.phases``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    def done(self, name: str) -> None:
        """Close the phase that began when the previous one ended (or at creation)."""
        now = time.perf_counter()
        self.seconds[name] = round(now - self._started, 2)
        self._started = now


@dataclass
class Runtime:
    config: Config
    engine: Engine
    tables: Tables
    run_id: str
    progress_seconds: float = PROGRESS_SECONDS
    # `--full`: stages recompute their tables from their whole inputs instead of only the new rows.
    full_rebuild: bool = False
    _stage: str = ""
    _phase: str = ""

    @property
    def spark(self) -> SparkSession:
        return self.engine.spark

    def progress(self, phase: str) -> None:
        """Name what the running stage does now; the heartbeat line shows it."""
        self._phase = phase
        log.info("%s: %s", self._stage or "stage", phase)

    def run_stages(self, stages: list[tuple[str, StageBody]]) -> dict[str, StageResult]:
        """Run stages in order under one run id, bracketed by ``ops.runs`` rows (start, then end).

        A failure writes a ``failed`` row naming the stage and the error, then re-raises:
        ``sftmix run --from <stage>`` (or ``--resume``) picks up there, because a stage run
        again leaves its outputs as one clean run would (it replaces them, or merges only
        what is missing).
        """
        record = ops.RunRecord(
            run_id=self.run_id,
            stages=[name for name, _ in stages],
            config_file=self.config.config_file,
            config_hash=self.config.config_hash,
            git_sha=ops.git_sha(),
            sftmix_version=sftmix.__version__,
            engine=self.engine.name,
            table_format=self.tables.table_format,
            input_versions=ops.table_versions(self.tables),
            started_at=ops.utc_now(),
        )
        ops.write_run(self.tables, record)
        started = time.perf_counter()
        results: dict[str, StageResult] = {}
        current = None
        try:
            for name, body in stages:
                current = name
                results[name] = self.run_stage(name, body)
        except BaseException as error:  # KeyboardInterrupt too: the log should say the run ended
            record.status, record.failed_stage = "failed", current
            record.error = f"{type(error).__name__}: {error}"
            self._finish_run(record, started)
            log.error(
                "run %s failed in stage %s: %s\n  resume with: sftmix run --from %s --run-id %s",
                self.run_id, current, record.error.splitlines()[0] if record.error else "", current, self.run_id,
            )
            raise
        record.status = "succeeded"
        self._finish_run(record, started)
        log.info("run %s succeeded: %s in %.1f s", self.run_id, ", ".join(results), record.seconds or 0.0)
        return results

    def _finish_run(self, record: ops.RunRecord, started: float) -> None:
        record.ended_at = ops.utc_now()
        record.seconds = round(time.perf_counter() - started, 3)
        try:
            record.output_versions = ops.table_versions(self.tables)
            ops.write_run(self.tables, record)
        except Exception as error:  # noqa: BLE001 - never hide the stage's own error behind this one
            log.warning("could not write the end of run %s to ops.runs: %s", self.run_id, error)

    def run_stage(self, stage: str, body: StageBody) -> StageResult:
        """Run ``body(self)``, log one line, and append the figures to ops.stage_metrics."""
        log.info("%s: started (run %s)", stage, self.run_id)
        self._stage, self._phase = stage, ""
        started = time.perf_counter()
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stage, started, done), daemon=True)
        beat.start()
        try:
            result: StageResult = body(self)
        finally:
            done.set()
            beat.join()
        seconds = time.perf_counter() - started
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(result.rejected.items()))
        log.info(
            "%s: %d rows in, %d rows out in %.1f s%s",
            stage, result.rows_in, result.rows_out, seconds, f" (rejected: {rejected})" if rejected else "",
        )
        self.record_metrics(stage, result, seconds)
        return result

    def _heartbeat(self, stage: str, started: float, done: threading.Event) -> None:
        while not done.wait(self.progress_seconds):
            elapsed = time.perf_counter() - started
            phase = f" ({self._phase})" if self._phase else ""
            log.info("%s: still running after %s%s", stage, _duration(elapsed), phase)

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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@contextlib.contextmanager
def open_runtime(
    conf: str = DEFAULT_CONF, overrides: dict[str, Any] | None = None, run_id: str | None = None
) -> Iterator[Runtime]:
    config = load_config(resolve_conf(conf), overrides)
    engine = start_engine(config.engine, config.storage)
    tables = Tables(engine.spark, config.storage, engine.table_format)
    try:
        yield Runtime(config, engine, tables, run_id or new_run_id())
    finally:
        engine.stop()


def stage_main(stage: str, body: StageBody, argv: list[str] | None = None) -> None:
    """Entry point of ``spark-submit jobs/<stage>.py --conf FILE [--run-id ID] [--set k=v]``.

    The same function backs the Databricks wheel tasks (``jobs/entry_points.py``):
    one stage, one run row in ``ops.runs``, one row in ``ops.stage_metrics``.
    """
    import yaml

    parser = argparse.ArgumentParser(prog=f"sftmix-{stage}")
    parser.add_argument("--conf", default=DEFAULT_CONF)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--full", action="store_true", help="rebuild from all inputs, not only the new rows")
    args = parser.parse_args(argv)
    overrides = {}
    for pair in args.set:
        key, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"--set expects key=value, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    setup_logging()
    # Which copy of the code runs (a --py-files wheel, a checkout, site-packages) is the first
    # question when a cluster job misbehaves.
    log.info("sftmix %s from %s", sftmix.__version__, sftmix.__file__)
    with open_runtime(args.conf, overrides, run_id=args.run_id) as rt:
        rt.full_rebuild = args.full
        rt.run_stages([(stage, body)])


def resolve_conf(conf: str | Path) -> str:
    """A config path, or the file of that name shipped inside the package (wheel tasks have no checkout)."""
    if Path(conf).exists():
        return str(conf)
    packaged = Path(sftmix.conf.__file__).parent / Path(conf).name
    return str(packaged) if packaged.exists() else conf


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("py4j", "pyspark", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
