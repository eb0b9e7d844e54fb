"""Export formats for trainers: shard assignment and the bytes of JSONL/Parquet shards.

Shards are filled by a hash of (seed, candidate id, copy index) into buckets;
the bucket count starts at ``rows / shard_rows`` and grows until no bucket
passes ``shard_rows`` (each round is one small aggregate over two narrow
columns), so no shard is larger than configured and no global sort or collect
is needed. Rows inside a shard are ordered by the same hash, which
spreads the strata through every file.

The bytes are written by our own encoder rather than the engines' writers:
Sail drops a ``sortWithinPartitions`` before a write, so the engines' files
would not have a reproducible row order, and a shard's sha256 in the manifest
should be the same on every run and engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import pyarrow as pa

DATASETS = ("sft_mix", "cold_start")
EXTENSIONS = {"jsonl": {"none": "jsonl", "gzip": "jsonl.gz", "zstd": "jsonl.zst"}, "parquet": "parquet"}
# Rows per Parquet row group: long-CoT rows are ~10 kB, so a group stays in the tens of MB.
PARQUET_ROW_GROUP_ROWS = 5000


@dataclass(frozen=True)
class ExportParams:
    """Where and how the gold tables are exported for trainers."""

    path: str | None = None  # None: <storage.root>/export
    datasets: list[Literal["sft_mix", "cold_start"]] = field(
        default_factory=lambda: ["sft_mix", "cold_start"]
    )
    formats: list[Literal["jsonl", "parquet"]] = field(default_factory=lambda: ["jsonl", "parquet"])
    shard_rows: int = 20000  # at most this many rows per shard
    jsonl_compression: Literal["none", "gzip", "zstd"] = "none"
    parquet_compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    include_system: bool = True  # drop system turns for trainers whose template has none
    # gold columns written next to `messages` (e.g. candidate_id, domain) for tracing rows back
    extra_columns: list[str] = field(default_factory=list)
    split: str = "train"
    seed: int | None = None  # None: the top-level seed
    name: str = "sftmix"
    # Shards written at once (each holds one shard in memory); None: the driver's CPU count, right for
    # the embedded engine, which runs every partition of a stage concurrently.
    parallel_shards: int | None = None

    def __post_init__(self) -> None:
        if self.shard_rows < 1:
            raise ValueError("shard_rows must be at least 1")
        if not self.formats:
            raise ValueError("formats must name at least one format")
        if self.parallel_shards is not None and self.parallel_shards < 1:
            raise ValueError("parallel_shards must be at least 1")
        if "messages" in self.extra_columns:
            raise ValueError("extra_columns must not repeat `messages`")


def first_bucket_count(rows: int, shard_rows: int) -> int:
    """The fewest buckets that could hold ``rows``; the job grows the count until the largest bucket fits."""
    return max(1, math.ceil(rows / shard_rows))


def next_bucket_count(buckets: int) -> int:
    # +2% a round: each round lowers the mean bucket by about one standard deviation at 20k-row shards.
    return buckets + max(1, buckets // 50)


def shard_names(buckets: dict[int, int]) -> dict[int, int]:
    """Non-empty buckets, in order, to shard numbers 0..n-1."""
    return {bucket: index for index, bucket in enumerate(sorted(b for b, n in buckets.items() if n > 0))}


def shard_file(split: str, shard: int, shards: int, fmt: str, jsonl_compression: str) -> str:
    ext = EXTENSIONS["jsonl"][jsonl_compression] if fmt == "jsonl" else EXTENSIONS["parquet"]  # type: ignore[index]
    return f"{fmt}/{split}-{shard:05d}-of-{shards:05d}.{ext}"


def plain_type(dtype: pa.DataType) -> pa.DataType:
    """The same type without large/view variants (trainers' readers and the house rule expect plain ones)."""
    if pa.types.is_large_string(dtype) or getattr(pa.types, "is_string_view", lambda _: False)(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_large_list(dtype) or pa.types.is_list(dtype):
        return pa.list_(plain_type(dtype.value_type))
    if pa.types.is_struct(dtype):
        return pa.struct([pa.field(f.name, plain_type(f.type)) for f in dtype])
    return dtype


def plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, plain_type(f.type)) for f in schema])


# U+2028/U+2029 are legal inside JSON strings but are line breaks to str.splitlines() and older JS:
# escaping them keeps "one line per record" true for every reader.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def _has_line_separator(value: Any) -> bool:
    # On str, not on the encoded bytes: finding a non-ASCII character in an ASCII-only str returns at
    # once, where a search of the bytes reads them all (two such passes were 60% of the encoding).
    if isinstance(value, str):
        return "\u2028" in value or "\u2029" in value
    if isinstance(value, dict):
        return any(_has_line_separator(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_line_separator(v) for v in value)
    return False


def _json_line(row: dict[str, Any]) -> bytes:
    line = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    if _has_line_separator(row):
        for raw, escaped in _LINE_SEPARATORS:
            line = line.replace(raw, escaped)
    return line


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    """One JSON object per line, UTF-8, keys in column order, line separators escaped."""
    return b"".join(_json_line(row) for row in rows)
