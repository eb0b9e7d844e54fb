"""Stage ``ingest``: raw generation dumps -> bronze.generations + bronze.quarantine;
judgment files (``judgments:``) -> bronze.judgments + bronze.quarantine.

Steps: list each source's and judgment's files and drop those already
recorded in ``bronze.ingested_files`` (so a rerun adds nothing and new files
append); read the rest inside the engine (``jobs/raw_files.py``) into scratch
tables; check every source's and judgment's bad-record fraction (a wrong
field mapping must fail loudly, not yield an empty table); then append
candidates, judgments, quarantined records and the file list, and drop the
scratch tables. Judgments are joined to candidates later, in annotate: a
judgment file may arrive before or after the generations it judges. On Sail
with a local Delta lake the pool workers write the candidates' data files
into ``bronze.generations`` themselves (``stage_items``): the append is then
a commit of those files, made at the same point, and they are deleted if any
check fails.

Crash note: the appends are separate Delta commits, written in that order;
the file list goes last, so a crash before it makes the next run read those
files again (rows would repeat; `candidate_id` makes them findable, and a
repeated judgment row changes no value: annotate takes one per candidate).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs.raw_files import (
    ARROW_GENERATIONS,
    GENERATION_FIELDS,
    JUDGMENT_FIELDS,
    JUDGMENT_STAGED_SCHEMA,
    LANDED_SCHEMA,
    STAGED_SCHEMA,
    WORK_SCHEMA,
    Landing,
    ReadLimits,
    land_files,
    read_judgment_items,
    read_work_items,
)
from sftmix.jobs.runtime.config import ConfigError, JudgmentConfig, SourceConfig
from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.jobs.runtime.tables import DataFile, is_local_path, local_path
from sftmix.transforms import process_pool
from sftmix.transforms.judgments import JudgmentShape
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


def work_frame(
    rt: Runtime, items: list[WorkItem], one_task: bool = False
) -> tuple[DataFrame, dict[str, SourceShape], ReadLimits]:
    """The work items as a frame, with the sources' shapes and the read limits.

    One file per task: files are the unit of parallelism (demo and real dumps come sharded). With
    ``one_task``, a single task gets every file, largest first: for a task that hands the files to
    the process pool, whose workers are then the parallelism, and largest-first keeps them evenly
    busy to the end (hash-spread over tasks, the last big file could run alone).
    """
    shapes = {s.name: source_shape(s) for s in rt.config.sources}
    cfg = rt.config.ingest
    limits = ReadLimits(cfg.max_record_bytes, cfg.quarantine_raw_chars, cfg.batch_rows)
    if one_task:
        ordered = sorted(items, key=lambda i: (-i.size, i.file))
        work = rt.spark.createDataFrame([(i.source, i.file, i.request_file) for i in ordered], WORK_SCHEMA)
        return work.coalesce(1), shapes, limits
    work = rt.spark.createDataFrame([(i.source, i.file, i.request_file) for i in items], WORK_SCHEMA)
    return work.repartition(max(1, min(len(items), 64)), "file"), shapes, limits


def read_staged(rt: Runtime, items: list[WorkItem]) -> DataFrame:
    """Staged rows of every work item, read on the executors."""
    work, shapes, limits = work_frame(rt, items)

    def read(batches):  # noqa: ANN001, ANN202 - the engine passes an iterator of Arrow batches
        return read_work_items(batches, shapes, limits)

    return work.mapInArrow(read, STAGED_SCHEMA)


def stage_items(rt: Runtime, items: list[WorkItem], scratch: str) -> list[DataFile] | None:
    """Read every work item: staged rows to Parquet under ``scratch``, and where it can, the
    candidate rows straight into ``bronze.generations``' directory.

    Where UDFs share one GIL (a process pool is configured: Sail), ``scratch`` is local and the
    table is a local Delta table, pool workers parse the files and write the candidate rows as the
    table's data files themselves (``raw_files.Landing``): every core parses and the rows are
    written once. Returns those files, for the caller to commit after its checks (or delete).
    Elsewhere the engine writes all of ``read_staged`` to scratch and the caller writes the table
    from it (None). Both land the same rows (tests/test_ingest.py runs either way).
    """
    table = "bronze.generations"
    if process_pool.pool_size() == 0 or not is_local_path(scratch) or not rt.tables.accepts_files(table):
        read_staged(rt, items).write.mode("overwrite").parquet(scratch)
        return None
    directory = local_path(scratch)
    table_dir = local_path(rt.tables.location(table))
    os.makedirs(directory, exist_ok=True)
    os.makedirs(table_dir, exist_ok=True)
    landing = Landing(directory, table_dir, rt.run_id, rt.config.storage.target_file_bytes)
    work, shapes, limits = work_frame(rt, items, one_task=True)

    def land(batches):  # noqa: ANN001, ANN202 - the engine passes an iterator of Arrow batches
        return land_files(batches, shapes, limits, landing)

    reported = work.mapInArrow(land, LANDED_SCHEMA).collect()  # one small row per data file
    files = [DataFile(r.data_file, int(r.bytes), int(r.rows)) for r in reported if r.data_file]
    missing = sorted({i.file for i in items} - {r.file for r in reported})
    if missing:
        rt.tables.remove_files(table, files)
        raise IngestError(f"the pool read {len(items) - len(missing)} of {len(items)} files; missing: {missing[:3]}")
    return files


def list_judgment_items(judgment: JudgmentConfig) -> list[WorkItem]:
    files = sorted({path for pattern in judgment.paths for path in glob.glob(pattern, recursive=True)})
    return [WorkItem(judgment.name, f, None, os.path.getsize(f)) for f in files if os.path.isfile(f)]


def judgment_shape(judgment: JudgmentConfig) -> JudgmentShape:
    return JudgmentShape(
        judgment.name, judgment.key, tuple(sorted(judgment.fields.items())), judgment.source,
        judgment.custom_id_template,
    )


def read_judgments_staged(rt: Runtime, items: list[WorkItem]) -> DataFrame:
    """Staged rows of every judgment file (one per record), read on the executors."""
    shapes = {j.name: judgment_shape(j) for j in rt.config.judgments}
    formats = {j.name: j.format for j in rt.config.judgments}
    cfg = rt.config.ingest
    limits = ReadLimits(cfg.max_record_bytes, cfg.quarantine_raw_chars, cfg.batch_rows)
    work = rt.spark.createDataFrame([(i.source, i.file, None) for i in items], WORK_SCHEMA)
    work = work.repartition(max(1, min(len(items), 64)), "file")

    def read(batches):  # noqa: ANN001, ANN202 - the engine passes an iterator of Arrow batches
        return read_judgment_items(batches, shapes, formats, limits)

    return work.mapInArrow(read, JUDGMENT_STAGED_SCHEMA)


def check_bad_fractions(
    rt: Runtime, per_file: list[dict], staged: DataFrame, limits: dict[str, float] | None = None
) -> None:
    """Fail when a source's (or judgment's) quarantined share of records passes its limit."""
    if limits is None:
        limits = {s.name: s.max_bad_fraction for s in rt.config.sources}
    problems = []
    for name, max_bad_fraction in limits.items():
        rows = [r for r in per_file if r["source"] == name]
        records = sum(r["records"] for r in rows)
        bad = sum(r["quarantined"] for r in rows)
        if records and bad / records > max_bad_fraction:
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
                f"source {name!r}: {bad} of {records} records quarantined "
                f"({bad / records:.1%} > max_bad_fraction {max_bad_fraction:.1%}); "
                f"worst file {worst['file']}: {listed}"
            )
    if problems:
        raise IngestError("ingest refused to land bad input:\n  " + "\n  ".join(problems))


def _per_file(staged: DataFrame, owner: str = "source") -> list[dict]:
    """Records, landed rows and quarantined records per (owner, file); ``owner`` is reported as ``source``."""
    return [
        r.asDict()
        for r in staged.groupBy(F.col(owner).alias("source"), "file")
        .agg(
            F.sum(F.col("first_of_record").cast("long")).alias("records"),
            F.sum(F.col("error").isNull().cast("long")).alias("candidates"),
            F.sum(F.col("error").isNotNull().cast("long")).alias("quarantined"),
        )
        .collect()
    ]


def _quarantine(staged: DataFrame, run_id: str) -> DataFrame:
    return staged.where(F.col("error").isNotNull()).select(
        "source", "file", "line", "error", "error_message", "raw", F.lit(run_id).alias("ingest_run_id")
    )


def ingest(rt: Runtime) -> StageResult:
    tables = rt.tables
    done: set[str] = set()
    if tables.exists("bronze.ingested_files"):
        done = {r.file for r in tables.read("bronze.ingested_files").select("file").distinct().collect()}
    listed = [i for s in rt.config.sources for i in list_work_items(s)]
    items = [i for i in listed if i.file not in done]
    # Judgment files are listed in bronze.ingested_files under the judgment's name, so reruns skip them too.
    judgment_listed = [i for j in rt.config.judgments for i in list_judgment_items(j)]
    judgment_items = [i for i in judgment_listed if i.file not in done]
    skipped = len(listed) + len(judgment_listed) - len(items) - len(judgment_items)
    if not items and not judgment_items:
        return StageResult(0, 0, details={"new_files": 0, "skipped_files": skipped})

    scratch = tables.scratch("ingest")
    judgment_scratch = tables.scratch("ingest-judgments")
    per_file: list[dict] = []
    judgment_files: list[dict] = []
    landed: list[DataFile] | None = None  # data files the pool wrote, not yet committed
    try:
        # Read and check everything first: nothing lands when any source or judgment is too broken.
        if items:
            landed = stage_items(rt, items, scratch)
            staged = rt.spark.read.parquet(scratch)
            per_file = _per_file(staged)
            check_bad_fractions(rt, per_file, staged)
            if landed is not None:
                in_files, counted = sum(f.rows for f in landed), sum(r["candidates"] for r in per_file)
                if in_files != counted:
                    raise IngestError(f"the data files hold {in_files} candidates, the staged rows count {counted}")
        if judgment_items:
            read_judgments_staged(rt, judgment_items).write.mode("overwrite").parquet(judgment_scratch)
            judged = rt.spark.read.parquet(judgment_scratch)
            # A judgment row's `source` is its candidate's source; the file belongs to the judgment.
            judgment_files = _per_file(judged, owner="judgment")
            limits = {j.name: j.max_bad_fraction for j in rt.config.judgments}
            check_bad_fractions(rt, judgment_files, judged, limits)

        if items:
            if landed is None:
                generations = staged.where(F.col("error").isNull()).select(
                    *[f.name for f in GENERATION_FIELDS], F.lit(rt.run_id).alias("ingest_run_id")
                )
                tables.write(generations, "bronze.generations", mode="append")
            else:
                tables.append_files("bronze.generations", landed, ARROW_GENERATIONS)
                landed = None  # committed: part of the table now
            tables.write(_quarantine(staged, rt.run_id), "bronze.quarantine", mode="append")
        if judgment_items:
            judgments = judged.where(F.col("error").isNull()).select(
                *[f.name for f in JUDGMENT_FIELDS], F.lit(rt.run_id).alias("ingest_run_id")
            )
            tables.write(judgments, "bronze.judgments", mode="append")
            tables.write(_quarantine(judged, rt.run_id), "bronze.quarantine", mode="append")
        # Last, so a crash before it makes the next run read these files again (crash note above).
        tables.write(
            files_frame(rt, items + judgment_items, per_file + judgment_files), "bronze.ingested_files", mode="append"
        )
    finally:
        if landed:
            tables.remove_files("bronze.generations", landed)
        tables.drop_scratch(scratch)
        tables.drop_scratch(judgment_scratch)

    records = sum(r["records"] for r in per_file)
    candidates = sum(r["candidates"] for r in per_file)
    quarantined = sum(r["quarantined"] for r in per_file)
    details = {
        "new_files": len(items) + len(judgment_items),
        "skipped_files": skipped,
        "input_bytes": sum(i.size for i in items + judgment_items),
        "records": records,
        "candidates": candidates,
        "quarantined": quarantined,
    }
    if judgment_items:
        # Judgment records are not candidates: they stay out of rows_in/rows_out and are reported here.
        details["judgments"] = {
            "files": len(judgment_items),
            "records": sum(r["records"] for r in judgment_files),
            "landed": sum(r["candidates"] for r in judgment_files),
            "quarantined": sum(r["quarantined"] for r in judgment_files),
        }
    return StageResult(
        rows_in=records,
        rows_out=candidates,
        rejected={"quarantined": quarantined} if quarantined else {},
        details=details,
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
