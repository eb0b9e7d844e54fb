"""Stage ``annotate``: bronze.generations -> silver.candidates.

One pass computes every per-candidate signal (think/answer split, lengths,
language, scripts, code, paragraphs, repetition, truncation, and the answer
verification of ``transforms/verify.py``), then turns signals into
``reject_reasons`` with the thresholds of the config. Signals are stored
apart from decisions (STYLE.md, Dolma), so `sftmix whatif` can move a
threshold without running a model again.

Judgments (``bronze.judgments``, from judgment files) are resolved against
the candidates first: every judgment row with its status (applied,
superseded, unmatched) goes to ``silver.judgments``, and the applied values
replace the generation's own verdict / test counts / judge score before
verification (precedence: ``transforms/judgments.py``). Judgments that match
no candidate are counted in the stage metrics and logged, never dropped
silently.

Code candidates whose prompt carries tests (a source mapping ``fields.tests``)
and that have no verdict from outside are then run against those tests in the
bwrap sandbox (``transforms/code_verify.py``, config ``code_verify``), between
verification and its decisions, so ``incorrect``/``unverified``, pass rates
and selection treat sandbox verdicts like any other. Where the sandbox cannot
start, the stage stops with ``SandboxUnavailable`` saying why, unless
``code_verify.mode: external``; it never runs code unsandboxed.

Incremental: every row carries ``annotate_config`` (a hash of the settings
its signals and decisions came from: annotate, verify, code_verify, the
sources that require verification, the judgment order, the sftmix version)
and ``judgment_key`` (a hash of the judgment values applied to it). A run
annotates only the candidates of bronze whose (candidate_id, judgment_key)
pair silver.candidates lacks: new candidates, and old ones whose judgments
changed (a new judgment file). They are merged into silver.candidates on
``candidate_id`` (Delta ``MERGE``); rows whose candidate left bronze are
deleted. Everything is annotated again (an overwrite) with ``--full``, when
silver.candidates is missing or was written with another ``annotate_config``
(a threshold or model changed, a new sftmix version), or when it lacks these
columns. Annotation is a function of the row and the config, so both paths
give the same table (tests/test_incremental.py).

Commits: the candidates to annotate are cut into slices of about
``annotate.commit_rows`` (by a hash of ``candidate_id``), each written as its
own commit (the first full-path slice overwrites, the rest append or merge).
A full-size annotate runs for hours; a crash or a stopped job then loses one
slice, and the next run takes the incremental path and annotates only the
candidates silver.candidates still lacks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

import sftmix
from sftmix.jobs.runtime.config import settings_hash
from sftmix.jobs.runtime.context import Phases, Runtime, StageResult, stage_main
from sftmix.transforms.annotate import annotate_candidates, decide_annotate
from sftmix.transforms.code_verify import CodeVerifyParams, code_status_counts, verify_code
from sftmix.transforms.judgments import (
    JudgmentParams,
    apply_judgments,
    judgment_counts,
    judgment_values,
    resolve_judgments,
    summarize_judgments,
)
from sftmix.transforms.verify import (
    decide_verification,
    summarize_verification,
    verification_counts,
    verify_candidates,
)

log = logging.getLogger(__name__)


def judged_generations(rt: Runtime, generations: DataFrame) -> tuple[DataFrame, dict[str, Any] | None]:
    """Generations with judgment values merged in, and the judgment metrics (None without judgments)."""
    if not rt.tables.exists("bronze.judgments"):
        return apply_judgments(generations, None), None
    params = JudgmentParams(priority=[j.name for j in rt.config.judgments])
    resolved = resolve_judgments(rt.tables.read("bronze.judgments"), generations.select("candidate_id"))
    rt.tables.write(resolved, "silver.judgments")
    resolved = rt.tables.read("silver.judgments")
    judged = resolved.where(F.col("status") == "applied").select("candidate_id").distinct().count()
    summary = summarize_judgments([r.asDict() for r in judgment_counts(resolved).collect()], judged)
    if summary["unmatched"]:
        log.warning(
            "annotate: %d judgment rows match no candidate (silver.judgments, status 'unmatched'): %s",
            summary["unmatched"],
            {name: c["unmatched"] for name, c in summary["by_judgment"].items() if c["unmatched"]},
        )
    return generations.transform(apply_judgments, judgment_values(resolved, params)), summary


def annotate_config(rt: Runtime, code_verify: CodeVerifyParams, requiring: list[str]) -> str:
    """A hash of every setting a silver.candidates row depends on (besides its bronze row and judgments)."""
    cfg = rt.config
    settings = {
        # commit_rows only decides how the rows are committed, not what they hold.
        "annotate": {k: v for k, v in dataclasses.asdict(cfg.annotate).items() if k != "commit_rows"},
        "verify": dataclasses.asdict(cfg.verify),
        "code_verify": dataclasses.asdict(code_verify),
        "requiring": requiring,
        "judgments": [j.name for j in cfg.judgments],
        "sftmix": sftmix.__version__,
    }
    return settings_hash(settings)


def judgment_key() -> Column:
    """A hash of the judgment-fed values of a judged generation: it changes when a judgment does."""
    # Nulls are hashed as a flag plus a typed stand-in: Sail 0.7 panics hashing a null read from a table.
    values = {"external_verdict": F.lit(""), "tests_passed": F.lit(0), "tests_total": F.lit(0), "judge_score": F.lit(0.0)}
    parts = [p for c, stand_in in values.items() for p in (F.col(c).isNull(), F.coalesce(F.col(c), stand_in))]
    return F.xxhash64(*parts, F.concat_ws("\x1f", F.col("judged_by")))


def slice_of(index: int, slices: int) -> Column:
    """Rows of slice ``index`` of ``slices``, by a hash of candidate_id (stable across runs and engines)."""
    return F.pmod(F.xxhash64("candidate_id"), F.lit(slices)) == index


def incremental_inputs(rt: Runtime, keyed: DataFrame, planned: DataFrame, config: str) -> tuple[DataFrame, DataFrame] | str:
    """(generations to annotate, candidate ids to delete) for an incremental run, or why it must be full.

    ``keyed``: the judged generations with their keys; ``planned``: the full annotation plan (never
    run here: only its columns are compared with the table's).
    """
    if rt.full_rebuild:
        return "--full"
    if not rt.tables.exists("silver.candidates"):
        return "there is no silver.candidates yet"
    existing = rt.tables.read("silver.candidates")
    if set(existing.columns) != set(planned.columns):
        return "silver.candidates has other columns (an older sftmix or ingest wrote it)"
    configs = [r[0] for r in existing.select("annotate_config").distinct().limit(2).collect()]
    if configs and configs != [config]:
        return f"the annotate settings changed (silver.candidates: {', '.join(map(str, configs))}; now: {config})"
    known = existing.select("candidate_id", F.col("judgment_key").alias("_known_key"))
    # (a left join and a filter: Sail 0.7 panicked on this left_anti join over two keys)
    todo = keyed.join(known, "candidate_id", "left").where(
        F.col("_known_key").isNull() | (F.col("_known_key") != F.col("judgment_key"))
    ).drop("_known_key")
    gone = existing.select("candidate_id").join(keyed.select("candidate_id"), "candidate_id", "left_anti")
    return todo, gone


def annotate(rt: Runtime) -> StageResult:
    cfg = rt.config
    requiring = sorted(s.name for s in cfg.sources if s.require_verification)
    phases = Phases()  # judgments, planning, annotating + writing, figures
    generations, judgments = judged_generations(rt, rt.tables.read("bronze.generations"))
    phases.done("judgments_s")
    if "tests" not in generations.columns:
        # A lake ingested before sources could map tests: nothing for the sandbox to run. Said loudly,
        # since a source that requires verification then ends `unverified`.
        mapping = sorted(s.name for s in cfg.sources if "tests" in s.fields)
        if mapping and cfg.code_verify.mode == "sandbox":
            log.warning(
                "annotate: bronze.generations has no `tests` column, so sources %s get no sandbox verdicts; "
                "it was ingested before sources could map tests: remove <storage.root>/bronze and ingest again",
                mapping,
            )
        generations = generations.withColumn("tests", F.lit(None).cast("string"))
    code_verify = cfg.code_verify
    listed = set(code_verify.sources or [s.name for s in cfg.sources])
    runnable = [s.name for s in cfg.sources if "tests" in s.fields and s.name in listed]
    if code_verify.mode == "sandbox" and not runnable:
        # No source maps tests: nothing could run, so neither probe the sandbox nor pass every row
        # through Python for it (the columns are still added, null).
        code_verify = dataclasses.replace(code_verify, mode="external")
    config = annotate_config(rt, code_verify, requiring)
    keyed = generations.select("*", F.lit(config).alias("annotate_config"), judgment_key().alias("judgment_key"))

    def annotated(df: DataFrame) -> DataFrame:
        return (
            df.transform(annotate_candidates, cfg.annotate)
            .transform(verify_candidates, cfg.verify)
            .transform(verify_code, code_verify)
            .transform(decide_annotate, cfg.annotate)
            .transform(decide_verification, cfg.verify, requiring)
        )

    planned = annotated(keyed)
    inputs = incremental_inputs(rt, keyed, planned, config)
    phases.done("plan_s")
    if isinstance(inputs, str):
        slices = math.ceil(rt.tables.read("bronze.generations").count() / cfg.annotate.commit_rows) or 1
        log.info("annotate: annotating every candidate (%d commits): %s", slices, inputs)
        for index in range(slices):
            part = annotated(keyed.where(slice_of(index, slices))) if slices > 1 else planned
            rt.tables.write(part, "silver.candidates", mode="append" if index else "overwrite")
            if slices > 1:
                log.info("annotate: slice %d of %d committed", index + 1, slices)
        incremental: dict[str, Any] = {"mode": "full", "why": inputs, "commits": slices}
    else:
        todo, gone = inputs
        scratch = rt.tables.scratch("annotate-todo")
        try:
            # The ids to annotate, narrow, stored once: counted, then joined back to the generations.
            narrow = todo.select("candidate_id", "judgment_key")
            narrow.write.mode("overwrite").parquet(scratch)
            # With the schema: Sail writes no file for an empty frame (nothing new), and a bare read finds no columns.
            todo_ids = rt.spark.read.schema(narrow.schema).parquet(scratch)
            annotating = todo_ids.count()
            phases.done("find_new_s")
            slices = math.ceil(annotating / cfg.annotate.commit_rows) or 1
            log.info("annotate: incremental: %d new or re-judged candidates to annotate (%d commits)",
                     annotating, slices)
            for index in range(slices):
                ids = todo_ids.where(slice_of(index, slices)) if slices > 1 else todo_ids
                fresh = annotated(keyed.join(ids, ["candidate_id", "judgment_key"], "left_semi"))
                rt.tables.merge(fresh, "silver.candidates", ["candidate_id"], delete=None if index else gone)
        finally:
            rt.tables.drop_scratch(scratch)
        incremental = {"mode": "incremental", "annotated": annotating, "commits": slices}
    phases.done("annotate_and_write_s")
    written = rt.tables.read("silver.candidates")
    rows = written.count()
    rejected = {
        r["reason"]: r["n"]
        for r in written.select(F.explode("reject_reasons").alias("reason")).groupBy("reason").agg(
            F.count("*").alias("n")
        ).collect()
    }
    clean = written.where(F.size("reject_reasons") == 0).count()
    # Verdicts, verifiers and the share of reference comparisons each path settled (cheap / cache / math_verify).
    verification = summarize_verification([r.asDict() for r in verification_counts(written).collect()])
    # Rows whose signal pass raised or timed out (reason `annotate_failed`, message in annotate_error).
    errors = written.where(F.col("annotate_error").isNotNull()).count()
    # Code rows the sandbox ran, by status (pass, fail, timeout, ...); {} with code_verify.mode external.
    code_status = {r["code_status"]: r["rows"] for r in code_status_counts(written).collect()}
    if incremental["mode"] == "incremental":
        incremental["reused"] = rows - incremental["annotated"]
    phases.done("figures_s")
    details: dict[str, Any] = {
        "incremental": incremental,
        "phases": phases.seconds,
        "verification": verification,
        "annotate_errors": errors,
        "code_verify": {"mode": code_verify.mode, "sources": runnable, "code_status": dict(sorted(code_status.items()))},
    }
    if judgments is not None:
        details["judgments"] = judgments
    return StageResult(rows_in=rows, rows_out=clean, rejected=rejected, details=details)


if __name__ == "__main__":
    stage_main("annotate", annotate)
