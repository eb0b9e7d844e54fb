"""Stage ``ingest``: raw generation dumps -> bronze.generations + bronze.quarantine.

Steps: list each source's files and drop those already recorded in
``bronze.ingested_files`` (so a rerun adds nothing and new files append);
read the rest inside the engine (``jobs/raw_files.py``) into a scratch table;
check every source's bad-record fraction (a wrong field mapping must fail
loudly, not yield an empty table); then append candidates, quarantined
records and the file list, and drop the scratch table.

Crash note: the three appends are separate Delta commits, written in that
order; the file list goes last, so a crash before it makes the next run read
those files again (rows would repeat; `candidate_id` makes them findable).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs.raw_files import (
    GENERATION_FIELDS,
    STAGED_SCHEMA,
    WORK_SCHEMA,
    ReadLimits,
    read_work_items,
)
from sftmix.jobs.runtime.config import ConfigError, SourceConfig
from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.raw_records import SourceShape, validate_field_names

INGESTED_FILES_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("file", T.StringType()),
        T.StructField("request_file", T.StringType()),
        T.StructField("bytes", T.LongType()),
        T.StructField("records", T.LongType()),
        T.StructField("candidates", T.LongType()),
        T.StructField("quarantined", T.LongType()),
        T.StructField("ingest_run_id", T.StringType()),
    ]
)


class IngestError(RuntimeError):
    """A source's input is too broken to land (bad fraction over its limit)."""


@dataclass(frozen=True)
class WorkItem:
    source: str
    file: str
    request_file: str | None
    size: int


def list_work_items(source: SourceConfig) -> list[WorkItem]:
    """Files of a source, sorted; a batch pairs each response file with its request file."""
    files = sorted({path for pattern in source.paths for path in glob.glob(pattern, recursive=True)})
    files = [f for f in files if os.path.isfile(f)]
    if source.format != "openai_batch":
        return [WorkItem(source.name, f, None, os.path.getsize(f)) for f in files]
    items = []
    for response in (f for f in files if f.endswith(source.response_suffix)):
        request = response[: -len(source.response_suffix)] + source.request_suffix
        if os.path.isfile(request):
            size = os.path.getsize(response) + os.path.getsize(request)
            items.append(WorkItem(source.name, response, request, size))
    return items


def source_shape(source: SourceConfig) -> SourceShape:
    unknown = validate_field_names(source.format, source.fields)
    if unknown:
        raise ConfigError(f"sources[{source.name}].fields: unknown logical field {unknown[0]!r}")
    fields = tuple(sorted(source.fields.items()))
    unknown_required = [name for name in source.required if name not in set(source.fields) | {"prompt_id"}]
    if unknown_required:
        raise ConfigError(f"sources[{source.name}].required: {unknown_required[0]!r} is not a mapped field")
    return SourceShape(
        source.name, source.format, source.kind, source.domain, source.language, fields, source.key_by_file,
        tuple(source.required),
    )


def read_staged(rt: Runtime, items: list[WorkItem]) -> DataFrame:
    """Staged rows of every work item, read on the executors."""
    shapes = {s.name: source_shape(s) for s in rt.config.sources}
    cfg = rt.config.ingest
    limits = ReadLimits(cfg.max_record_bytes, cfg.quarantine_raw_chars, cfg.batch_rows)
    work = rt.spark.createDataFrame([(i.source, i.file, i.request_file) for i in items], WORK_SCHEMA)
    # One file per task: files are the unit of parallelism (demo and real dumps come sharded).
    work = work.repartition(max(1, min(len(items), 64)), "file")

    def read(batches):  # noqa: ANN001, ANN202 - the engine passes an iterator of Arrow batches
        return read_work_items(batches, shapes, limits)

    return work.mapInArrow(read, STAGED_SCHEMA)


def check_bad_fractions(rt: Runtime, per_file: list[dict], staged: DataFrame) -> None:
    """Fail when a source's quarantined share of records passes its limit."""
    problems = []
    for source in rt.config.sources:
        rows = [r for r in per_file if r["source"] == source.name]
        records = sum(r["records"] for r in rows)
        bad = sum(r["quarantined"] for r in rows)
        if records and bad / records > source.max_bad_fraction:
            worst = max(rows, key=lambda r: r["quarantined"])
            first = (
                staged.where((F.col("file") == worst["file"]) & F.col("error").isNotNull())
                .orderBy("line")
                .select("line", "error", "error_message")
                .limit(3)
                .collect()
            )
            listed = "; ".join(f"line {r.line}: {r.error}: {r.error_message}" for r in first)
            problems.append(
                f"source {source.name!r}: {bad} of {records} records quarantined "
                f"({bad / records:.1%} > max_bad_fraction {source.max_bad_fraction:.1%}); "
                f"worst file {worst['file']}: {listed}"
            )
    if problems:
        raise IngestError("ingest refused to land bad input:\n  " + "\n  ".join(problems))


def ingest(rt: Runtime) -> StageResult:
    tables = rt.tables
    done: set[str] = set()
    if tables.exists("bronze.ingested_files"):
        done = {r.file for r in tables.read("bronze.ingested_files").select("file").distinct().collect()}
    listed = [i for s in rt.config.sources for i in list_work_items(s)]
    items = [i for i in listed if i.file not in done]
    skipped = len(listed) - len(items)
    if not items:
        return StageResult(0, 0, details={"new_files": 0, "skipped_files": skipped})

    scratch = tables.scratch("ingest")
    try:
        read_staged(rt, items).write.mode("overwrite").parquet(scratch)
        staged = rt.spark.read.parquet(scratch)
        per_file = [
            r.asDict()
            for r in staged.groupBy("source", "file")
            .agg(
                F.sum(F.col("first_of_record").cast("long")).alias("records"),
                F.sum(F.col("error").isNull().cast("long")).alias("candidates"),
                F.sum(F.col("error").isNotNull().cast("long")).alias("quarantined"),
            )
            .collect()
        ]
        check_bad_fractions(rt, per_file, staged)

        run_id = F.lit(rt.run_id)
        generations = staged.where(F.col("error").isNull()).select(
            *[f.name for f in GENERATION_FIELDS], run_id.alias("ingest_run_id")
        )
        quarantine = staged.where(F.col("error").isNotNull()).select(
            "source", "file", "line", "error", "error_message", "raw", run_id.alias("ingest_run_id")
        )
        tables.write(generations, "bronze.generations", mode="append")
        tables.write(quarantine, "bronze.quarantine", mode="append")
        tables.write(files_frame(rt, items, per_file), "bronze.ingested_files", mode="append")
    finally:
        tables.drop_scratch(scratch)

    records = sum(r["records"] for r in per_file)
    candidates = sum(r["candidates"] for r in per_file)
    quarantined = sum(r["quarantined"] for r in per_file)
    return StageResult(
        rows_in=records,
        rows_out=candidates,
        rejected={"quarantined": quarantined} if quarantined else {},
        details={
            "new_files": len(items),
            "skipped_files": skipped,
            "input_bytes": sum(i.size for i in items),
            "records": records,
            "candidates": candidates,
            "quarantined": quarantined,
        },
    )


def files_frame(rt: Runtime, items: list[WorkItem], per_file: list[dict]) -> DataFrame:
    counts = {(r["source"], r["file"]): r for r in per_file}
    rows = []
    for item in items:
        response = counts.get((item.source, item.file), {})
        request = counts.get((item.source, item.request_file), {}) if item.request_file else {}
        rows.append(
            (
                item.source,
                item.file,
                item.request_file,
                item.size,
                int(response.get("records", 0)) + int(request.get("records", 0)),
                int(response.get("candidates", 0)),
                int(response.get("quarantined", 0)) + int(request.get("quarantined", 0)),
                rt.run_id,
            )
        )
    return rt.spark.createDataFrame(rows, INGESTED_FILES_SCHEMA)


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("ingest", ingest)


if __name__ == "__main__":
    stage_main("ingest", ingest)
