"""Per-prompt selection (rejection sampling), per-prompt figures, and the RL prompt pool.

A candidate is *eligible* when it has no reject reason and an accepted
verdict. Per prompt (``source``, ``prompt_id``) a policy picks among the
eligible: ``all_correct`` keeps every one (DeepSeek-R1 keeps every correct
sample; ``max_per_prompt`` caps it), ``top_k`` keeps the first ``k`` by the
policy's ``order_by`` keys. Every ordering ends with ``xxhash64(seed,
candidate_id)``, identical on Sail and classic Spark (DESIGN.md), so ties
break the same way on both engines and on every rerun; ``select_rank``
records the order.

The policy of a candidate is its source's entry in ``sources``, else its
kind's entry in ``kinds``: reasoning prompts keep all correct samples,
non-reasoning prompts (no reference to check) keep the top one by length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

PROMPT_KEY = ["source", "prompt_id"]
# A prompt's texts, stored with each of its candidates.
PROMPT_TEXTS = ["system", "prompt", "messages", "reference_answer"]
# Verification outcomes, not text defects: a candidate with no other reason counts as clean.
VERIFICATION_REASONS = ["incorrect", "unverified"]
DEFINITE_VERDICTS = ["correct", "incorrect"]


@dataclass(frozen=True)
class SelectPolicy:
    """How one group of prompts picks candidates."""

    policy: Literal["all_correct", "top_k"] = "all_correct"
    k: int = 1
    # SQL expressions, each optionally followed by `asc` or `desc`; nulls sort last.
    order_by: list[str] = field(default_factory=lambda: ["length(completion) asc"])
    # all_correct: keep at most this many per prompt (None: all).
    max_per_prompt: int | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("select policy k must be at least 1")
        if self.max_per_prompt is not None and self.max_per_prompt < 1:
            raise ValueError("select policy max_per_prompt must be at least 1 (or null)")
        for key in self.order_by:
            _sort_key(key)  # fails on a bad direction at config load, not mid-run


def _default_kinds() -> dict[str, SelectPolicy]:
    return {
        "reasoning": SelectPolicy("all_correct", order_by=["length(completion) asc"]),
        "non_reasoning": SelectPolicy("top_k", k=1, order_by=["length(completion) desc"]),
    }


@dataclass(frozen=True)
class SelectParams:
    """Selection settings (config section ``select``)."""

    # Verdicts a selected candidate may have; `unverifiable` is only reachable where the source does not
    # require verification (elsewhere the candidate carries `unverified`).
    accept_verdicts: list[str] = field(default_factory=lambda: ["correct", "unverifiable"])
    kinds: dict[str, SelectPolicy] = field(default_factory=_default_kinds)
    # Per-source overrides of the kind's policy.
    sources: dict[str, SelectPolicy] = field(default_factory=dict)
    # gold.rl_prompts: pass rate strictly inside (low, high), at least this many definite verdicts.
    rl_min_pass_rate: float = 0.0
    rl_max_pass_rate: float = 1.0
    rl_min_verified: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.rl_min_pass_rate < self.rl_max_pass_rate <= 1.0:
            raise ValueError("select needs 0 <= rl_min_pass_rate < rl_max_pass_rate <= 1")

    def policy_for(self, source: str, kind: str | None) -> SelectPolicy:
        if source in self.sources:
            return self.sources[source]
        return self.kinds.get(kind or "", SelectPolicy())


def _sort_key(spec: str) -> tuple[str, bool]:
    parts = spec.strip().rsplit(None, 1)
    if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
        return parts[0], parts[1].lower() == "desc"
    if not spec.strip():
        raise ValueError("an empty select order_by key")
    return spec.strip(), False


def _policies(params: SelectParams) -> tuple[list[SelectPolicy], Column]:
    """The distinct policies in play and a column holding each candidate's policy index."""
    policies = [*params.sources.values(), *params.kinds.values(), SelectPolicy()]
    index = F.lit(len(policies) - 1)
    for position, kind in reversed(list(enumerate(params.kinds, start=len(params.sources)))):
        index = F.when(F.col("kind") == kind, F.lit(position)).otherwise(index)
    for position, source in reversed(list(enumerate(params.sources))):
        index = F.when(F.col("source") == source, F.lit(position)).otherwise(index)
    return policies, index


def _ordering(policies: list[SelectPolicy]) -> list[tuple[Column, bool]]:
    """(sort key, descending) of every policy's ``order_by``.

    One window serves every policy: policy i's keys are null outside policy i, and a prompt's
    candidates share one policy (it follows source and kind), so other policies' keys never
    reorder a prompt.
    """
    keys = []
    for position, policy in enumerate(policies):
        for spec in policy.order_by:
            expression, descending = _sort_key(spec)
            keys.append((F.when(F.col("_policy") == position, F.expr(expression)), descending))
    return keys


def _eligible(params: SelectParams) -> Column:
    return (F.size("reject_reasons") == 0) & F.col("verdict").isin(params.accept_verdicts)


def rank_candidates(candidates: DataFrame, params: SelectParams, seed: int) -> DataFrame:
    """Every candidate with ``eligible``, ``selected`` and ``select_rank`` (null unless eligible)."""
    return with_ranking(candidates, candidate_ranking(candidates, params, seed))


def with_ranking(candidates: DataFrame, ranking: DataFrame) -> DataFrame:
    """``candidates`` joined with ``candidate_ranking``'s rows, the narrow side first (the side a
    hash join builds in memory)."""
    joined = ranking.join(candidates, F.col("_ranked_id") == F.col("candidate_id"), "inner")
    return joined.select(*candidates.columns, "eligible", "select_rank", "selected")


def candidate_ranking(candidates: DataFrame, params: SelectParams, seed: int) -> DataFrame:
    """(``_ranked_id``, ``eligible``, ``select_rank``, ``selected``) of every candidate.

    The window sorts a narrow frame (ids and the evaluated sort keys): sorting the wide rows
    (reasoning texts) held the whole table in the engine's memory. Kept narrow so a stage can
    store it and join it to the candidates for each output, instead of storing every candidate
    column a second time.
    """
    policies, policy_index = _policies(params)
    ordering = _ordering(policies)
    key_names = [f"_key{i}" for i in range(len(ordering))]
    narrow = candidates.withColumn("_policy", policy_index).select(
        "candidate_id",
        *PROMPT_KEY,
        "_policy",
        _eligible(params).alias("eligible"),
        *[key.alias(name) for (key, _), name in zip(ordering, key_names, strict=True)],
    )
    order = [
        F.col(name).desc_nulls_last() if descending else F.col(name).asc_nulls_last()
        for (_, descending), name in zip(ordering, key_names, strict=True)
    ]
    # candidate_id last: a 64-bit hash collision still orders the same way everywhere.
    order += [F.xxhash64(F.lit(seed), F.col("candidate_id")).asc(), F.col("candidate_id").asc()]
    window = Window.partitionBy(*PROMPT_KEY, "eligible").orderBy(*order)
    ranked = narrow.withColumn(
        "select_rank", F.when(F.col("eligible"), F.row_number().over(window)).cast("int")
    )
    limit: Column = F.lit(None).cast("int")
    for position, policy in enumerate(policies):
        cap = policy.k if policy.policy == "top_k" else policy.max_per_prompt
        limit = F.when(F.col("_policy") == position, F.lit(cap).cast("int")).otherwise(limit)
    keep = F.col("eligible") & (limit.isNull() | (F.col("select_rank") <= limit))
    return ranked.select(
        F.col("candidate_id").alias("_ranked_id"),
        "eligible",
        "select_rank",
        F.coalesce(keep, F.lit(False)).alias("selected"),
    )


def selected_candidates(ranked: DataFrame) -> DataFrame:
    """silver.selected: the selected rows, every candidate column, plus ``select_rank``."""
    return ranked.where(F.col("selected")).drop("eligible", "selected")


def prompt_summary(ranked: DataFrame, candidates: DataFrame) -> DataFrame:
    """silver.prompts: one row per prompt with counts, pass rate and why nothing was selected.

    ``ranked`` holds the ranked candidates; ``candidates`` any frame with their ids and texts
    (``ranked`` came from it). A prompt's ``system``, ``prompt``, ``messages`` and
    ``reference_answer`` are those of its first candidate by ``candidate_id``, joined to the
    narrow aggregate afterwards: ``min_by`` over the wide columns kept every prompt's texts in
    the aggregate's state, which grew with the input (the engine peaked at 9.05 GB at full size,
    1M prompts; 2.63 GB with the join).
    """
    hard = F.size(F.filter(F.col("reject_reasons"), lambda r: ~r.isin(VERIFICATION_REASONS)))
    clean = hard == 0
    correct = F.col("verdict") == "correct"
    incorrect = F.col("verdict") == "incorrect"
    counts = ranked.groupBy(*PROMPT_KEY).agg(
        F.min("kind").alias("kind"),
        F.min("domain").alias("domain"),
        F.min("language").alias("language"),
        F.min("candidate_id").alias("_first_id"),
        F.count(F.lit(1)).alias("n_candidates"),
        F.sum(clean.cast("long")).alias("n_clean"),
        F.sum(F.col("verdict").isin(DEFINITE_VERDICTS).cast("long")).alias("n_verified"),
        F.sum(correct.cast("long")).alias("n_correct"),
        F.sum((clean & correct).cast("long")).alias("n_clean_correct"),
        F.sum((clean & incorrect).cast("long")).alias("n_clean_incorrect"),
        F.sum(F.col("eligible").cast("long")).alias("n_eligible"),
        F.sum(F.col("selected").cast("long")).alias("n_selected"),
    )
    pass_rate = F.when(F.col("n_verified") > 0, F.col("n_correct") / F.col("n_verified"))
    reason = (
        F.when(F.col("n_selected") > 0, F.lit(None).cast("string"))
        .when(F.col("n_clean") == 0, F.lit("all_filtered"))
        .when(
            (F.col("n_correct") == 0) & (F.col("n_clean_incorrect") == F.col("n_clean")),
            F.lit("all_incorrect"),
        )
        .when((F.col("n_correct") > 0) & (F.col("n_clean_correct") == 0), F.lit("correct_filtered"))
        .otherwise(F.lit("unverified"))
    )
    # The narrow aggregate on the left: the side a hash join builds in memory.
    texts = candidates.select(F.col("candidate_id").alias("_first_id"), *PROMPT_TEXTS)
    return counts.join(texts, "_first_id").select(
        *PROMPT_KEY,
        "kind",
        "domain",
        "language",
        *PROMPT_TEXTS,
        "n_candidates",
        "n_clean",
        "n_verified",
        "n_correct",
        pass_rate.alias("pass_rate"),
        "n_eligible",
        "n_selected",
        reason.alias("no_selection_reason"),
    )


def candidates_key(candidates: DataFrame) -> DataFrame:
    """(source, prompt_id, candidates_key): a hash of the set of a prompt's candidate rows as annotated.

    A row is named by (candidate_id, judgment_key, annotate_config): annotate's output is a function of
    them (jobs/annotate.py), so a prompt whose key is unchanged needs no new selection. XOR makes the
    hash independent of row order; the count guards against pairs cancelling out.
    """

    def optional(name: str) -> Column:
        # Never null: Sail 0.7 panics hashing a null read from a table.
        return F.coalesce(F.col(name).cast("string"), F.lit("")) if name in candidates.columns else F.lit("")

    row = F.xxhash64(F.col("candidate_id"), optional("judgment_key"), optional("annotate_config"))
    return candidates.groupBy(*PROMPT_KEY).agg(
        F.xxhash64(F.bit_xor(row), F.count(F.lit(1))).alias("candidates_key")
    )


def rl_prompt_pool(
    prompts: DataFrame, params: SelectParams, prompt_status: DataFrame | None = None
) -> DataFrame:
    """gold.rl_prompts: prompts with a reference answer whose pass rate lies in the open interval.

    With ``prompt_status`` (silver.prompt_status from dedup), only prompts kept there remain.
    """
    reference = F.col("reference_answer")
    pool = prompts.where(
        reference.isNotNull()
        & (F.length(F.trim(reference)) > 0)
        & (F.col("n_verified") >= params.rl_min_verified)
        & (F.col("pass_rate") > params.rl_min_pass_rate)
        & (F.col("pass_rate") < params.rl_max_pass_rate)
    )
    if prompt_status is not None:
        kept = prompt_status.where(F.col("dedup_status") == "kept").select(*PROMPT_KEY).distinct()
        pool = pool.join(kept, on=PROMPT_KEY, how="left_semi")
    return pool.select(
        *PROMPT_KEY,
        "kind",
        "domain",
        "language",
        "system",
        "prompt",
        "messages",
        "reference_answer",
        "pass_rate",
        "n_verified",
        "n_correct",
    )
