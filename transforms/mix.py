"""The exact stratified SFT mix: eligible pool, deterministic draw, chat rendering.

Strata are kind x domain. Their quotas come from ``MixParams`` through
``transforms/mix_plan.py`` (largest remainder, shortfall policy). Rows are
drawn in the order of ``xxhash64(lit(seed), candidate_id)`` (DESIGN.md: the
portable sort key; ``rand`` differs between engines), ties by candidate id.

The draw never shuffles text: ranks are computed on narrow rows (id, stratum,
key) to find, per stratum, the key of the last row taken; the wide pool is
then filtered against those few cut-offs. A stratum asked for ``taken`` rows
out of ``available`` keeps each row ``taken // available`` times, plus once
more for the first ``taken % available`` rows (only upsampling makes the
first number exceed 1).

The stable draw (``mix.stable``) is the same cut-off machinery over another
order: rows of the previous mix version first (more previous copies first),
then the rest, each group in hash order. A stratum therefore keeps its
previous rows while they are eligible and its quota allows, drops the last of
them in hash order when the quota shrinks, and fills freed or new quota from
the other rows in hash order. Without previous rows it is today's draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sftmix.transforms.chat_format import chars, prompt_messages, render_template, with_assistant
from sftmix.transforms.mix_plan import Stratum, StratumPlan, largest_remainder

KINDS = ("reasoning", "non_reasoning")
CotPolicy = Literal["keep", "drop"]


def _r1_reasoning_domains() -> dict[str, float]:
    # DeepSeek-R1 (v2, Table 5) reasoning SFT data; used as weights and scaled to the reasoning quota.
    return {"math": 395285.0, "code": 211129.0, "stem": 10124.0, "logic": 10395.0}


def _non_reasoning_domains() -> dict[str, float]:
    # R1 names these domains but gives no split; this one favours open-ended writing and QA.
    return {"writing": 90000.0, "factual_qa": 70000.0, "translation": 30000.0, "self_cognition": 10000.0}


@dataclass(frozen=True)
class KindStrata:
    """One kind's quota (a share of the total, or a count) and its domains' relative weights."""

    share: float | None = None
    count: int | None = None
    # Relative weights, scaled to the kind's quota: counts and fractions both work.
    domains: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.share is None) == (self.count is None):
            raise ValueError("give exactly one of `share` and `count`")
        if self.share is not None and not 0 <= self.share <= 1:
            raise ValueError(f"share must lie in [0, 1], got {self.share}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must not be negative, got {self.count}")
        if any(w < 0 for w in self.domains.values()):
            raise ValueError("domain weights must not be negative")


def _default_strata() -> dict[str, KindStrata]:
    return {
        "reasoning": KindStrata(share=0.75, domains=_r1_reasoning_domains()),
        "non_reasoning": KindStrata(share=0.25, domains=_non_reasoning_domains()),
    }


def _default_cot() -> dict[str, CotPolicy]:
    # DeepSeek-V3 SFT: writing and QA targets may keep the CoT the model wrote; a name or a
    # translation gains nothing from one.
    return {"writing": "keep", "factual_qa": "keep", "self_cognition": "drop", "translation": "drop"}


def _default_cot_by_kind() -> dict[str, CotPolicy]:
    return {"reasoning": "keep", "non_reasoning": "drop"}


@dataclass(frozen=True)
class MixParams:
    """The stratified mix: quotas, shortfall policy, upsampling and the assistant-turn rendering."""

    total: int | None = 800_000  # None: the sum of the kinds' counts
    seed: int | None = None  # None: the top-level seed
    shortfall: Literal["redistribute", "fail"] = "redistribute"
    # With `redistribute`, a mix smaller than `total` is an error unless this is set.
    allow_short_total: bool = False
    upsample: bool = False
    max_upsample_factor: float = 2.0
    strata: dict[str, KindStrata] = field(default_factory=_default_strata)
    cot: dict[str, CotPolicy] = field(default_factory=_default_cot)
    cot_default: dict[str, CotPolicy] = field(default_factory=_default_cot_by_kind)
    # Non-reasoning prompts at most this long ("hello") get no CoT whatever the domain says.
    trivial_prompt_chars: int = 20
    # Keep the rows of the previous gold.sft_mix version unless rejected now or their quota shrank.
    stable: bool = False
    cot_template: str = "<think>\n{reasoning}\n</think>\n\n{answer}"
    answer_template: str = "{answer}"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.strata) - set(KINDS))
        if unknown:
            raise ValueError(f"strata: unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
        counts = [k.count is not None for k in self.strata.values()]
        if any(counts) and not all(counts):
            raise ValueError("strata: give every kind a `share`, or every kind a `count`, not a mixture")
        if all(counts) and self.strata:
            summed = sum(k.count or 0 for k in self.strata.values())
            if self.total is not None and self.total != summed:
                raise ValueError(f"total {self.total} differs from the kinds' counts, which sum to {summed}")
        elif self.total is None:
            raise ValueError("total is required when kinds are given as shares")
        if self.total is not None and self.total < 0:
            raise ValueError("total must not be negative")
        if self.max_upsample_factor < 1:
            raise ValueError("max_upsample_factor must be at least 1")
        if "{answer}" not in self.cot_template or "{reasoning}" not in self.cot_template:
            raise ValueError("cot_template must contain {reasoning} and {answer}")
        if "{answer}" not in self.answer_template:
            raise ValueError("answer_template must contain {answer}")

    @property
    def target_total(self) -> int:
        if self.total is not None:
            return self.total
        return sum(k.count or 0 for k in self.strata.values())

    def asked(self) -> tuple[dict[Stratum, int], dict[Stratum, float]]:
        """Exact quota and configured weight per (kind, domain), before any shortfall."""
        kinds = list(self.strata)
        if all(self.strata[k].count is not None for k in kinds):
            kind_quota = {k: int(self.strata[k].count or 0) for k in kinds}
        else:
            split = largest_remainder(self.target_total, [self.strata[k].share or 0.0 for k in kinds])
            kind_quota = dict(zip(kinds, split, strict=True))
        asked: dict[Stratum, int] = {}
        weights: dict[Stratum, float] = {}
        for kind in kinds:
            domains = list(self.strata[kind].domains)
            if not domains:
                continue
            split = largest_remainder(kind_quota[kind], [self.strata[kind].domains[d] for d in domains])
            for domain, n in zip(domains, split, strict=True):
                asked[(kind, domain)] = n
                weights[(kind, domain)] = self.strata[kind].domains[domain]
        return asked, weights


def mix_pool(selected: DataFrame, prompt_status: DataFrame | None) -> DataFrame:
    """Selected rows that may enter the mix: no candidate-level reason, prompt kept by dedup."""
    pool = selected.where(F.coalesce(F.size("reject_reasons"), F.lit(0)) <= 0)
    if prompt_status is None:
        return pool
    dropped = prompt_status.where(F.col("dedup_status") != "kept").select("source", "prompt_id").distinct()
    # Dropped prompts are a small share of all prompts: broadcasting them spares a shuffle of the text.
    return pool.join(F.broadcast(dropped), ["source", "prompt_id"], "left_anti")


def with_sample_key(df: DataFrame, seed: int) -> DataFrame:
    return df.withColumn("sample_key", F.xxhash64(F.lit(seed), F.col("candidate_id")))


PREV_COPIES = "prev_copies"  # copies of the row in the previous mix version (stable draw only)

# A cut-off: the draw-order key of a stratum's last row taken: (sample_key, candidate_id), or
# (prev_copies, sample_key, candidate_id) in the stable draw.
Cutoff = tuple[int, str] | tuple[int, int, str]


def draw_order(stable: bool = False) -> list[Column]:
    """The order rows are taken in within a stratum."""
    by_key = [F.col("sample_key"), F.col("candidate_id")]
    return [F.col(PREV_COPIES).desc(), *by_key] if stable else by_key


def with_previous(pool: DataFrame, previous: DataFrame) -> DataFrame:
    """``pool`` plus ``prev_copies``: how often each row was in the previous mix version (0: not in it).

    ``previous`` holds one row per previous mix row (candidate_id, copy_index). Rows of the previous
    version that left the pool (rejected now, dropped by dedup) find no match and leave the mix.
    """
    copies = previous.groupBy("candidate_id").agg(F.count(F.lit(1)).cast("int").alias(PREV_COPIES))
    # One narrow row per previous candidate (800k ids: tens of MB): classic Spark broadcasts it, so the
    # text is not shuffled; Sail ignores the hint and plans its own join.
    joined = pool.join(F.broadcast(copies), "candidate_id", "left")
    return joined.withColumn(PREV_COPIES, F.coalesce(F.col(PREV_COPIES), F.lit(0)))


def stratum_ranks(keys: DataFrame, stable: bool = False) -> DataFrame:
    """1-based rank of each row in its stratum, in draw order (narrow rows only)."""
    order = Window.partitionBy("kind", "domain").orderBy(*draw_order(stable))
    return keys.withColumn("stratum_rank", F.row_number().over(order))


def cutoff_rows(pool: DataFrame, partial: DataFrame, stable: bool = False) -> DataFrame:
    """Per stratum with a partial last copy, the key of its last row taken (a few rows).

    ``partial`` holds (kind, domain, extra_rows) of the plan rows with ``extra_rows > 0``.
    """
    key = [PREV_COPIES, "sample_key", "candidate_id"] if stable else ["sample_key", "candidate_id"]
    ranked = stratum_ranks(pool.select("kind", "domain", *key), stable)
    return (
        ranked.join(F.broadcast(partial), ["kind", "domain"])
        .where(F.col("stratum_rank") == F.col("extra_rows"))
        .select("kind", "domain", *key)
    )


def _at_or_before(cut: Cutoff) -> Column:
    """Whether a row comes at or before ``cut`` in draw order (lexicographic on the order key)."""
    key, cid = F.col("sample_key"), F.col("candidate_id")
    cut_key, cut_id = int(cut[-2]), str(cut[-1])
    by_key = (key < F.lit(cut_key)) | ((key == F.lit(cut_key)) & (cid <= F.lit(cut_id)))
    if len(cut) == 2:
        return by_key
    prev, cut_prev = F.col(PREV_COPIES), F.lit(int(cut[0]))
    return (prev > cut_prev) | ((prev == cut_prev) & by_key)


def copies_column(plans: list[StratumPlan], cutoffs: dict[Stratum, Cutoff]) -> Column:
    """How many times each pool row enters the mix (0 for rows not drawn)."""
    expr = F.lit(0)
    for plan in plans:
        if plan.taken == 0:
            continue
        in_stratum = (F.col("kind") == plan.kind) & (F.col("domain") == plan.domain)
        copies: Column = F.lit(plan.full_copies)
        if plan.extra_rows:
            within = _at_or_before(cutoffs[(plan.kind, plan.domain)])
            copies = copies + F.when(within, 1).otherwise(0)
        expr = F.when(in_stratum, copies).otherwise(expr)
    return expr


def draw_mix(pool: DataFrame, plans: list[StratumPlan], cutoffs: dict[Stratum, Cutoff]) -> DataFrame:
    """The drawn rows, one per copy, with ``copy_index`` (0 for the first appearance)."""
    drawn = pool.withColumn("_copies", copies_column(plans, cutoffs)).where(F.col("_copies") > 0)
    if all(p.full_copies <= 1 for p in plans):
        return drawn.withColumn("copy_index", F.lit(0)).drop("_copies")
    copies = F.explode(F.sequence(F.lit(0), F.col("_copies") - 1))
    return drawn.withColumn("copy_index", copies).drop("_copies")


def cot_kept(params: MixParams, prompt_chars: Column) -> Column:
    """Whether the assistant turn carries the target's CoT (inside <think>)."""
    by_kind = F.lit(False)
    for kind, policy in params.cot_default.items():
        by_kind = F.when(F.col("kind") == kind, F.lit(policy == "keep")).otherwise(by_kind)
    policy_col = by_kind
    for domain, policy in params.cot.items():
        policy_col = F.when(F.col("domain") == domain, F.lit(policy == "keep")).otherwise(policy_col)
    has_cot = F.col("reasoning").isNotNull() & (F.length(F.trim(F.col("reasoning"))) > 0)
    trivial = (F.col("kind") == "non_reasoning") & (prompt_chars <= params.trivial_prompt_chars)
    return policy_col & has_cot & ~trivial


def render_sft(df: DataFrame, params: MixParams) -> DataFrame:
    """``gold.sft_mix`` rows: the chat ``messages`` plus ids, stratum and lengths."""
    prompt_chars = F.coalesce(F.length("prompt"), F.lit(0)).cast("long")
    keep = cot_kept(params, prompt_chars)
    values = {"{reasoning}": F.col("reasoning"), "{answer}": F.col("answer")}
    assistant = F.when(keep, render_template(params.cot_template, values)).otherwise(
        render_template(params.answer_template, {"{answer}": F.col("answer")})
    )
    return df.select(
        "candidate_id",
        F.col("copy_index").cast("int").alias("copy_index"),
        "source",
        "prompt_id",
        "kind",
        "domain",
        with_assistant(prompt_messages(df), assistant).alias("messages"),
        keep.alias("cot_kept"),
        prompt_chars.alias("prompt_chars"),
        chars(df, "reasoning_chars", "reasoning").alias("reasoning_chars"),
        chars(df, "answer_chars", "answer").alias("answer_chars"),
        F.length(assistant).cast("long").alias("assistant_chars"),
        "sample_key",
    )
