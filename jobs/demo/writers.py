"""Sharded writers: JSONL (gzip, zstd or plain), OpenAI batch file pairs, Parquet.

Every writer holds at most one shard open and a small buffer, so memory does
not depend on the data size. Output bytes depend only on the content: gzip
gets mtime=0 and no file name in its header, zstd frames carry no timestamp.
Each ``write`` returns where the record landed (file relative to the output
root, line number), which is what the ground truth of bad records needs.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

GZIP_LEVEL = 1  # level 6 ran at ~33 MB/s here, level 1 at ~145 MB/s: the generator must do 40 MB/s
ZSTD_LEVEL = 3
_BUFFER_BYTES = 1 << 18

SUFFIX = {"gzip": ".gz", "zstd": ".zst", None: ""}


class _GzipSink:
    """gzip via zlib directly: zlib writes mtime 0 and no name, and computes the CRC in C.

    GzipFile does the CRC in a separate pass and cannot take memLevel=9,
    which together cost ~15% of the generator's time on math shards.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31, 9)

    def write(self, data: bytes) -> None:
        self.raw.write(self.deflate.compress(data))

    def close(self) -> None:
        self.raw.write(self.deflate.flush())


def _open(path: Path, compression: str | None) -> tuple[Any, Callable[[], None]]:
    """A binary sink and the function that closes it (and the file under it)."""
    raw = open(path, "wb")  # noqa: SIM115 - stays open across many writes; closed by the returned function
    if compression == "gzip":
        sink: Any = _GzipSink(raw)
    elif compression == "zstd":
        sink = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False)
    else:
        return raw, raw.close

    def close() -> None:
        sink.close()
        raw.close()

    return sink, close


def write_empty(path: Path, compression: str | None) -> None:
    """A file with no records that is still a valid stream of its format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _, close = _open(path, compression)
    close()


class LineFile:
    """One JSONL file: buffered writes, line numbers, raw and on-disk byte counts."""

    def __init__(self, root: Path, relative: str, compression: str | None) -> None:
        self.relative, self.path = relative, root / relative
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sink, self._close = _open(self.path, compression)
        self.lines = 0
        self.raw_bytes = 0
        # Copy lines into one buffer: orjson's bytes keep several times their length as spare capacity.
        self.buffer = bytearray()

    def write(self, line: bytes) -> int:
        self.buffer += line
        self.buffer += b"\n"
        self.lines += 1
        if len(self.buffer) >= _BUFFER_BYTES:
            self.flush()
        return self.lines

    def flush(self) -> None:
        if self.buffer:
            with memoryview(self.buffer) as view:
                self.sink.write(view)
            self.raw_bytes += len(self.buffer)
            self.buffer.clear()

    def close(self) -> int:
        """Close and return the bytes on disk."""
        self.flush()
        self._close()
        return self.path.stat().st_size


class ShardStats:
    def __init__(self) -> None:
        self.files: list[str] = []
        self.lines = 0
        self.raw_bytes = 0
        self.disk_bytes = 0

    def closed(self, f: LineFile) -> None:
        self.files.append(f.relative)
        self.lines += f.lines
        self.raw_bytes += f.raw_bytes
        self.disk_bytes += f.path.stat().st_size


class JsonlShards:
    """``<directory>/<stem>-NNNNN.jsonl[.gz|.zst]``, a new file every ``shard_records`` lines."""

    def __init__(self, root: Path, directory: str, compression: str | None, shard_records: int,
                 stem: str = "part") -> None:
        self.root, self.directory, self.compression = root, directory, compression
        self.shard_records, self.stem = shard_records, stem
        self.stats = ShardStats()
        self.current: LineFile | None = None

    def write(self, line: bytes) -> tuple[str, int]:
        if self.current is None or self.current.lines >= self.shard_records:
            self._rotate()
        assert self.current is not None
        return self.current.relative, self.current.write(line)

    def _rotate(self) -> None:
        if self.current is not None:
            self.current.close()
            self.stats.closed(self.current)
        name = f"{self.stem}-{len(self.stats.files):05d}.jsonl{SUFFIX[self.compression]}"
        self.current = LineFile(self.root, f"{self.directory}/{name}", self.compression)

    def close(self) -> ShardStats:
        if self.current is not None:
            self.current.close()
            self.stats.closed(self.current)
            self.current = None
        return self.stats


class BatchShards:
    """Paired ``batch-NNNNN.input.jsonl`` / ``.output.jsonl`` files.

    Responses come back out of order in real batch output, so they pass
    through a small shuffle window; ``on_response`` learns the final line of
    each tagged response (the bad ones) when the window is written.
    """

    WINDOW = 32

    def __init__(self, root: Path, directory: str, shard_records: int, rng: random.Random,
                 on_response: Callable[[Any, str, int], None]) -> None:
        self.root, self.directory, self.shard_records, self.rng = root, directory, shard_records, rng
        self.on_response = on_response
        self.inputs, self.outputs = ShardStats(), ShardStats()
        self.shard = -1
        self.requests: LineFile | None = None
        self.responses: LineFile | None = None
        self.window: list[tuple[bytes, Any]] = []

    def add_request(self, line: bytes) -> tuple[str, int]:
        if self.requests is None or self.requests.lines >= self.shard_records:
            self._rotate()
        assert self.requests is not None
        return self.requests.relative, self.requests.write(line)

    def add_response(self, line: bytes, tag: Any = None) -> None:
        if self.responses is None:
            self._rotate()
        # A copy at exact size: orjson's bytes carry several times their length in spare capacity.
        self.window.append((bytes(memoryview(line)), tag))
        if len(self.window) >= self.WINDOW:
            self._flush_window()

    def _flush_window(self) -> None:
        assert self.responses is not None
        self.rng.shuffle(self.window)
        for line, tag in self.window:
            number = self.responses.write(line)
            if tag is not None:
                self.on_response(tag, self.responses.relative, number)
        self.window = []

    def _close_shard(self) -> None:
        if self.requests is not None and self.responses is not None:
            self._flush_window()
            self.requests.close()
            self.responses.close()
            self.inputs.closed(self.requests)
            self.outputs.closed(self.responses)

    def _rotate(self) -> None:
        self._close_shard()
        self.shard += 1
        stem = f"{self.directory}/batch-{self.shard:05d}"
        self.requests = LineFile(self.root, f"{stem}.input.jsonl", None)
        self.responses = LineFile(self.root, f"{stem}.output.jsonl", None)

    def close(self) -> tuple[ShardStats, ShardStats]:
        self._close_shard()
        self.requests = self.responses = None
        return self.inputs, self.outputs


class ParquetShards:
    """``<directory>/part-NNNNN.parquet``; rows are buffered per row group only."""

    def __init__(self, root: Path, directory: str, schema: pa.Schema, shard_records: int,
                 row_group: int = 1000) -> None:
        self.root, self.directory, self.schema = root, directory, schema
        self.shard_records, self.row_group = shard_records, min(row_group, shard_records)
        self.stats = ShardStats()
        self.writer: pq.ParquetWriter | None = None
        self.relative = ""
        self.rows_in_file = 0
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.names}

    def write(self, row: dict[str, Any]) -> tuple[str, int]:
        """Returns (file, 0-based row index in that file)."""
        if self.writer is None or self.rows_in_file >= self.shard_records:
            self._rotate()
        for name, values in self.columns.items():
            values.append(row[name])
        index = self.rows_in_file
        self.rows_in_file += 1
        if len(self.columns[self.schema.names[0]]) >= self.row_group:
            self._flush()
        return self.relative, index

    def _flush(self) -> None:
        if self.writer is not None and self.columns[self.schema.names[0]]:
            self.writer.write_table(pa.table(self.columns, schema=self.schema))
            self.columns = {name: [] for name in self.schema.names}

    def _finish_file(self) -> None:
        if self.writer is not None:
            self._flush()
            self.writer.close()
            self.stats.files.append(self.relative)
            self.stats.lines += self.rows_in_file
            size = (self.root / self.relative).stat().st_size
            self.stats.disk_bytes += size
            self.stats.raw_bytes += size  # Parquet has no separate raw form

    def _rotate(self) -> None:
        self._finish_file()
        self.relative = f"{self.directory}/part-{len(self.stats.files):05d}.parquet"
        (self.root / self.directory).mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(self.root / self.relative, self.schema)
        self.rows_in_file = 0

    def close(self) -> ShardStats:
        self._finish_file()
        self.writer = None
        return self.stats
