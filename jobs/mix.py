"""Stage ``mix``: silver.selected -> gold.sft_mix, gold.cold_start, ops.mix_plan, silver.decisions.

Steps: the eligible pool (selected, clean, prompt kept by dedup); its size per
stratum (a small aggregate); the plan (exact quotas, shortfall policy; a
``fail`` raises here, before anything is written); the draw in hash order and
the chat rendering into ``gold.sft_mix``; the cold-start set; then
``silver.decisions``, whose counts are checked against the mix before the
stage reports. ``silver.prompt_status`` may be missing (dedup not run): every
prompt then counts as kept, and the log says so.

Mix versions: every ``gold.sft_mix`` write is version ``mix_version`` (1, 2,
... on every engine and format), and its rows carry ``mix_version`` and
``mix_run_id``. ``ops.mix_versions`` gets one row per write (run id, the Delta
version of ``gold.sft_mix`` where the format has versions, rows, rows kept
from the previous version) and ``ops.mix_history`` a narrow copy of the
version's rows (ids, stratum, key; no text). The history is what the stable
draw and ``sftmix diff`` read: it is the same on Delta and on classic Spark's
Parquet (no time travel), and outlives a Delta vacuum.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs import ops
from sftmix.jobs.runtime.context import Phases, Runtime, StageResult, stage_main
from sftmix.transforms.cold_start import (
    best_readable,
    cold_start_scores,
    pick_cold_start,
    render_cold_start,
)
from sftmix.transforms.decisions import build_decisions
from sftmix.transforms.mix import (
    PREV_COPIES,
    Cutoff,
    cutoff_rows,
    draw_mix,
    mix_pool,
    render_sft,
    with_previous,
    with_sample_key,
)
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

MIX_VERSIONS_SCHEMA = T.StructType(
    [
        T.StructField("mix_version", T.LongType()),  # 1, 2, ...: the number `sftmix diff` takes
        T.StructField("write_id", T.StringType()),  # ties the version to its ops.mix_history rows
        T.StructField("run_id", T.StringType()),
        T.StructField("table_format", T.StringType()),
        T.StructField("table_version", T.LongType()),  # Delta version of gold.sft_mix; null on Parquet
        T.StructField("previous_version", T.LongType()),  # the mix version before this one, if any
        T.StructField("stable", T.BooleanType()),  # drawn with mix.stable
        T.StructField("seed", T.LongType()),
        T.StructField("rows", T.LongType()),
        T.StructField("kept_rows", T.LongType()),  # rows (candidate_id, copy_index) also in the previous
        T.StructField("written_at", T.StringType()),
    ]
)
HISTORY_COLUMNS = ("candidate_id", "copy_index", "source", "prompt_id", "kind", "domain", "sample_key")


@dataclass(frozen=True)
class MixVersion:
    """One row of ``ops.mix_versions``."""

    mix_version: int
    write_id: str
    run_id: str
    table_format: str
    table_version: int | None
    previous_version: int | None
    stable: bool
    seed: int
    rows: int
    kept_rows: int | None
    written_at: str


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


def find_cutoffs(
    rt: Runtime, pool: DataFrame, plans: list[StratumPlan], stable: bool = False
) -> dict[Stratum, Cutoff]:
    partial = [(p.kind, p.domain, p.extra_rows) for p in plans if p.extra_rows > 0]
    if not partial:
        return {}
    rows = cutoff_rows(pool, rt.spark.createDataFrame(partial, PARTIAL_SCHEMA), stable).collect()
    if stable:
        return {
            (r["kind"], r["domain"]): (int(r[PREV_COPIES]), int(r["sample_key"]), str(r["candidate_id"]))
            for r in rows
        }
    return {(r["kind"], r["domain"]): (int(r["sample_key"]), str(r["candidate_id"])) for r in rows}


def mix_versions(rt: Runtime) -> list[MixVersion]:
    """Every recorded gold.sft_mix version, oldest first (one small row per mix run)."""
    if not rt.tables.exists("ops.mix_versions"):
        return []
    rows = rt.tables.read("ops.mix_versions").collect()
    versions = [MixVersion(**{f.name: r[f.name] for f in MIX_VERSIONS_SCHEMA.fields}) for r in rows]
    return sorted(versions, key=lambda v: (v.mix_version, v.written_at))


def version_rows(rt: Runtime, version: MixVersion) -> DataFrame:
    """The narrow rows of one mix version (HISTORY_COLUMNS), from ops.mix_history."""
    history = rt.tables.read("ops.mix_history")
    return history.where(F.col("write_id") == version.write_id).select(*HISTORY_COLUMNS)


def previous_rows(rt: Runtime, versions: list[MixVersion]) -> tuple[DataFrame | None, str | None]:
    """The previous mix's (candidate_id, copy_index) rows for the stable draw, and a scratch path to drop.

    A gold.sft_mix written before versions were recorded is copied to scratch first: classic Spark
    refuses to overwrite a Parquet path the same job reads from.
    """
    if versions:
        return version_rows(rt, versions[-1]).select("candidate_id", "copy_index"), None
    if not rt.tables.exists("gold.sft_mix"):
        return None, None
    scratch = rt.tables.scratch("previous-mix")
    columns = rt.tables.read("gold.sft_mix").columns
    copy_index = F.col("copy_index") if "copy_index" in columns else F.lit(0)
    narrow = rt.tables.read("gold.sft_mix").select("candidate_id", copy_index.cast("int").alias("copy_index"))
    narrow.write.mode("overwrite").parquet(scratch)
    return rt.spark.read.parquet(scratch), scratch


def build_sft_mix(
    rt: Runtime, selected: DataFrame, status: DataFrame | None, seed: int, mix_version: int
) -> list[StratumPlan]:
    params = rt.config.mix
    pool = with_sample_key(mix_pool(selected, status), seed)
    scratch = None
    stable = False
    if params.stable:
        previous, scratch = previous_rows(rt, mix_versions(rt))
        if previous is None:
            log.info("mix: stable draw asked, but there is no previous mix: drawing from scratch")
        else:
            pool, stable = with_previous(pool, previous), True
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
    log.info(
        "mix plan (seed %d, shortfall %s, %s draw):\n%s",
        seed, params.shortfall, "stable" if stable else "from-scratch", format_plan(plans),
    )
    try:
        drawn = draw_mix(pool, plans, find_cutoffs(rt, pool, plans, stable))
        rendered = drawn.transform(render_sft, params).select(
            "*", F.lit(mix_version).cast("long").alias("mix_version"), F.lit(rt.run_id).alias("mix_run_id")
        )
        # Its row count is checked with silver.decisions (copies add up to the plan's total).
        rt.tables.write(rendered, "gold.sft_mix")
    finally:
        if scratch:
            rt.tables.drop_scratch(scratch)
    return plans


def record_version(rt: Runtime, mix_version: int, seed: int, rows: int) -> MixVersion:
    """Append the written gold.sft_mix to ops.mix_history and ops.mix_versions (the latter last: a
    version is listed only once its history is complete)."""
    versions = mix_versions(rt)
    previous = versions[-1] if versions else None
    write_id = f"{rt.run_id}/{uuid.uuid4().hex[:12]}"
    sft = rt.tables.read("gold.sft_mix")
    history = sft.select(
        F.lit(mix_version).cast("long").alias("mix_version"),
        F.lit(write_id).alias("write_id"),
        F.lit(rt.run_id).alias("run_id"),
        *HISTORY_COLUMNS,
    )
    rt.tables.write(history, "ops.mix_history", mode="append")
    kept = None
    if previous is not None:
        now = history.where(F.col("write_id") == write_id)
        kept = now.join(version_rows(rt, previous), ["candidate_id", "copy_index"]).count()
    table_version = ops.table_versions(rt.tables, ("gold.sft_mix",)).get("gold.sft_mix")
    version = MixVersion(
        mix_version=mix_version,
        write_id=write_id,
        run_id=rt.run_id,
        table_format=rt.tables.table_format,
        table_version=table_version,
        previous_version=previous.mix_version if previous else None,
        stable=bool(rt.config.mix.stable),
        seed=seed,
        rows=rows,
        kept_rows=kept,
        written_at=ops.utc_now(),
    )
    frame = rt.spark.createDataFrame([tuple(asdict(version).values())], MIX_VERSIONS_SCHEMA)
    rt.tables.write(frame, "ops.mix_versions", mode="append")
    return version


def next_mix_version(rt: Runtime) -> int:
    versions = mix_versions(rt)
    return versions[-1].mix_version + 1 if versions else 1


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
        # Stored before the threshold is applied (Sail cannot filter on the score over a Delta scan, see
        # cold_start.readability) and read twice: for the sizes, then for the draw.
        cold_start_scores(candidates, status, params, seed).write.mode("overwrite").parquet(scratch)
        scores = best_readable(rt.spark.read.parquet(scratch), params)
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
    mix_version = next_mix_version(rt)
    phases = Phases()
    plans = build_sft_mix(rt, selected, status, seed, mix_version)
    phases.done("sft_mix_s")
    cold_seed = cfg.cold_start.seed if cfg.cold_start.seed is not None else cfg.seed
    # From silver.selected: a cold-start row has no reason from any stage (`not_selected` is one), and
    # the join back to the text scans the selected rows, not every candidate (3.2M at full size).
    cold_plans = build_cold_start(rt, selected, status, cold_seed)
    phases.done("cold_start_s")

    sft = rt.tables.read("gold.sft_mix")
    cold = rt.tables.read("gold.cold_start")
    rt.tables.write(build_decisions(candidates, selected, status, sft, cold), "silver.decisions")
    phases.done("decisions_s")
    decisions = rt.tables.read("silver.decisions")
    mix_rows = sum(p.taken for p in plans)
    figures, rejected = check_decisions(decisions, mix_rows)
    phases.done("check_s")
    plan_rows = plan_frame(rt, "sft_mix", plans, cfg.mix.shortfall).unionByName(
        plan_frame(rt, "cold_start", cold_plans, "redistribute")
    )
    rt.tables.write(plan_rows.coalesce(1), "ops.mix_plan")
    version = record_version(rt, mix_version, seed, mix_rows)
    phases.done("plan_and_history_s")
    if version.kept_rows is not None:
        log.info(
            "mix: version %d (%s draw) keeps %d of the %d rows of version %s",
            version.mix_version, "stable" if version.stable else "from-scratch", version.kept_rows,
            next((v.rows for v in mix_versions(rt) if v.mix_version == version.previous_version), 0),
            version.previous_version,
        )
    return StageResult(
        rows_in=figures["rows"],
        rows_out=mix_rows,
        rejected=rejected,
        details={
            "seed": seed,
            "shortfall": cfg.mix.shortfall,
            "stable": cfg.mix.stable,
            "mix_version": version.mix_version,
            "table_version": version.table_version,
            "previous_version": version.previous_version,
            "kept_rows": version.kept_rows,
            "cold_start_rows": sum(p.taken for p in cold_plans),
            "in_mix_candidates": figures["in_mix"],
            "in_cold_start": figures["in_cold_start"],
            "prompt_status": status is not None,
            "plan": [{**asdict(p), "upsampled": p.upsampled} for p in plans],
            "phases": phases.seconds,
        },
    )


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("mix", mix)


if __name__ == "__main__":
    stage_main("mix", mix)
