"""Table I/O by logical name: the only module that knows where tables live.

``bronze.generations`` is ``<storage.root>/bronze/generations`` on path
storage (any Delta reader finds it), or ``<catalog>.bronze.generations`` with
``storage.use_catalog``. The format is Delta, except on classic local Spark
without the Delta jars, where it is Parquet (same layout, same columns).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs.runtime.config import StorageConfig

log = logging.getLogger("sftmix")

# Every table the pipeline writes, in flow order; `sftmix sql` registers them all.
TABLES = (
    "bronze.generations",
    "bronze.quarantine",
    "bronze.ingested_files",
    "bronze.judgments",
    "silver.candidates",
    "silver.judgments",
    "silver.prompts",
    "silver.prompt_fingerprints",
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


class DataFile(NamedTuple):
    """A Parquet data file written in a table's directory outside the engine, for ``append_files``."""

    path: str  # relative to the table's directory
    bytes: int
    rows: int


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
        if is_local_path(path):
            marker = "_delta_log" if self.table_format == "delta" else ""
            return os.path.isdir(os.path.join(local_path(path), marker)) and any(Path(local_path(path)).iterdir())
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
            writer = writer.option("targetFileSize", str(self.storage.target_file_bytes))
        if self.storage.use_catalog:
            writer.saveAsTable(self.qualified(name))
        else:
            writer.save(self.location(name))

    def accepts_files(self, name: str) -> bool:
        """Whether ``append_files`` can commit Parquet files written outside the engine to ``name``."""
        return self.table_format == "delta" and not self.storage.use_catalog and is_local_path(self.location(name))

    def append_files(self, name: str, files: list[DataFile], schema: pa.Schema) -> None:
        """Commit Parquet data files already written in the table's directory as one Delta append.

        The files must hold the table's columns (``schema`` when this creates the table). Files written there but never
        committed are not part of the table: readers go by the Delta log (VACUUM removes them).
        """
        if not self.accepts_files(name):
            raise ValueError(f"{name}: only a Delta table on a local path takes files written outside the engine")
        uri = local_path(self.location(name))
        now = int(time.time() * 1000)
        actions = [
            AddAction(f.path, f.bytes, {}, now, True, json.dumps({"numRecords": f.rows})) for f in files
        ]
        if self.exists(name):
            table = DeltaTable(uri)
            table.create_write_transaction(actions, mode="append", schema=table.schema())
        else:
            create_table_with_add_actions(uri, DeltaSchema.from_arrow(schema), actions, mode="error")

    def remove_files(self, name: str, files: list[DataFile]) -> None:
        """Delete uncommitted data files ``append_files`` would have committed (a failed stage)."""
        directory = local_path(self.location(name))
        for file in files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, file.path))

    def merge(self, df: DataFrame, name: str, keys: list[str], delete: DataFrame | None = None) -> None:
        """Upsert ``df`` into table ``name`` on ``keys``: matched rows replaced, new rows inserted.

        ``delete``: key rows whose table rows go (unless ``df`` has them): a prompt's old selection,
        candidates gone from bronze. The source is written to scratch first, so a Python UDF in its
        plan runs once and the merge never reads the table it writes. Rows whose key the table
        lacks are appended (a new batch of candidates is nearly all of these: an append writes
        only them, where Sail's MERGE rewrites the table: 73 s vs 1.2 s for 100k rows into 1M);
        rows that replace or delete table rows go first, by ``MERGE INTO`` on Delta, or on
        Parquet, which has no MERGE, a rewrite through scratch (classic Spark refuses to overwrite
        a path it reads from). Up to three commits, each idempotent: a rerun after a crash between
        them finds what was applied and applies the rest.
        """
        if not self.exists(name):
            self.write(df, name)
            return
        upserts = df.withColumn(_MERGE_DELETE, F.lit(False))
        if delete is not None:
            gone = delete.select(*keys).distinct().join(df.select(*keys), keys, "left_anti")
            tombstones = gone.select(
                *[F.col(f.name) if f.name in keys else F.lit(None).cast(f.dataType).alias(f.name) for f in df.schema],
                F.lit(True).alias(_MERGE_DELETE),
            )
            upserts = upserts.unionByName(tombstones)
        source = self.scratch(f"merge-{name}")
        merged = self.scratch(f"merged-{name}")
        started = time.perf_counter()
        try:
            present = self.read(name).select(*keys).distinct()
            flagged = upserts.join(present.withColumn(_MERGE_PRESENT, F.lit(True)), keys, "left")
            flagged.write.mode("overwrite").parquet(source)
            written = time.perf_counter()
            # With the schema given: Sail writes no file for an empty frame, and a bare read finds no columns.
            stored = self.spark.read.schema(flagged.schema).parquet(source)
            present_rows = stored.where(F.col(_MERGE_PRESENT).isNotNull()).drop(_MERGE_PRESENT)
            if present_rows.limit(1).count():
                if self.table_format == "delta":
                    self._merge_delta(present_rows, name, keys, df.columns)
                else:
                    kept = self.read(name).join(present_rows.select(*keys), keys, "left_anti")
                    rows = kept.unionByName(present_rows.where(~F.col(_MERGE_DELETE)).drop(_MERGE_DELETE))
                    rows.write.mode("overwrite").parquet(merged)
                    self.write(self.spark.read.parquet(merged), name)
            replaced = time.perf_counter()
            new_rows = stored.where(F.col(_MERGE_PRESENT).isNull() & ~F.col(_MERGE_DELETE))
            self.write(new_rows.select(*_as_table_columns(self.read(name).schema)), name, mode="append")
            log.info(
                "merge into %s: source %.1f s, replace/delete %.1f s, append %.1f s",
                name, written - started, replaced - written, time.perf_counter() - replaced,
            )
        finally:
            self.drop_scratch(source)
            self.drop_scratch(merged)

    def _merge_delta(self, rows: DataFrame, name: str, keys: list[str], columns: list[str]) -> None:
        """Deletes, then replacements, each one ``MERGE INTO`` (only rows whose keys the table has).

        Two statements, not one with two WHEN MATCHED clauses: Sail 0.7 checks the table's NOT NULL
        constraints on the UPDATE projection of every matched row, the deleted ones too, whose
        non-key columns are nulls (DELTA_NOT_NULL_CONSTRAINT_VIOLATED, depending on batch layout).
        """
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        target = self.qualified(name) if self.storage.use_catalog else f"delta.`{self.location(name)}`"
        assign = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
        deletes = rows.where(F.col(_MERGE_DELETE)).select(*keys)
        updates = rows.where(~F.col(_MERGE_DELETE)).select(*columns)
        for source, action in ((deletes, "DELETE"), (updates, f"UPDATE SET {assign}")):
            if not source.limit(1).count():
                continue
            view = f"_sftmix_merge_{uuid.uuid4().hex[:8]}"
            source.createOrReplaceTempView(view)
            try:
                self.spark.sql(f"MERGE INTO {target} AS t USING {view} AS s ON {on} WHEN MATCHED THEN {action}").collect()
            finally:
                self.spark.catalog.dropTempView(view)

    def scratch(self, purpose: str) -> str:
        """A fresh path under the storage root for a stage's intermediate data (remove with drop_scratch)."""
        return f"{self.storage.root.rstrip('/')}/_scratch/{purpose}-{uuid.uuid4().hex[:12]}"

    def drop_scratch(self, path: str) -> None:
        if is_local_path(path):
            shutil.rmtree(local_path(path), ignore_errors=True)

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


_MERGE_DELETE = "_sftmix_delete"
_MERGE_PRESENT = "_sftmix_present"


def _as_table_columns(schema: T.StructType) -> list[Column]:
    """The table's columns, NOT NULL ones declared non-null again for the append.

    Delta records NOT NULL for columns written from non-null expressions; the merge source went
    through a union with tombstones and scratch, so its columns read as nullable, and Sail 0.7
    then refuses the append now and then (DELTA_NOT_NULL_CONSTRAINT_VIOLATED) though no value is
    null. Coalescing with a typed stand-in makes them non-null again; appended rows are real rows,
    so the stand-in is never taken.
    """
    stand_ins = {
        T.StringType: F.lit(""), T.LongType: F.lit(0).cast("long"), T.IntegerType: F.lit(0).cast("int"),
        T.DoubleType: F.lit(0.0), T.BooleanType: F.lit(False),
    }
    columns = []
    for field in schema.fields:
        stand_in = None if field.nullable else stand_ins.get(type(field.dataType))
        if stand_in is None and not field.nullable and isinstance(field.dataType, T.ArrayType):
            stand_in = F.array().cast(field.dataType)
        columns.append(F.col(field.name) if stand_in is None else F.coalesce(F.col(field.name), stand_in).alias(field.name))
    return columns


def _split(name: str) -> tuple[str, str]:
    layer, _, table = name.partition(".")
    if not layer or not table or "." in table:
        raise ValueError(f"table names are layer.name, got {name!r}")
    return layer, table


def is_local_path(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def local_path(path: str) -> str:
    return path.removeprefix("file://")
