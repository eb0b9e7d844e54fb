"""The cold-start set: a few thousand of the most readable long-CoT candidates.

DeepSeek-R1 starts RL from a small SFT set of long CoTs in a readable format,
``|special_token|<reasoning_process>|special_token|<summary>``: reasoning in
digestible steps followed by an answer that summarises it. Here a candidate
qualifies when it has no reject reason from any stage (the mix stage draws from
``silver.selected``: select kept it, so ``not_selected`` is not among them), its
prompt survived dedup, its reasoning length lies in a band, and its answer is a
summary (long enough to be more than a bare ``\\boxed{}``, short next to the
reasoning).

Readability is measured, not guessed: the share of the reasoning's characters
that sit in paragraphs of at most ``readable_paragraph_chars``, from the
paragraph lengths annotate recorded. Candidates are ranked by it (ties in hash
order), one per prompt, then drawn per domain with the same quota arithmetic
as the mix. Scoring and ranking run on narrow rows, without the text; only the
chosen few thousand ids are joined back to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sftmix.transforms.chat_format import chars, prompt_messages, render_template, with_assistant
from sftmix.transforms.mix_plan import Stratum, StratumPlan, largest_remainder

REASONING_SLOT = "<reasoning_process>"
SUMMARY_SLOT = "<summary>"


@dataclass(frozen=True)
class ColdStartParams:
    """Size, eligibility band, readability and template of the cold-start set."""

    size: int = 5000
    seed: int | None = None  # None: the top-level seed
    kinds: list[str] = field(default_factory=lambda: ["reasoning"])
    # Relative weight per domain; empty: equal weights over the domains that have candidates.
    domains: dict[str, float] = field(default_factory=dict)
    min_reasoning_chars: int = 1500
    max_reasoning_chars: int = 20000
    min_answer_chars: int = 40  # a summary, not a bare \boxed{42}
    max_answer_share: float = 0.5  # the answer at most this share of the reasoning's length
    readable_paragraph_chars: int = 800
    min_readability: float = 0.8
    one_per_prompt: bool = True
    template: str = "|special_token|<reasoning_process>|special_token|<summary>"

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must not be negative")
        if self.min_reasoning_chars > self.max_reasoning_chars:
            raise ValueError("min_reasoning_chars exceeds max_reasoning_chars")
        if not 0 <= self.min_readability <= 1:
            raise ValueError("min_readability must lie in [0, 1]")
        if REASONING_SLOT not in self.template or SUMMARY_SLOT not in self.template:
            raise ValueError(f"template must contain {REASONING_SLOT} and {SUMMARY_SLOT}")

    def asked(self, domains_present: list[str]) -> tuple[dict[Stratum, int], dict[Stratum, float]]:
        """Quota per (kind, domain): the kinds share one pool, keyed by the first kind for the plan."""
        weights = dict(self.domains) if self.domains else {d: 1.0 for d in sorted(domains_present)}
        names = list(weights)
        split = largest_remainder(self.size, [weights[d] for d in names]) if names else []
        label = "+".join(self.kinds)
        return (
            {(label, d): n for d, n in zip(names, split, strict=True)},
            {(label, d): weights[d] for d in names},
        )


def readability(paragraph_chars: str, readable_chars: int) -> F.Column:
    """Share of the reasoning's characters in paragraphs of at most ``readable_chars`` (0 for none).

    ``paragraph_chars`` is annotate's list of the reasoning's paragraph lengths (trimmed paragraphs
    between blank lines), so the score needs no pass over the text: the mix at full size read ~10 GB
    of reasoning for it before. Sail 0.7.2 fails (`No field named "?table?".<column>`) when a
    filter on a lambda-built column like this one is pushed into a Delta scan (checked 2026-11):
    filter the stored scores, never this expression directly.
    """
    lengths = F.coalesce(F.col(paragraph_chars), F.array().cast("array<int>"))
    zero = F.lit(0).cast("long")
    total = F.aggregate(lengths, zero, lambda acc, n: acc + n)
    short = F.aggregate(lengths, zero, lambda acc, n: acc + F.when(n <= readable_chars, n).otherwise(0))
    return F.when(total > 0, short / total).otherwise(F.lit(0.0))


def cold_start_scores(
    candidates: DataFrame, prompt_status: DataFrame | None, params: ColdStartParams, seed: int
) -> DataFrame:
    """Every eligible candidate as a narrow row: ids, domain, readability, sample key, rank in its prompt.

    No readability threshold here (see ``readability``): ``best_readable`` applies it to the stored rows.
    """
    if "paragraph_chars" not in candidates.columns:
        raise ValueError(
            "silver.candidates has no paragraph_chars (an older sftmix annotated it): run annotate again"
        )
    reasoning_chars = chars(candidates, "reasoning_chars", "reasoning")
    answer_chars = chars(candidates, "answer_chars", "answer")
    eligible = candidates.where(
        F.col("kind").isin(*params.kinds)
        & F.col("domain").isNotNull()  # strata are domains: a row without one cannot be placed
        & (F.coalesce(F.size("reject_reasons"), F.lit(0)) <= 0)
        & reasoning_chars.between(params.min_reasoning_chars, params.max_reasoning_chars)
        & (answer_chars >= params.min_answer_chars)
        & (answer_chars <= reasoning_chars * params.max_answer_share)
    )
    if prompt_status is not None:
        dropped = (
            prompt_status.where(F.col("dedup_status") != "kept").select("source", "prompt_id").distinct()
        )
        eligible = eligible.join(F.broadcast(dropped), ["source", "prompt_id"], "left_anti")
    scored = eligible.select(
        "candidate_id",
        "source",
        "prompt_id",
        "domain",
        readability("paragraph_chars", params.readable_paragraph_chars).alias("readability"),
        F.xxhash64(F.lit(seed), F.col("candidate_id")).alias("sample_key"),
    )
    best_first = Window.partitionBy("source", "prompt_id").orderBy(
        F.col("readability").desc(), "sample_key", "candidate_id"
    )
    return scored.withColumn("prompt_rank", F.row_number().over(best_first))


def best_readable(scores: DataFrame, params: ColdStartParams) -> DataFrame:
    """The stored scores at or above ``min_readability``; with ``one_per_prompt``, each prompt's best.

    Same rows as thresholding first: readability leads the prompt order, so a prompt's best row is
    readable iff any of its rows is.
    """
    readable = F.col("readability") >= params.min_readability
    if params.one_per_prompt:
        readable = readable & (F.col("prompt_rank") == 1)
    return scores.where(readable).drop("prompt_rank")


def pick_cold_start(scores: DataFrame, plans: list[StratumPlan]) -> DataFrame:
    """The chosen ids: per domain, the ``taken`` most readable (ties in hash order), with their rank."""
    order = Window.partitionBy("domain").orderBy(F.col("readability").desc(), "sample_key", "candidate_id")
    quota = F.lit(0)
    for plan in plans:
        quota = F.when(F.col("domain") == plan.domain, F.lit(plan.taken)).otherwise(quota)
    ranked = scores.withColumn("cold_start_rank", F.row_number().over(order))
    return ranked.where(F.col("cold_start_rank") <= quota)


def render_cold_start(df: DataFrame, params: ColdStartParams) -> DataFrame:
    """``gold.cold_start`` rows: the rendered long-CoT target and its chat ``messages``."""
    text = render_template(
        params.template, {REASONING_SLOT: F.col("reasoning"), SUMMARY_SLOT: F.col("answer")}
    )
    return df.select(
        "candidate_id",
        "source",
        "prompt_id",
        "kind",
        "domain",
        with_assistant(prompt_messages(df), text).alias("messages"),
        text.alias("text"),
        chars(df, "reasoning_chars", "reasoning").alias("reasoning_chars"),
        chars(df, "answer_chars", "answer").alias("answer_chars"),
        "readability",
        "cold_start_rank",
        "sample_key",
    )
