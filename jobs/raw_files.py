"""Read raw generation files inside the engine: lines or rows in, staged rows out.

Runs in ``mapInArrow`` over a small DataFrame of work items (one per file, or
per request/response pair of an OpenAI batch), so reading is spread over the
executors and nothing passes through the driver. Reading here, in Python,
rather than with the engines' JSON reader is deliberate: it is the portable
way to know each record's file and line (Sail has no ``input_file_name()``),
to detect malformed JSON, invalid UTF-8 and oversized records (neither
engine's JSON functions report them reliably), and to split on ``\\n`` only,
so a U+2028 inside a JSON string does not break a record.

Every input record becomes exactly one staged row with ``error`` null
(one row per candidate, the first flagged ``first_of_record``), or exactly
one staged row with an ``error`` code, the quarantine row.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard
from pyspark.sql import types as T

from sftmix.jobs.runtime.tables import DataFile
from sftmix.transforms import process_pool
from sftmix.transforms.judgments import JudgmentShape, judgment_row
from sftmix.transforms.raw_records import (
    RecordError,
    SourceShape,
    batch_candidates,
    batch_request_fields,
    flat_candidates,
    grouped_candidates,
)

MESSAGE = T.StructType([T.StructField("role", T.StringType()), T.StructField("content", T.StringType())])

# Columns of bronze.generations, in order.
GENERATION_FIELDS = [
    T.StructField("candidate_id", T.StringType()),
    T.StructField("prompt_id", T.StringType()),
    T.StructField("sample_index", T.LongType()),
    T.StructField("source", T.StringType()),
    T.StructField("kind", T.StringType()),
    T.StructField("domain", T.StringType()),
    T.StructField("language", T.StringType()),
    T.StructField("system", T.StringType()),
    T.StructField("prompt", T.StringType()),
    T.StructField("messages", T.ArrayType(MESSAGE)),
    T.StructField("reference_answer", T.StringType()),
    T.StructField("tests", T.StringType()),  # the prompt's tests as JSON text (code sandbox)
    T.StructField("completion", T.StringType()),
    T.StructField("reasoning_content", T.StringType()),
    T.StructField("finish_reason", T.StringType()),
    T.StructField("model", T.StringType()),
    T.StructField("completion_tokens", T.LongType()),
    T.StructField("tests_passed", T.LongType()),
    T.StructField("tests_total", T.LongType()),
    T.StructField("judge_score", T.DoubleType()),
    T.StructField("external_verdict", T.StringType()),
    T.StructField("metadata", T.StringType()),
    T.StructField("file", T.StringType()),
    T.StructField("line", T.LongType()),
]
STAGED_SCHEMA = T.StructType(
    GENERATION_FIELDS
    + [
        T.StructField("first_of_record", T.BooleanType()),
        T.StructField("error", T.StringType()),
        T.StructField("error_message", T.StringType()),
        T.StructField("raw", T.StringType()),
    ]
)
# Columns of bronze.judgments (ingest_run_id aside), in order.
JUDGMENT_FIELDS = [
    T.StructField("candidate_id", T.StringType()),
    T.StructField("judgment", T.StringType()),
    T.StructField("source", T.StringType()),
    T.StructField("prompt_id", T.StringType()),
    T.StructField("sample_index", T.LongType()),
    T.StructField("verdict", T.StringType()),
    T.StructField("tests_passed", T.LongType()),
    T.StructField("tests_total", T.LongType()),
    T.StructField("judge_score", T.DoubleType()),
    T.StructField("judge_analysis", T.StringType()),
    T.StructField("judge_model", T.StringType()),
    T.StructField("file", T.StringType()),
    T.StructField("line", T.LongType()),
]
# A judgment's quarantine row keeps the judgment's name in `source`, as bronze.quarantine has no other key.
JUDGMENT_STAGED_SCHEMA = T.StructType(
    JUDGMENT_FIELDS
    + [
        T.StructField("first_of_record", T.BooleanType()),
        T.StructField("error", T.StringType()),
        T.StructField("error_message", T.StringType()),
        T.StructField("raw", T.StringType()),
    ]
)
WORK_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("file", T.StringType()),
        T.StructField("request_file", T.StringType()),
    ]
)


def _arrow_type(data_type: T.DataType, large: bool = True) -> pa.DataType:
    if isinstance(data_type, T.StringType):
        return pa.large_string() if large else pa.string()
    if isinstance(data_type, T.LongType):
        return pa.int64()
    if isinstance(data_type, T.DoubleType):
        return pa.float64()
    if isinstance(data_type, T.BooleanType):
        return pa.bool_()
    if isinstance(data_type, T.ArrayType):
        return pa.list_(_arrow_type(data_type.elementType, large))  # classic Spark rejects LargeList
    if isinstance(data_type, T.StructType):
        return pa.struct([pa.field(f.name, _arrow_type(f.dataType, large)) for f in data_type.fields])
    raise TypeError(data_type)


def _arrow_schema(schema: T.StructType, large: bool = True) -> pa.Schema:
    return pa.schema([pa.field(f.name, _arrow_type(f.dataType, large)) for f in schema.fields])


ARROW_STAGED = _arrow_schema(STAGED_SCHEMA)
ARROW_JUDGMENT_STAGED = _arrow_schema(JUDGMENT_STAGED_SCHEMA)
# bronze.generations as it is stored: the candidate columns, then the run that ingested them.
GENERATIONS_TABLE_SCHEMA = T.StructType([*GENERATION_FIELDS, T.StructField("ingest_run_id", T.StringType())])
ARROW_GENERATIONS = _arrow_schema(GENERATIONS_TABLE_SCHEMA, large=False)


@dataclass(frozen=True)
class ReadLimits:
    max_record_bytes: int
    quarantine_raw_chars: int
    batch_rows: int


def open_lines(path: str) -> io.BufferedIOBase:
    """A binary stream of the decompressed file (gzip / zstd by extension)."""
    raw = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - closed with the wrapper
    if path.endswith(".gz"):
        return io.BufferedReader(gzip.GzipFile(fileobj=raw), buffer_size=1 << 20)  # type: ignore[arg-type]
    if path.endswith(".zst"):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[arg-type]
    return raw


def iter_lines(path: str, max_bytes: int) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based line number, bytes, oversized) for each non-blank line; splits on \\n only."""
    with open_lines(path) as stream:
        number = 0
        while True:
            data = stream.readline(max_bytes + 1)
            if not data:
                return
            number += 1
            oversized = len(data) > max_bytes and not data.endswith(b"\n")
            if oversized:
                while True:  # skip the rest of the line without holding it
                    rest = stream.readline(1 << 20)
                    if not rest or rest.endswith(b"\n"):
                        break
            if data.strip():
                yield number, data, oversized


class _Staging:
    """Collects staged rows and cuts them into Arrow batches."""

    def __init__(self, limits: ReadLimits, schema: pa.Schema = ARROW_STAGED) -> None:
        self.limits = limits
        self.schema = schema
        self.rows: list[dict[str, Any]] = []

    def good(self, rows: list[dict[str, Any]], file: str, line: int) -> None:
        for position, row in enumerate(rows):
            row["file"] = file
            row["line"] = line
            row["first_of_record"] = position == 0
            self.rows.append(row)

    def bad(
        self, source: str, file: str, line: int, code: str, message: str, raw: bytes | str, **extra: Any
    ) -> None:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        self.rows.append(
            {
                **extra,
                "source": source,
                "file": file,
                "line": line,
                "first_of_record": True,
                "error": code,
                "error_message": message[:500],
                "raw": text[: self.limits.quarantine_raw_chars],
            }
        )

    def flush(self, force: bool = False) -> Iterator[pa.RecordBatch]:
        if self.rows and (force or len(self.rows) >= self.limits.batch_rows):
            yield pa.RecordBatch.from_pylist(self.rows, self.schema)
            self.rows = []


def parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise RecordError("invalid_utf8", f"invalid UTF-8: {decode_error}") from None
        raise RecordError("invalid_json", f"invalid JSON: {error}") from None


def _read_json_lines(shape: SourceShape, path: str, stage: _Staging) -> Iterator[pa.RecordBatch]:
    file_name = os.path.basename(path)
    limit = stage.limits.max_record_bytes
    try:
        for line, data, oversized in iter_lines(path, limit):
            if oversized:
                stage.bad(shape.name, path, line, "record_too_large", f"record over {limit} bytes", data[:4096])
                continue
            try:
                record = parse_json(data)
                if shape.format == "grouped":
                    rows = grouped_candidates(record, shape, file_name)
                else:
                    rows = flat_candidates(record, shape, file_name, line)
                stage.good(rows, path, line)
            except RecordError as error:
                stage.bad(shape.name, path, line, error.code, str(error), data)
            yield from stage.flush()
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
        stage.bad(shape.name, path, -1, "unreadable_file", f"{type(error).__name__}: {error}", b"")


def _read_parquet_rows(shape: SourceShape, path: str, stage: _Staging) -> Iterator[pa.RecordBatch]:
    file_name = os.path.basename(path)
    row_index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=stage.limits.batch_rows):
        for record in batch.to_pylist():
            try:
                if shape.format == "grouped":
                    rows = grouped_candidates(record, shape, file_name)
                else:
                    rows = flat_candidates(record, shape, file_name, row_index)
                stage.good(rows, path, row_index)
            except RecordError as error:
                raw = orjson.dumps(record, default=str)
                stage.bad(shape.name, path, row_index, error.code, str(error), raw)
            row_index += 1
        yield from stage.flush()


def _read_batch_pair(shape: SourceShape, responses: str, requests: str, stage: _Staging) -> Iterator[pa.RecordBatch]:
    pending: dict[str, tuple[int, dict[str, Any]]] = {}
    limit = stage.limits.max_record_bytes
    for line, data, oversized in iter_lines(requests, limit):
        try:
            if oversized:
                raise RecordError("record_too_large", f"record over {limit} bytes")
            request = parse_json(data)
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str):
                raise RecordError("missing_field", "request has no string 'custom_id'")
            if custom_id in pending:
                raise RecordError("duplicate_custom_id", f"custom_id {custom_id!r} repeats a request")
            batch_request_fields(request, shape)  # a broken request is quarantined as itself
            pending[custom_id] = (line, request)
        except RecordError as error:
            stage.bad(shape.name, requests, line, error.code, str(error), data)
    seen: set[str] = set()
    for line, data, oversized in iter_lines(responses, limit):
        try:
            if oversized:
                raise RecordError("record_too_large", f"record over {limit} bytes")
            response = parse_json(data)
            custom_id = response.get("custom_id") if isinstance(response, dict) else None
            if not isinstance(custom_id, str):
                raise RecordError("missing_field", "response has no string 'custom_id'")
            if custom_id in seen:
                raise RecordError("duplicate_custom_id", f"custom_id {custom_id!r} answered twice")
            if custom_id not in pending:
                raise RecordError("response_without_request", f"no request with custom_id {custom_id!r}")
            seen.add(custom_id)
            _, request = pending.pop(custom_id)
            if response.get("error") is not None:
                raise RecordError("batch_error", f"the batch runner reported: {response['error']}")
            stage.good(batch_candidates(request, response, shape), responses, line)
        except RecordError as error:
            stage.bad(shape.name, responses, line, error.code, str(error), data)
        yield from stage.flush()
    for custom_id, (line, request) in pending.items():
        message = f"request {custom_id!r} has no response in {os.path.basename(responses)}"
        stage.bad(shape.name, requests, line, "request_without_response", message, orjson.dumps(request))


def read_item(item: dict[str, Any], shape: SourceShape, limits: ReadLimits) -> Iterator[pa.RecordBatch]:
    """Staged rows of one work item: a JSONL file, a Parquet file, or a batch request/response pair."""
    stage = _Staging(limits)
    path = item["file"]
    if item["request_file"]:
        yield from _read_batch_pair(shape, path, item["request_file"], stage)
    elif path.endswith(".parquet"):
        yield from _read_parquet_rows(shape, path, stage)
    else:
        yield from _read_json_lines(shape, path, stage)
    yield from stage.flush(force=True)


def read_work_items(
    batches: Iterator[pa.RecordBatch], shapes: dict[str, SourceShape], limits: ReadLimits
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow body: work items (source, file, request_file) in, staged rows out.

    Parsing runs inline here. Where the engine runs UDFs under one GIL (Sail) and
    the lake is a local Delta lake, ``land_files`` is used instead: shipping each
    file's rows back from pool workers as Arrow IPC was measured slower than
    parsing inline (13.2 s against 5.2 s on 313 MB of demo JSONL), so there the
    workers write the rows themselves.
    """
    for batch in batches:
        for item in batch.to_pylist():
            yield from read_item(item, shapes[item["source"]], limits)


# Columns with few distinct values; dictionary-encoding the long texts costs time for nothing
# (a 605 MB file: 2.0 -> 1.7 s of CPU to write).
_DICTIONARY_COLUMNS = ["source", "kind", "domain", "language", "finish_reason", "model", "file", "error"]


@dataclass(frozen=True)
class Landing:
    """Where pool workers put a work item's rows when they land them in ``bronze.generations`` themselves.

    Candidate rows become Parquet data files under ``table_dir``, not yet part of the table: the
    driver commits them (``Tables.append_files``) once every file is read and the bad-record checks
    pass, and deletes them otherwise. Every row's accounting (source, file, line, first_of_record,
    error) and the whole quarantine rows go to the staged file under ``staged_dir``, so counting
    and quarantining read the staged rows as on the engine path.
    """

    staged_dir: str
    table_dir: str
    run_id: str
    target_file_bytes: int


# What land_files reports: one row per data file written (data_file null for a work item with none).
LANDED_SCHEMA = T.StructType(
    [
        T.StructField("file", T.StringType()),  # the work item's file
        T.StructField("data_file", T.StringType()),  # relative to the table's directory
        T.StructField("bytes", T.LongType()),
        T.StructField("rows", T.LongType()),
    ]
)
_ARROW_LANDED = _arrow_schema(LANDED_SCHEMA)
_ACCOUNTING_COLUMNS = {"source", "file", "line", "first_of_record", "error", "error_message", "raw"}


class _DataFiles:
    """Parquet data files of one work item, rolled at the table's target file size."""

    def __init__(self, landing: Landing, stem: str) -> None:
        self.landing = landing
        self.stem = stem
        self.files: list[DataFile] = []
        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._name = ""
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        if self._writer is None:
            self._name = f"part-{self.stem}-{len(self.files):04d}.snappy.parquet"
            self._sink = pa.OSFile(os.path.join(self.landing.table_dir, self._name), "wb")
            self._writer = pq.ParquetWriter(
                self._sink, ARROW_GENERATIONS, compression="snappy", use_dictionary=_DICTIONARY_COLUMNS
            )
            self._rows = 0
        self._writer.write_batch(batch)
        self._rows += batch.num_rows
        assert self._sink is not None
        if self._sink.tell() >= self.landing.target_file_bytes:
            self.close()

    def close(self) -> None:
        if self._writer is None or self._sink is None:
            return
        self._writer.close()
        self._sink.close()
        self._writer = self._sink = None
        size = os.path.getsize(os.path.join(self.landing.table_dir, self._name))
        self.files.append(DataFile(self._name, size, self._rows))

    def discard(self) -> None:
        """Close and delete every file: a work item that fails leaves nothing in the table's directory."""
        self.close()  # the open file, if any, joins self.files
        for file in self.files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.landing.table_dir, file.path))
        self.files = []


def _candidate_rows(batch: pa.RecordBatch, run_id: str) -> pa.RecordBatch:
    columns = [batch.column(f.name).cast(ARROW_GENERATIONS.field(f.name).type) for f in GENERATION_FIELDS]
    run = pa.repeat(pa.scalar(run_id, pa.string()), batch.num_rows)
    return pa.RecordBatch.from_arrays([*columns, run], schema=ARROW_GENERATIONS)


def _accounting_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Candidate rows reduced to what counting reads: every other column null."""
    columns = [
        batch.column(f.name) if f.name in _ACCOUNTING_COLUMNS else pa.nulls(batch.num_rows, f.type)
        for f in ARROW_STAGED
    ]
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_STAGED)


def land_file(task: tuple[dict[str, Any], SourceShape, ReadLimits, Landing]) -> list[DataFile]:
    """Pool work: a work item's candidate rows as data files of the table, the rest staged.

    Returns the data files written.
    """
    item, shape, limits, landing = task
    key = item_key(item)
    out = os.path.join(landing.staged_dir, f"part-{key}.parquet")
    # Under a hidden name until complete (both engines' readers skip dot files): a worker that dies
    # leaves no half file for the engine to read.
    partial = os.path.join(landing.staged_dir, f".part-{key}.parquet.partial")
    data = _DataFiles(landing, f"{landing.run_id}-{key}")
    try:
        with pq.ParquetWriter(partial, ARROW_STAGED, compression="snappy", use_dictionary=_DICTIONARY_COLUMNS) as staged:
            for batch in read_item(item, shape, limits):
                good = pc.is_null(batch.column("error"))
                candidates = batch.filter(good)
                bad = batch.filter(pc.invert(good))
                data.write(_candidate_rows(candidates, landing.run_id))
                if candidates.num_rows:
                    staged.write_batch(_accounting_rows(candidates))
                if bad.num_rows:
                    staged.write_batch(bad)
    except BaseException:
        data.discard()
        raise
    data.close()
    os.replace(partial, out)
    return data.files


def land_files(
    batches: Iterator[pa.RecordBatch], shapes: dict[str, SourceShape], limits: ReadLimits, landing: Landing
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow body that lands candidate rows in the table's directory (see ``Landing``)."""
    for batch in batches:
        items = batch.to_pylist()
        tasks = [(item, shapes[item["source"]], limits, landing) for item in items]
        rows = []
        for item, files in zip(items, process_pool.imap(land_file, tasks), strict=True):
            rows += [{"file": item["file"], "data_file": f.path, "bytes": f.bytes, "rows": f.rows} for f in files]
            if not files:
                rows.append({"file": item["file"], "data_file": None, "bytes": 0, "rows": 0})
        yield pa.RecordBatch.from_pylist(rows, _ARROW_LANDED)


def item_key(item: dict[str, Any]) -> str:
    """A stable, unique key of a work item for file names (file paths may repeat base names)."""
    key = f"{item['source']}\x1f{item['file']}\x1f{item['request_file']}".encode()
    return hashlib.blake2b(key, digest_size=10).hexdigest()


def _judgment_records(path: str, file_format: str, limits: ReadLimits) -> Iterator[tuple[int, Any, bytes | None]]:
    """(line or row index, parsed record or RecordError, raw bytes) of a judgment file."""
    if file_format == "parquet":
        row_index = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=limits.batch_rows):
            for record in batch.to_pylist():
                yield row_index, record, None
                row_index += 1
        return
    for line, data, oversized in iter_lines(path, limits.max_record_bytes):
        if oversized:
            yield line, RecordError("record_too_large", f"record over {limits.max_record_bytes} bytes"), data[:4096]
            continue
        try:
            yield line, parse_json(data), data
        except RecordError as error:
            yield line, error, data


def read_judgment_file(shape: JudgmentShape, path: str, file_format: str, limits: ReadLimits) -> Iterator[pa.RecordBatch]:
    """Staged rows of one judgment file: one per record, a ``bronze.judgments`` row or a quarantine row."""
    stage = _Staging(limits, ARROW_JUDGMENT_STAGED)
    try:
        for line, record, raw in _judgment_records(path, file_format, limits):
            try:
                if isinstance(record, RecordError):
                    raise record
                row = judgment_row(record, shape)
                row["judgment"] = shape.name
                stage.good([row], path, line)
            except RecordError as error:
                text = raw if raw is not None else orjson.dumps(record, default=str)
                stage.bad(shape.name, path, line, error.code, str(error), text, judgment=shape.name)
            yield from stage.flush()
    except (OSError, EOFError, zlib.error, zstandard.ZstdError, pa.ArrowException) as error:
        message = f"{type(error).__name__}: {error}"
        stage.bad(shape.name, path, -1, "unreadable_file", message, b"", judgment=shape.name)
    yield from stage.flush(force=True)


def read_judgment_items(
    batches: Iterator[pa.RecordBatch],
    shapes: dict[str, JudgmentShape],
    formats: dict[str, str],
    limits: ReadLimits,
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow body for judgment files: work items (source = judgment name, file) in, staged rows out."""
    for batch in batches:
        for item in batch.to_pylist():
            name = item["source"]
            yield from read_judgment_file(shapes[name], item["file"], formats[name], limits)
