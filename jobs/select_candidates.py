"""Stage ``select``: silver.candidates -> silver.selected, silver.prompts, gold.rl_prompts.

Rejection sampling per prompt (``transforms/selection.py``): among candidates
with no reject reason and an accepted verdict, ``all_correct`` or ``top_k``
by the configured keys, ties broken by ``xxhash64(seed, candidate_id)``.
The ranking (ids and ranks only) goes to a scratch table first, so the outputs
join one stored ranking to the candidates instead of recomputing the windows.

Incremental: silver.prompts keeps each prompt's ``candidates_key`` (a hash
of its candidates' ids, judgment keys and annotate settings) and the
``select_config`` (a hash of the select settings and the seed). A run
re-ranks only the prompts whose key changed or is new (their candidates were
annotated again or added), merges their rows into silver.prompts and
silver.selected (a prompt's old selection is deleted first: a new candidate
may displace one), and deletes prompts that have no candidates any more.
``--full``, a missing table or other select settings rank every prompt.

Named ``select_candidates`` because ``jobs/`` comes first on ``sys.path``
under spark-submit, where a ``select.py`` would shadow the stdlib module.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sftmix
from sftmix.jobs.runtime.config import settings_hash
from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.selection import (
    PROMPT_KEY,
    candidate_ranking,
    candidates_key,
    prompt_summary,
    rl_prompt_pool,
    selected_candidates,
    with_ranking,
)

# Totals the stage reports, summed over the groups of its one silver.prompts aggregate.
SUMMED = ("prompts", "candidates", "eligible", "selected")


log = logging.getLogger("sftmix")


def select_config(rt: Runtime) -> str:
    settings = {"select": dataclasses.asdict(rt.config.select), "seed": rt.config.seed, "sftmix": sftmix.__version__}
    return settings_hash(settings)


def incremental_prompts(rt: Runtime, keys: DataFrame, config: str) -> tuple[DataFrame, DataFrame] | str:
    """(prompts to rank again, prompts gone) as PROMPT_KEY rows, or why every prompt is ranked."""
    if rt.full_rebuild:
        return "--full"
    if not rt.tables.exists("silver.prompts") or not rt.tables.exists("silver.selected"):
        return "there is no silver.prompts yet"
    previous = rt.tables.read("silver.prompts")
    if not {"candidates_key", "select_config"} <= set(previous.columns):
        return "silver.prompts has no candidates_key (an older sftmix wrote it)"
    configs = [r[0] for r in previous.select("select_config").distinct().limit(2).collect()]
    if configs and configs != [config]:
        return "the select settings or the seed changed"
    known = previous.select(*PROMPT_KEY, "candidates_key")
    touched = keys.join(known, [*PROMPT_KEY, "candidates_key"], "left_anti").select(*PROMPT_KEY)
    gone = known.select(*PROMPT_KEY).join(keys.select(*PROMPT_KEY), PROMPT_KEY, "left_anti")
    return touched, gone


def stored_ranking(rt: Runtime, candidates: DataFrame, scratch: str) -> DataFrame:
    """``candidates`` with their ranking, the ranking computed once and stored narrow in ``scratch``.

    Only the ids and ranks are stored (the window runs once whatever reads it); each output joins
    them to the candidates it reads. Storing every ranked candidate with its texts cost a second
    full write of silver.candidates (3.2M rows, ~20 GB at full size).
    """
    ranking = candidate_ranking(candidates, rt.config.select, rt.config.seed)
    ranking.write.mode("overwrite").parquet(scratch)
    # With the schema: Sail writes no file for an empty frame, and a bare read finds no columns.
    return with_ranking(candidates, rt.spark.read.schema(ranking.schema).parquet(scratch))


def with_keys(summary: DataFrame, keys: DataFrame, config: str) -> DataFrame:
    return summary.join(keys, PROMPT_KEY).select("*", F.lit(config).alias("select_config"))


def select(rt: Runtime) -> StageResult:
    params = rt.config.select
    tables = rt.tables
    candidates = tables.read("silver.candidates")
    config = select_config(rt)
    scratch = tables.scratch("select")
    keys_path = tables.scratch("select-keys")
    try:
        # One narrow aggregate over all candidates, stored: both paths and the comparison read it.
        keyed = candidates_key(candidates)
        keyed.write.mode("overwrite").parquet(keys_path)
        # With the schema: Sail writes no file for an empty frame, and a bare read finds no columns.
        keys = rt.spark.read.schema(keyed.schema).parquet(keys_path)
        plan = incremental_prompts(rt, keys, config)
        if isinstance(plan, str):
            log.info("select: ranking every prompt: %s", plan)
            ranked = stored_ranking(rt, candidates, scratch)
            tables.write(selected_candidates(ranked), "silver.selected")
            tables.write(with_keys(prompt_summary(ranked, candidates), keys, config), "silver.prompts")
            incremental: dict[str, Any] = {"mode": "full", "why": plan}
        else:
            incremental = select_touched(rt, candidates, keys, config, plan, scratch)
        prompts = tables.read("silver.prompts")
        # Dedup (a later stage) rewrites this table from silver.prompts and silver.prompt_status.
        tables.write(rl_prompt_pool(prompts, params), "gold.rl_prompts")
    finally:
        tables.drop_scratch(scratch)
        tables.drop_scratch(keys_path)

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
            "incremental": incremental,
            "prompts": total["prompts"],
            "prompts_with_selection": total["prompts"] - sum(reasons.values()),
            "prompts_with_correct_but_none_selected": correct_none_selected,
            "no_selection_reasons": reasons,
            "eligible_candidates": total["eligible"],
            "rl_prompts": tables.read("gold.rl_prompts").count(),
        },
    )


def select_touched(
    rt: Runtime,
    candidates: DataFrame,
    keys: DataFrame,
    config: str,
    plan: tuple[DataFrame, DataFrame],
    scratch: str,
) -> dict[str, Any]:
    """Rank the touched prompts again and merge them into silver.selected and silver.prompts."""
    tables = rt.tables
    touched, gone = plan
    prompts_path = tables.scratch("select-touched")
    try:
        both = touched.unionByName(gone)
        both.write.mode("overwrite").parquet(prompts_path)
        changed = rt.spark.read.schema(both.schema).parquet(prompts_path)
        counts = changed.count()
        ranked = stored_ranking(rt, candidates.join(changed, PROMPT_KEY, "left_semi"), scratch)
        old_selection = tables.read("silver.selected").join(changed, PROMPT_KEY, "left_semi").select("candidate_id")
        tables.merge(selected_candidates(ranked), "silver.selected", ["candidate_id"], delete=old_selection)
        summary = with_keys(prompt_summary(ranked, candidates), keys, config)
        tables.merge(summary, "silver.prompts", list(PROMPT_KEY), delete=changed)
    finally:
        tables.drop_scratch(prompts_path)
    log.info("select: incremental: %d prompts ranked again (new, changed or gone)", counts)
    return {"mode": "incremental", "prompts_ranked": counts}


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("select", select)


if __name__ == "__main__":
    stage_main("select", select)
