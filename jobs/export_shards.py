"""The shard writer that runs inside the engine (``mapInArrow``): each task writes its shards' files.

A task receives the rows of one or more buckets (the DataFrame is
repartitioned by bucket, so a bucket never spans two tasks), sorts them by
(bucket, hash key, candidate id, copy index) and writes each bucket as one
file per format under the staging directory, named with its final shard
number. It returns one small row per file (rows, bytes, sha256): the only
thing that travels back to the driver.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import types as T

from sftmix.transforms.export_format import PARQUET_ROW_GROUP_ROWS, jsonl_bytes, plain_schema, shard_file

RESULT_SCHEMA = T.StructType(
    [
        T.StructField("bucket", T.LongType()),
        T.StructField("shard", T.LongType()),
        T.StructField("format", T.StringType()),
        T.StructField("file", T.StringType()),
        T.StructField("rows", T.LongType()),
        T.StructField("bytes", T.LongType()),
        T.StructField("sha256", T.StringType()),
    ]
)
SORT_KEYS = [("_bucket", "ascending"), ("_key", "ascending"), ("candidate_id", "ascending"),
             ("copy_index", "ascending")]
# Rows turned into Python objects at a time when encoding JSONL: bounds the worker's memory.
JSONL_CHUNK_ROWS = 2000


@dataclass(frozen=True)
class ShardSpec:
    """What every task needs to name and write its files (picklable, sent to the workers)."""

    staging: str
    split: str
    shards: int
    shard_of_bucket: dict[int, int]
    formats: tuple[str, ...]
    jsonl_compression: str
    parquet_compression: str
    columns: tuple[str, ...]


def write_shards(batches: Iterator[pa.RecordBatch], spec: ShardSpec) -> Iterator[pa.RecordBatch]:
    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    schema = plain_schema(parts[0].schema)
    table = pa.Table.from_batches([b.cast(schema) for b in parts]).sort_by(SORT_KEYS)
    del parts
    counts = pc.value_counts(table.column("_bucket")).to_pylist()
    offset = 0
    results = []
    for item in sorted(counts, key=lambda c: c["values"]):
        bucket, n = int(item["values"]), int(item["counts"])
        rows = table.slice(offset, n).select(list(spec.columns))
        offset += n
        shard = spec.shard_of_bucket[bucket]
        for fmt in spec.formats:
            name = shard_file(spec.split, shard, spec.shards, fmt, spec.jsonl_compression)
            path = os.path.join(spec.staging, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if fmt == "jsonl":
                write_jsonl(rows, path, spec.jsonl_compression)
            else:
                compression = None if spec.parquet_compression == "none" else spec.parquet_compression
                pq.write_table(rows, path, compression=compression, row_group_size=PARQUET_ROW_GROUP_ROWS)
            size, digest = file_digest(path)
            results.append((bucket, shard, fmt, name, n, size, digest))
    columns = list(zip(*results, strict=True))
    yield pa.RecordBatch.from_arrays(
        [pa.array(columns[i], type=t) for i, t in enumerate(
            [pa.int64(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64(), pa.string()])],
        names=[f.name for f in RESULT_SCHEMA.fields],
    )


def write_jsonl(rows: pa.Table, path: str, compression: str) -> None:
    with contextlib.ExitStack() as stack:
        raw: IO[bytes] = stack.enter_context(open(path, "wb"))
        out: IO[bytes] = raw
        if compression == "gzip":
            # mtime=0 and no file name in the header: the same rows give the same bytes.
            out = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
        elif compression == "zstd":
            import zstandard

            out = stack.enter_context(zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False))
        for start in range(0, rows.num_rows, JSONL_CHUNK_ROWS):
            out.write(jsonl_bytes(rows.slice(start, JSONL_CHUNK_ROWS).to_pylist()))


def file_digest(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
