"""``Tables.merge``: replace matched rows, insert new ones, delete listed keys, on Delta and Parquet."""

from __future__ import annotations

from pyspark.sql import functions as F

from .conftest import read_back


def test_merge_replaces_inserts_and_deletes(runtime_factory) -> None:
    rt = runtime_factory()
    spark = rt.spark
    # Written from non-null expressions, so Delta records NOT NULL columns; a delete must not trip them.
    base = spark.createDataFrame([("a", 1), ("b", 2), ("c", 3), ("d", 4)], "id string, v long")
    rt.tables.write(base.select("id", "v", F.lit("x").alias("tag")), "silver.merge_test")

    fresh = spark.createDataFrame([("b", 20), ("e", 5)], "id string, v long").select(
        "id", "v", F.lit("y").alias("tag")
    )
    delete = spark.createDataFrame([("a",), ("b",), ("z",)], "id string")  # b is replaced, z is absent
    rt.tables.merge(fresh, "silver.merge_test", ["id"], delete=delete)
    assert read_back(rt, "silver.merge_test") == [
        {"id": "b", "v": 20, "tag": "y"},
        {"id": "c", "v": 3, "tag": "x"},
        {"id": "d", "v": 4, "tag": "x"},
        {"id": "e", "v": 5, "tag": "y"},
    ]

    # The same merge again changes nothing; an empty one neither.
    rt.tables.merge(fresh, "silver.merge_test", ["id"], delete=delete)
    rt.tables.merge(fresh.limit(0), "silver.merge_test", ["id"], delete=delete.limit(0))
    assert len(read_back(rt, "silver.merge_test")) == 4
