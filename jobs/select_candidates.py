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
        figures = ranked.agg(
            F.count(F.lit(1)).alias("candidates"),
            F.sum(F.col("eligible").cast("long")).alias("eligible"),
            F.sum(F.col("selected").cast("long")).alias("selected"),
        ).collect()[0]
    finally:
        tables.drop_scratch(scratch)

    reasons = {
        r["no_selection_reason"]: int(r["n"])
        for r in prompts.where(F.col("no_selection_reason").isNotNull())
        .groupBy("no_selection_reason")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    prompt_figures = prompts.agg(
        F.count(F.lit(1)).alias("prompts"),
        F.sum((F.col("n_selected") > 0).cast("long")).alias("with_selection"),
        F.sum(((F.col("n_correct") > 0) & (F.col("n_selected") == 0)).cast("long")).alias(
            "correct_not_selected"
        ),
    ).collect()[0]
    rl = tables.read("gold.rl_prompts").count()
    candidates_n, eligible, selected = (int(figures[k] or 0) for k in ("candidates", "eligible", "selected"))
    return StageResult(
        rows_in=candidates_n,
        rows_out=selected,
        rejected={"not_selected": eligible - selected} if eligible > selected else {},
        details={
            "prompts": int(prompt_figures["prompts"] or 0),
            "prompts_with_selection": int(prompt_figures["with_selection"] or 0),
            "prompts_with_correct_but_none_selected": int(prompt_figures["correct_not_selected"] or 0),
            "no_selection_reasons": reasons,
            "eligible_candidates": eligible,
            "rl_prompts": rl,
        },
    )


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("select", select)


if __name__ == "__main__":
    stage_main("select", select)
