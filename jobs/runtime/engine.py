"""Sessions: the one place that starts or finds a Spark session.

``local`` starts Sail's Spark Connect server inside this process (127.0.0.1,
a free port) and stops it at exit; ``spark`` takes the session that
spark-submit or Databricks provides (or a classic local one); ``connect``
attaches to a remote Spark Connect URL. Everything downstream sees a plain
``SparkSession`` plus the few facts that differ between engines.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import SparkSession

from sftmix.jobs.runtime.config import EngineConfig, StorageConfig
from sftmix.transforms import process_pool

log = logging.getLogger("sftmix")

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
# Rows per Parquet row group on Sail: ~60 MB of 7 KB reasoning rows.
SAIL_ROW_GROUP_ROWS = 8192


@dataclass
class Engine:
    spark: SparkSession
    kind: Literal["local", "spark", "connect"]
    table_format: Literal["delta", "parquet"]
    udf_pool_size: int
    _server: object | None = None

    @property
    def name(self) -> str:
        return {"local": "sail", "spark": "spark", "connect": "connect"}[self.kind]

    def stop(self) -> None:
        # The pool must go before the server: its workers hang a stopping Sail process.
        process_pool.shutdown()
        if self._server is not None:
            try:
                self.spark.stop()
            finally:
                self._server.stop()  # type: ignore[attr-defined]
                self._server = None


def start_engine(engine: EngineConfig, storage: StorageConfig) -> Engine:
    if engine.kind == "local":
        result = _start_sail(engine)
    elif engine.kind == "connect":
        if not engine.url:
            raise ValueError("engine.kind 'connect' needs engine.url (e.g. sc://host:15002)")
        spark = SparkSession.builder.remote(engine.url).getOrCreate()
        result = Engine(spark, "connect", "delta", _pool_size(engine, default=0))
    else:
        result = _start_classic(engine)
    if storage.format != "auto":
        result.table_format = storage.format
    process_pool.configure(result.udf_pool_size)
    return result


def _start_sail(engine: EngineConfig) -> Engine:
    from pysail.spark import SparkConnectServer

    os.environ.setdefault("RUST_LOG", "warn")
    # Sail's Parquet writer fills a row group up to 1M rows before it flushes: with wide rows
    # (reasoning texts) that is each task's whole output held in memory (select's ranked scratch
    # table at full size: ~13 GB). Delta tables roll files instead (storage.target_file_mb).
    os.environ.setdefault("SAIL_PARQUET__MAX_ROW_GROUP_SIZE", str(SAIL_ROW_GROUP_ROWS))
    # Filters evaluated while Parquet is decoded (late materialization): the other columns are decoded
    # only for the rows that pass, and a hash join's build side filters the scan it probes. Over the
    # full-size silver.selected (1.98M rows, text columns): the cold-start join to 5,000 ids 5.7 ->
    # 2.1 s, the mix draw's hash filter (43% kept) 8.9 -> 6.2 s, a scan without a filter unchanged.
    os.environ.setdefault("SAIL_PARQUET__PUSHDOWN_FILTERS", "true")
    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    _, port = server.listening_address
    builder = SparkSession.builder.remote(f"sc://127.0.0.1:{port}")
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.shuffle.partitions", str(engine.shuffle_partitions))
    for key, value in engine.spark_conf.items():
        spark.conf.set(key, value)
    result = Engine(spark, "local", "delta", _pool_size(engine, default=os.cpu_count() or 1), server)
    atexit.register(result.stop)
    return result


def _start_classic(engine: EngineConfig) -> Engine:
    active = SparkSession.getActiveSession()
    if active is not None:
        spark = active
    else:
        # A Spark Connect session earlier in this process (tests run both engines) leaves this set.
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        builder = SparkSession.builder.appName("sftmix").config("spark.api.mode", "classic")
        if engine.master:
            builder = builder.master(engine.master)
        if (engine.master or "").startswith("local"):
            # Local workers must run this interpreter (the venv that has sftmix), not python3 from PATH.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.sql.shuffle.partitions", str(engine.shuffle_partitions))
        builder = builder.config("spark.ui.enabled", "false")
        for key, value in engine.spark_conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    on_databricks = "DATABRICKS_RUNTIME_VERSION" in os.environ
    table_format = "delta" if on_databricks or DELTA_EXTENSION in extensions else "parquet"
    return Engine(spark, "spark", table_format, _pool_size(engine, default=0))


def _pool_size(engine: EngineConfig, default: int) -> int:
    return default if engine.udf_pool_size is None else engine.udf_pool_size
