"""Table I/O by logical name: the only module that knows where tables live.

``bronze.generations`` is ``<storage.root>/bronze/generations`` on path
storage (any Delta reader finds it), or ``<catalog>.bronze.generations`` with
``storage.use_catalog``. The format is Delta, except on classic local Spark
without the Delta jars, where it is Parquet (same layout, same columns).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from sftmix.jobs.runtime.config import StorageConfig

# Every table the pipeline writes, in flow order; `sftmix sql` registers them all.
TABLES = (
    "bronze.generations",
    "bronze.quarantine",
    "bronze.ingested_files",
    "bronze.judgments",
    "silver.candidates",
    "silver.judgments",
    "silver.prompts",
    "silver.selected",
    "silver.prompt_status",
    "silver.decisions",
    "silver.contamination",
    "gold.sft_mix",
    "gold.cold_start",
    "gold.rl_prompts",
    "ops.runs",
    "ops.stage_metrics",
    "ops.mix_plan",
    "ops.mix_versions",
    "ops.mix_history",
    "ops.mix_diff",
    "ops.contamination_report",
)


@dataclass
class Tables:
    spark: SparkSession
    storage: StorageConfig
    table_format: str

    def location(self, name: str) -> str:
        layer, table = _split(name)
        return f"{self.storage.root.rstrip('/')}/{layer}/{table}"

    def qualified(self, name: str) -> str:
        return f"{self.storage.catalog}.{name}" if self.storage.catalog else name

    def exists(self, name: str) -> bool:
        if self.storage.use_catalog:
            return bool(self.spark.catalog.tableExists(self.qualified(name)))
        path = self.location(name)
        if _is_local(path):
            marker = "_delta_log" if self.table_format == "delta" else ""
            return os.path.isdir(os.path.join(_local(path), marker)) and any(Path(_local(path)).iterdir())
        try:
            self.spark.read.format(self.table_format).load(path).limit(0).collect()
            return True
        except Exception:  # noqa: BLE001 - an engine-specific "path not found"
            return False

    def read(self, name: str, version: int | None = None) -> DataFrame:
        if self.storage.use_catalog:
            if version is not None:
                return self.spark.sql(f"SELECT * FROM {self.qualified(name)} VERSION AS OF {int(version)}")
            return self.spark.table(self.qualified(name))
        reader = self.spark.read.format(self.table_format)
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.location(name))

    def write(
        self,
        df: DataFrame,
        name: str,
        mode: str = "overwrite",
        partition_by: list[str] | None = None,
    ) -> None:
        """Overwrite (atomically on Delta) or append; a new column on append merges the schema."""
        writer = df.write.format(self.table_format).mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if self.table_format == "delta":
            writer = writer.option("overwriteSchema" if mode == "overwrite" else "mergeSchema", "true")
        if self.storage.use_catalog:
            writer.saveAsTable(self.qualified(name))
        else:
            writer.save(self.location(name))

    def scratch(self, purpose: str) -> str:
        """A fresh path under the storage root for a stage's intermediate data (remove with drop_scratch)."""
        return f"{self.storage.root.rstrip('/')}/_scratch/{purpose}-{uuid.uuid4().hex[:12]}"

    def drop_scratch(self, path: str) -> None:
        if _is_local(path):
            shutil.rmtree(_local(path), ignore_errors=True)

    def register_all(self, names: tuple[str, ...] = TABLES) -> list[str]:
        """Make every existing table queryable by its logical name in SQL (path storage)."""
        registered = []
        if self.storage.use_catalog:
            return [name for name in names if self.exists(name)]
        for name in names:
            if not self.exists(name):
                continue
            layer, _ = _split(name)
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
            self.spark.sql(f"DROP TABLE IF EXISTS {name}")
            self.spark.sql(f"CREATE TABLE {name} USING {self.table_format} LOCATION '{self.location(name)}'")
            registered.append(name)
        return registered


def _split(name: str) -> tuple[str, str]:
    layer, _, table = name.partition(".")
    if not layer or not table or "." in table:
        raise ValueError(f"table names are layer.name, got {name!r}")
    return layer, table


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path.removeprefix("file://")
