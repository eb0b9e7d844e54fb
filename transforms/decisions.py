"""``silver.decisions``: every candidate once, with all its reasons from every stage, and ``in_mix``.

Narrow on purpose (ids, stratum, reasons, flags; no text) so that the last
stages never rewrite the text table. Reasons added here to the candidate-level
ones of ``silver.candidates``:

- ``not_selected``: a clean candidate (no candidate-level reason) that select
  did not keep; a candidate that already has a reason is explained by it.
- ``duplicate_prompt`` / ``near_duplicate`` / ``contaminated``: the prompt's
  ``dedup_status``, given to every candidate of that prompt.
- ``not_sampled``: selected, clean, prompt kept, but not drawn by the mix
  (its stratum was full, or not in the mix config).

So a candidate has no reason exactly when it is in the mix.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def _empty() -> F.Column:
    # Built per call: a module-level Column needs an active session at import time (classic Spark).
    return F.array().cast("array<string>")


def build_decisions(
    candidates: DataFrame,
    selected: DataFrame,
    prompt_status: DataFrame | None,
    sft_mix: DataFrame,
    cold_start: DataFrame,
) -> DataFrame:
    base = candidates.select(
        "candidate_id",
        "source",
        "prompt_id",
        "kind",
        "domain",
        F.coalesce(F.col("reject_reasons"), _empty()).alias("_base"),
    )
    chosen = selected.select("candidate_id").distinct().withColumn("_selected", F.lit(True))
    drawn = sft_mix.groupBy("candidate_id").agg(F.count(F.lit(1)).cast("int").alias("mix_copies"))
    cold = cold_start.select("candidate_id").distinct().withColumn("in_cold_start", F.lit(True))
    rows = (
        base.join(chosen, "candidate_id", "left")
        .join(drawn, "candidate_id", "left")
        .join(cold, "candidate_id", "left")
    )
    if prompt_status is not None:
        status = prompt_status.select("source", "prompt_id", "dedup_status").distinct()
        rows = rows.join(status, ["source", "prompt_id"], "left")
    else:
        rows = rows.withColumn("dedup_status", F.lit(None).cast("string"))

    selected_flag = F.coalesce(F.col("_selected"), F.lit(False))
    clean = F.size("_base") == 0
    dropped = F.col("dedup_status").isNotNull() & (F.col("dedup_status") != "kept")
    in_mix = F.col("mix_copies").isNotNull()
    reasons = F.array_distinct(
        F.concat(
            F.col("_base"),
            F.when(~selected_flag & clean, F.array(F.lit("not_selected"))).otherwise(_empty()),
            F.when(dropped, F.array(F.col("dedup_status"))).otherwise(_empty()),
            F.when(selected_flag & clean & ~dropped & ~in_mix, F.array(F.lit("not_sampled"))).otherwise(
                _empty()
            ),
        )
    )
    return rows.select(
        "candidate_id",
        "source",
        "prompt_id",
        "kind",
        "domain",
        reasons.alias("reject_reasons"),
        in_mix.alias("in_mix"),
        F.coalesce(F.col("mix_copies"), F.lit(0)).alias("mix_copies"),
        F.coalesce(F.col("in_cold_start"), F.lit(False)).alias("in_cold_start"),
        F.coalesce(F.col("dedup_status"), F.lit("kept")).alias("dedup_status"),
    )
