"""``Tables.write`` and scratch writes keep what one open file holds small (writer memory)."""

from __future__ import annotations

import glob
import os

import pyarrow.parquet as pq
from pyspark.sql import functions as F

from sftmix.jobs.runtime.engine import SAIL_ROW_GROUP_ROWS


def _wide_rows(spark, rows: int):  # noqa: ANN001, ANN202
    # sha2 of the id: incompressible text, so file sizes follow the row count.
    text = F.concat_ws("", *[F.sha2(F.concat(F.col("id").cast("string"), F.lit(str(i))), 256) for i in range(8)])
    return spark.range(rows).select(F.col("id"), text.alias("text")).repartition(1)


def test_delta_files_roll_at_the_target_size(runtime_factory) -> None:
    rt = runtime_factory(storage__target_file_mb=1)
    rt.tables.write(_wide_rows(rt.spark, 12_000), "silver.wide")  # ~6 MB of text in one task
    files = glob.glob(os.path.join(rt.tables.location("silver.wide"), "*.parquet"))
    if rt.tables.table_format == "delta":
        sizes = [os.path.getsize(f) for f in files]
        assert len(files) >= 3, sizes
        assert max(sizes) < 3 * 1024 * 1024, sizes
    figures = rt.tables.read("silver.wide").agg(F.count("id"), F.sum("id"), F.countDistinct("text")).first()
    assert tuple(figures) == (12_000, sum(range(12_000)), 12_000)


def test_sail_parquet_row_groups_are_bounded(runtime_factory) -> None:
    rt = runtime_factory()
    path = rt.tables.scratch("row-groups")
    _wide_rows(rt.spark, 40_000).write.mode("overwrite").parquet(path)
    files = glob.glob(os.path.join(path, "*.parquet"))
    metadata = [pq.ParquetFile(f).metadata for f in files]
    groups = [m.row_group(i).num_rows for m in metadata for i in range(m.num_row_groups)]
    assert sum(groups) == 40_000
    if rt.engine.kind == "local":
        assert max(groups) <= SAIL_ROW_GROUP_ROWS, groups
    rt.tables.drop_scratch(path)
