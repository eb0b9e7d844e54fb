"""Stage ``mix``: silver.selected -> gold.sft_mix, gold.cold_start, ops.mix_plan, silver.decisions.

Steps: the eligible pool (selected, clean, prompt kept by dedup); its size per
stratum (a small aggregate); the plan (exact quotas, shortfall policy; a
``fail`` raises here, before anything is written); the draw in hash order and
the chat rendering into ``gold.sft_mix``; the cold-start set; then
``silver.decisions``, whose counts are checked against the mix before the
stage reports. ``silver.prompt_status`` may be missing (dedup not run): every
prompt then counts as kept, and the log says so.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.cold_start import cold_start_scores, pick_cold_start, render_cold_start
from sftmix.transforms.decisions import build_decisions
from sftmix.transforms.mix import cutoff_rows, draw_mix, mix_pool, render_sft, with_sample_key
from sftmix.transforms.mix_plan import Stratum, StratumPlan, format_plan, plan_mix

log = logging.getLogger("sftmix")

MIX_PLAN_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("dataset", T.StringType()),  # sft_mix | cold_start
        T.StructField("kind", T.StringType()),
        T.StructField("domain", T.StringType()),
        T.StructField("weight", T.DoubleType()),
        T.StructField("asked", T.LongType()),
        T.StructField("available", T.LongType()),
        T.StructField("taken", T.LongType()),
        T.StructField("upsampled", T.LongType()),
        T.StructField("short", T.LongType()),
        T.StructField("policy", T.StringType()),
    ]
)
CHOSEN_SCHEMA = T.StructType(
    [
        T.StructField("candidate_id", T.StringType()),
        T.StructField("readability", T.DoubleType()),
        T.StructField("cold_start_rank", T.IntegerType()),
        T.StructField("sample_key", T.LongType()),
    ]
)
PARTIAL_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),
        T.StructField("domain", T.StringType()),
        T.StructField("extra_rows", T.LongType()),
    ]
)


class MixCountError(RuntimeError):
    """The written tables do not match the plan: a bug, never a data problem."""


def read_prompt_status(rt: Runtime) -> DataFrame | None:
    if rt.tables.exists("silver.prompt_status"):
        return rt.tables.read("silver.prompt_status")
    log.warning("mix: silver.prompt_status is missing (dedup not run): every prompt counts as kept")
    return None


def strata_counts(df: DataFrame) -> dict[Stratum, int]:
    """Rows per (kind, domain): a small aggregate; a null domain shows as ''."""
    rows = df.groupBy("kind", "domain").agg(F.count(F.lit(1)).alias("n")).collect()
    return {(str(r["kind"]), "" if r["domain"] is None else str(r["domain"])): int(r["n"]) for r in rows}


def find_cutoffs(rt: Runtime, pool: DataFrame, plans: list[StratumPlan]) -> dict[Stratum, tuple[int, str]]:
    partial = [(p.kind, p.domain, p.extra_rows) for p in plans if p.extra_rows > 0]
    if not partial:
        return {}
    rows = cutoff_rows(pool, rt.spark.createDataFrame(partial, PARTIAL_SCHEMA)).collect()
    return {(r["kind"], r["domain"]): (int(r["sample_key"]), str(r["candidate_id"])) for r in rows}


def build_sft_mix(rt: Runtime, selected: DataFrame, status: DataFrame | None, seed: int) -> list[StratumPlan]:
    params = rt.config.mix
    pool = with_sample_key(mix_pool(selected, status), seed)
    asked, weights = params.asked()
    plans = plan_mix(
        asked,
        weights,
        strata_counts(pool),
        params.shortfall,
        params.upsample,
        params.max_upsample_factor,
        params.allow_short_total,
    )
    log.info("mix plan (seed %d, shortfall %s):\n%s", seed, params.shortfall, format_plan(plans))
    drawn = draw_mix(pool, plans, find_cutoffs(rt, pool, plans))
    # Its row count is checked with silver.decisions (copies add up to the plan's total).
    rt.tables.write(drawn.transform(render_sft, params), "gold.sft_mix")
    return plans


def build_cold_start(
    rt: Runtime, candidates: DataFrame, status: DataFrame | None, seed: int
) -> list[StratumPlan]:
    params = rt.config.cold_start
    if params.size == 0:
        empty = candidates.limit(0).selectExpr(
            "*",
            "CAST(0.0 AS DOUBLE) AS readability",
            "CAST(0 AS INT) AS cold_start_rank",
            "CAST(0 AS BIGINT) AS sample_key",
        )
        rt.tables.write(empty.transform(render_cold_start, params), "gold.cold_start")
        return []
    scratch = rt.tables.scratch("cold-start-scores")
    try:
        # Scores are read twice (sizes, then the draw); a scratch copy spares a second pass over the text.
        cold_start_scores(candidates, status, params, seed).write.mode("overwrite").parquet(scratch)
        scores = rt.spark.read.parquet(scratch)
        label = "+".join(params.kinds)
        available = {
            (label, domain): n
            for (_, domain), n in strata_counts(scores.withColumn("kind", F.lit(label))).items()
        }
        asked, weights = params.asked([domain for _, domain in available])
        plans = plan_mix(asked, weights, available, "redistribute", allow_short_total=True)
        log.info("cold-start plan (%d asked):\n%s", params.size, format_plan(plans))
        # A few thousand narrow rows: collected and handed back as a local relation, whose known size
        # makes both engines broadcast it instead of shuffling the candidates' text for the join.
        chosen = pick_cold_start(scores, plans).select(
            "candidate_id", "readability", "cold_start_rank", "sample_key"
        )
        local = rt.spark.createDataFrame([tuple(r) for r in chosen.collect()], CHOSEN_SCHEMA)
        rows = candidates.join(F.broadcast(local), "candidate_id")
        rt.tables.write(rows.transform(render_cold_start, params), "gold.cold_start")
    finally:
        rt.tables.drop_scratch(scratch)
    return plans


def plan_frame(rt: Runtime, dataset: str, plans: list[StratumPlan], policy: str) -> DataFrame:
    rows = [
        (
            rt.run_id,
            dataset,
            p.kind,
            p.domain,
            p.weight,
            p.asked,
            p.available,
            p.taken,
            p.upsampled,
            max(0, p.asked - p.taken),
            policy,
        )
        for p in plans
    ]
    return rt.spark.createDataFrame(rows, MIX_PLAN_SCHEMA)


def check_decisions(decisions: DataFrame, mix_rows: int) -> tuple[dict[str, int], dict[str, int]]:
    """Figures and rows per reason, in one pass; raises unless the counts add up: rows without a
    reason are exactly the mix's candidates, and their copies sum to the mix's rows."""
    exploded = decisions.select(
        F.posexplode_outer("reject_reasons").alias("pos", "reason"), "in_mix", "mix_copies", "in_cold_start"
    )
    first = F.col("pos").isNull() | (F.col("pos") == 0)  # each candidate counted once
    per_reason = (
        exploded.groupBy("reason")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(first.cast("long")).alias("rows"),
            F.sum(F.col("in_mix").cast("long")).alias("in_mix"),
            F.sum(F.col("mix_copies").cast("long")).alias("copies"),
            F.sum((first & F.col("in_cold_start")).cast("long")).alias("in_cold_start"),
        )
        .collect()
    )
    clean = next((r for r in per_reason if r["reason"] is None), None)
    figures = {
        "rows": sum(int(r["rows"] or 0) for r in per_reason),
        "no_reason": int(clean["n"]) if clean else 0,
        "in_mix": int(clean["in_mix"] or 0) if clean else 0,
        "copies": int(clean["copies"] or 0) if clean else 0,
        "in_mix_with_reason": sum(int(r["in_mix"] or 0) for r in per_reason if r["reason"] is not None),
        "in_cold_start": sum(int(r["in_cold_start"] or 0) for r in per_reason),
    }
    if (
        figures["copies"] != mix_rows
        or figures["no_reason"] != figures["in_mix"]
        or figures["in_mix_with_reason"]
    ):
        raise MixCountError(f"silver.decisions does not add up to gold.sft_mix ({mix_rows} rows): {figures}")
    return figures, {r["reason"]: int(r["n"]) for r in per_reason if r["reason"] is not None}


def mix(rt: Runtime) -> StageResult:
    cfg = rt.config
    if not rt.tables.exists("silver.selected"):
        raise RuntimeError("mix needs silver.selected: run the select stage first")
    candidates = rt.tables.read("silver.candidates")
    selected = rt.tables.read("silver.selected")
    status = read_prompt_status(rt)
    seed = cfg.mix.seed if cfg.mix.seed is not None else cfg.seed
    plans = build_sft_mix(rt, selected, status, seed)
    cold_seed = cfg.cold_start.seed if cfg.cold_start.seed is not None else cfg.seed
    cold_plans = build_cold_start(rt, candidates, status, cold_seed)

    sft = rt.tables.read("gold.sft_mix")
    cold = rt.tables.read("gold.cold_start")
    rt.tables.write(build_decisions(candidates, selected, status, sft, cold), "silver.decisions")
    decisions = rt.tables.read("silver.decisions")
    mix_rows = sum(p.taken for p in plans)
    figures, rejected = check_decisions(decisions, mix_rows)
    plan_rows = plan_frame(rt, "sft_mix", plans, cfg.mix.shortfall).unionByName(
        plan_frame(rt, "cold_start", cold_plans, "redistribute")
    )
    rt.tables.write(plan_rows.coalesce(1), "ops.mix_plan")
    return StageResult(
        rows_in=figures["rows"],
        rows_out=mix_rows,
        rejected=rejected,
        details={
            "seed": seed,
            "shortfall": cfg.mix.shortfall,
            "cold_start_rows": sum(p.taken for p in cold_plans),
            "in_mix_candidates": figures["in_mix"],
            "in_cold_start": figures["in_cold_start"],
            "prompt_status": status is not None,
            "plan": [{**asdict(p), "upsampled": p.upsampled} for p in plans],
        },
    )


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("mix", mix)


if __name__ == "__main__":
    stage_main("mix", mix)
