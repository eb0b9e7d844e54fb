"""Shard writing inside the engine, in two ``mapInArrow`` passes, with no shuffle of the text.

1. scatter: every scan task splits its rows by bucket (shard) and appends them
   to one Arrow IPC part file per bucket under ``<staging>/_parts/<bucket>/``;
   it returns (bucket, part file, rows).
2. gather: one task per shard (a tiny DataFrame of shard numbers and their part
   files) reads the parts, sorts the rows by (hash key, candidate id, copy
   index) and writes the shard's final JSONL and Parquet files; it returns
   (file, rows, bytes, sha256).

Why not ``repartition(bucket)`` and one pass: Sail holds a shuffle in memory,
and the 800k-row export of long-CoT text peaked at 10.4 GB RSS that way
(measured 2026-11, benchmarks/mix_export.py). Two passes write the text once
more to local disk but keep memory at about one shard per running task.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from pyspark.sql import types as T

from sftmix.transforms.export_format import PARQUET_ROW_GROUP_ROWS, jsonl_bytes, plain_schema, shard_file

PART_SCHEMA = T.StructType(
    [
        T.StructField("bucket", T.LongType()),
        T.StructField("part", T.StringType()),
        T.StructField("rows", T.LongType()),
    ]
)
SHARD_TASK_SCHEMA = T.StructType(
    [T.StructField("shard", T.LongType()), T.StructField("parts", T.ArrayType(T.StringType()))]
)
RESULT_SCHEMA = T.StructType(
    [
        T.StructField("shard", T.LongType()),
        T.StructField("format", T.StringType()),
        T.StructField("file", T.StringType()),
        T.StructField("rows", T.LongType()),
        T.StructField("bytes", T.LongType()),
        T.StructField("sha256", T.StringType()),
    ]
)
SORT_KEYS = [("_key", "ascending"), ("candidate_id", "ascending"), ("copy_index", "ascending")]
# Rows turned into Python objects at a time when encoding JSONL: bounds the worker's memory.
JSONL_CHUNK_ROWS = 2000


@dataclass(frozen=True)
class ShardSpec:
    """What every task needs to name and write its files (picklable, sent to the workers)."""

    staging: str
    split: str
    shards: int
    formats: tuple[str, ...]
    jsonl_compression: str
    parquet_compression: str
    columns: tuple[str, ...]

    @property
    def parts_dir(self) -> str:
        return os.path.join(self.staging, "_parts")


def scatter_parts(batches: Iterator[pa.RecordBatch], spec: ShardSpec) -> Iterator[pa.RecordBatch]:
    """Append each batch's rows to this task's part file of their bucket."""
    task = uuid.uuid4().hex[:16]
    writers: dict[int, tuple[ipc.RecordBatchFileWriter, str]] = {}
    counts: dict[int, int] = {}
    # lz4 keeps the parts about a third of the text's size at little CPU cost.
    options = ipc.IpcWriteOptions(compression="lz4")
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            batch = batch.cast(plain_schema(batch.schema))
            ordered = pa.Table.from_batches([batch]).sort_by([("_bucket", "ascending")])
            offset = 0
            for item in sorted(
                pc.value_counts(ordered.column("_bucket")).to_pylist(), key=lambda c: c["values"]
            ):
                bucket, n = int(item["values"]), int(item["counts"])
                piece = ordered.slice(offset, n)
                offset += n
                if bucket not in writers:
                    path = os.path.join(spec.parts_dir, f"{bucket:06d}", f"{task}.arrow")
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    writers[bucket] = (ipc.new_file(path, piece.schema, options=options), path)
                writers[bucket][0].write_table(piece)
                counts[bucket] = counts.get(bucket, 0) + n
    finally:
        for writer, _ in writers.values():
            writer.close()
    if counts:
        buckets = sorted(counts)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(buckets, pa.int64()),
                pa.array([writers[b][1] for b in buckets], pa.string()),
                pa.array([counts[b] for b in buckets], pa.int64()),
            ],
            names=[f.name for f in PART_SCHEMA.fields],
        )


def gather_shards(batches: Iterator[pa.RecordBatch], spec: ShardSpec) -> Iterator[pa.RecordBatch]:
    """Write every shard of this task from its parts: sorted rows, one file per format."""
    results = []
    for batch in batches:
        for task in batch.to_pylist():
            tables = []
            for part in sorted(task["parts"]):
                with ipc.open_file(part) as reader:
                    tables.append(reader.read_all())
            rows = pa.concat_tables(tables).sort_by(SORT_KEYS).select(list(spec.columns))
            del tables
            for fmt in spec.formats:
                name = shard_file(spec.split, task["shard"], spec.shards, fmt, spec.jsonl_compression)
                path = os.path.join(spec.staging, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if fmt == "jsonl":
                    write_jsonl(rows, path, spec.jsonl_compression)
                else:
                    compression = None if spec.parquet_compression == "none" else spec.parquet_compression
                    pq.write_table(rows, path, compression=compression, row_group_size=PARQUET_ROW_GROUP_ROWS)
                size, digest = file_digest(path)
                results.append((task["shard"], fmt, name, rows.num_rows, size, digest))
    if results:
        columns = list(zip(*results, strict=True))
        types = [pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64(), pa.string()]
        yield pa.RecordBatch.from_arrays(
            [pa.array(values, type=t) for values, t in zip(columns, types, strict=True)],
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
