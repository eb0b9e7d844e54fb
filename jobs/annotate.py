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
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.annotate import annotate_candidates, decide_annotate
from sftmix.transforms.code_verify import code_status_counts, verify_code
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


def annotate(rt: Runtime) -> StageResult:
    cfg = rt.config
    requiring = sorted(s.name for s in cfg.sources if s.require_verification)
    generations, judgments = judged_generations(rt, rt.tables.read("bronze.generations"))
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
    candidates = (
        generations.transform(annotate_candidates, cfg.annotate)
        .transform(verify_candidates, cfg.verify)
        .transform(verify_code, code_verify)
        .transform(decide_annotate, cfg.annotate)
        .transform(decide_verification, cfg.verify, requiring)
    )
    rt.tables.write(candidates, "silver.candidates")
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
    details: dict[str, Any] = {
        "verification": verification,
        "annotate_errors": errors,
        "code_verify": {"mode": code_verify.mode, "sources": runnable, "code_status": dict(sorted(code_status.items()))},
    }
    if judgments is not None:
        details["judgments"] = judgments
    return StageResult(rows_in=rows, rows_out=clean, rejected=rejected, details=details)


if __name__ == "__main__":
    stage_main("annotate", annotate)
