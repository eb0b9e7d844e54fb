"""``sftmix maintain``: compaction and vacuum keep every row and drop the files nothing reads."""

from __future__ import annotations

import os

from sftmix.jobs.maintain import maintain

from .conftest import read_back


def test_maintain_compacts_appends_and_vacuums_overwrites(runtime_factory) -> None:
    rt = runtime_factory()
    spark = rt.spark
    for batch in range(3):  # three appends: three small files, as ingest leaves them
        rt.tables.write(spark.range(batch * 10, batch * 10 + 10, 1, 1), "bronze.generations", mode="append")
    for value in range(2):  # an overwrite leaves the first version's file behind
        rt.tables.write(spark.range(value, value + 5, 1, 1), "silver.candidates")
    before = {name: read_back(rt, name) for name in ("bronze.generations", "silver.candidates")}

    done = {m.table: m for m in maintain(rt, retain_hours=0)}
    assert set(done) == {"bronze.generations", "silver.candidates"}
    for name, rows in before.items():
        assert read_back(rt, name) == rows, name
    if rt.tables.table_format != "delta":
        assert {m.note for m in done.values()} == {"parquet: nothing to compact or vacuum"}
        return
    generations = done["bronze.generations"]
    assert (generations.files_before, generations.files_after, generations.compacted) == (3, 1, 3)
    assert done["silver.candidates"].vacuumed >= 1
    on_disk = [f for f in os.listdir(rt.tables.location("bronze.generations")) if f.endswith(".parquet")]
    assert len(on_disk) == 1  # the three compacted files were vacuumed too
