"""Stage ``annotate``: bronze.generations -> silver.candidates.

One pass computes every per-candidate signal (think/answer split, lengths,
language, scripts, code, paragraphs, repetition, truncation, and the answer
verification of ``transforms/verify.py``), then turns signals into
``reject_reasons`` with the thresholds of the config. Signals are stored
apart from decisions (STYLE.md, Dolma), so `sftmix whatif` can move a
threshold without running a model again.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.annotate import annotate_candidates, decide_annotate
from sftmix.transforms.verify import (
    decide_verification,
    summarize_verification,
    verification_counts,
    verify_candidates,
)


def annotate(rt: Runtime) -> StageResult:
    cfg = rt.config
    requiring = sorted(s.name for s in cfg.sources if s.require_verification)
    generations = rt.tables.read("bronze.generations")
    candidates = (
        generations.transform(annotate_candidates, cfg.annotate)
        .transform(verify_candidates, cfg.verify)
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
    details = {"verification": verification, "annotate_errors": errors}
    return StageResult(rows_in=rows, rows_out=clean, rejected=rejected, details=details)


if __name__ == "__main__":
    stage_main("annotate", annotate)
