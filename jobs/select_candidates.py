"""Stage ``select``: silver.candidates -> silver.selected, silver.prompts, gold.rl_prompts.

Rejection sampling per prompt (``transforms/selection.py``): among candidates
with no reject reason and an accepted verdict, ``all_correct`` or ``top_k``
by the configured keys, ties broken by ``xxhash64(seed, candidate_id)``.
The ranked candidates go to a scratch table first, so the three outputs read
one stored ranking instead of recomputing the windows three times.

Named ``select_candidates`` because ``jobs/`` comes first on ``sys.path``
under spark-submit, where a ``select.py`` would shadow the stdlib module.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.selection import (
    prompt_summary,
    rank_candidates,
    rl_prompt_pool,
    selected_candidates,
)

# Totals the stage reports, summed over the groups of its one silver.prompts aggregate.
SUMMED = ("prompts", "candidates", "eligible", "selected")


def select(rt: Runtime) -> StageResult:
    params = rt.config.select
    tables = rt.tables
    candidates = tables.read("silver.candidates")
    scratch = tables.scratch("select")
    try:
        rank_candidates(candidates, params, rt.config.seed).write.mode("overwrite").parquet(scratch)
        ranked = rt.spark.read.parquet(scratch)
        tables.write(selected_candidates(ranked), "silver.selected")
        tables.write(prompt_summary(ranked), "silver.prompts")
        prompts = tables.read("silver.prompts")
        # Dedup (a later stage) rewrites this table from silver.prompts and silver.prompt_status.
        tables.write(rl_prompt_pool(prompts, params), "gold.rl_prompts")
    finally:
        tables.drop_scratch(scratch)

    # One small aggregate over silver.prompts gives every figure (it holds the per-prompt counts).
    groups = (
        prompts.groupBy("no_selection_reason")
        .agg(
            F.count(F.lit(1)).alias("prompts"),
            F.sum("n_candidates").alias("candidates"),
            F.sum("n_eligible").alias("eligible"),
            F.sum("n_selected").alias("selected"),
            F.sum((F.col("n_correct") > 0).cast("long")).alias("with_correct"),
        )
        .collect()
    )
    total = {k: sum(int(g[k] or 0) for g in groups) for k in SUMMED}
    reasons = {g["no_selection_reason"]: int(g["prompts"]) for g in groups if g["no_selection_reason"]}
    correct_none_selected = sum(int(g["with_correct"] or 0) for g in groups if g["no_selection_reason"])
    not_selected = total["eligible"] - total["selected"]
    return StageResult(
        rows_in=total["candidates"],
        rows_out=total["selected"],
        rejected={"not_selected": not_selected} if not_selected > 0 else {},
        details={
            "prompts": total["prompts"],
            "prompts_with_selection": total["prompts"] - sum(reasons.values()),
            "prompts_with_correct_but_none_selected": correct_none_selected,
            "no_selection_reasons": reasons,
            "eligible_candidates": total["eligible"],
            "rl_prompts": tables.read("gold.rl_prompts").count(),
        },
    )


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("select", select)


if __name__ == "__main__":
    stage_main("select", select)
