"""The cold-start set: a few thousand of the most readable long-CoT candidates.

DeepSeek-R1 starts RL from a small SFT set of long CoTs in a readable format,
``|special_token|<reasoning_process>|special_token|<summary>``: reasoning in
digestible steps followed by an answer that summarises it. Here a candidate
qualifies when it has no reject reason from any stage, its prompt survived
dedup, its reasoning length lies in a band, and its answer is a summary (long
enough to be more than a bare ``\\boxed{}``, short next to the reasoning).

Readability is measured, not guessed: the share of the reasoning's characters
that sit in paragraphs of at most ``readable_paragraph_chars``. Candidates
are ranked by it (ties in hash order), one per prompt, then drawn per domain
with the same quota arithmetic as the mix. Scoring and ranking run on narrow
rows; only the chosen few thousand ids are joined back to the text.
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


MARK = "\x01"  # stands for a paragraph break (a blank line) while paragraphs are measured


def _marked(reasoning: str) -> F.Column:
    """The reasoning ('' for null) with each paragraph break (a blank line) replaced by MARK."""
    return F.regexp_replace(F.coalesce(F.col(reasoning), F.lit("")), r"\n\s*\n", MARK)


def _unmarked_chars(text: F.Column) -> F.Column:
    # A plain replace, not a regex: classic Spark's regexp_replace copies the text to UTF-16 and back.
    return F.length(F.replace(text, F.lit(MARK), F.lit("")))


def _short_chars(marked: F.Column, paragraph_chars: int) -> F.Column:
    """Characters in paragraphs of at most ``paragraph_chars``: long paragraphs cut out, marks not counted.

    A long paragraph is matched only where one starts (after a mark, or at the start) and takes that
    mark with it. An unanchored ``[^\\x01]{801,}`` is linear in Rust's regex (Sail) but quadratic in
    java.util.regex: it is retried at every character of every short paragraph and scans to the
    paragraph's end each time (the mix stage on classic Spark at scale 0.01: 360 s with it, 75 s without).
    Lookbehind would say it more plainly, but Rust's regex has none.
    """
    long_paragraph = "(?:\\x01|^)[^\\x01]{" + str(paragraph_chars + 1) + ",}"
    return _unmarked_chars(F.regexp_replace(marked, long_paragraph, ""))


def _share(short: F.Column, total: F.Column) -> F.Column:
    return F.when(total > 0, short / total).otherwise(F.lit(0.0))


def readability(reasoning: str, paragraph_chars: int) -> F.Column:
    """Share of the reasoning's characters in paragraphs of at most ``paragraph_chars`` (0 for none).

    Regex replaces, not ``split`` + ``filter(lambda)``: Sail 0.7.2 fails with `No field named
    "?table?".reasoning` when a lambda-built column over a Delta scan is filtered on (checked 2026-11).
    Paragraphs (split at blank lines) are marked with \\x01, long ones are cut out, the rest is measured.
    One expression, for a select; ``with_readability`` gives the same values for a whole table faster.
    """
    marked = _marked(reasoning)
    return _share(_short_chars(marked, paragraph_chars), _unmarked_chars(marked))


def with_readability(df: DataFrame, reasoning: str, paragraph_chars: int) -> DataFrame:
    """``df`` with ``readability`` (as ``readability()``) in place of ``reasoning``.

    Three projections, so that each regex runs once per row: classic Spark computes the common parts
    of the one-expression form (the marked text, its length) anew at each use.
    """
    keep = [c for c in df.columns if c != reasoning]
    marked = df.select(*keep, _marked(reasoning).alias("_marked"))
    counted = marked.select(
        *keep,
        _short_chars(F.col("_marked"), paragraph_chars).alias("_short"),
        _unmarked_chars(F.col("_marked")).alias("_total"),
    )
    return counted.select(*keep, _share(F.col("_short"), F.col("_total")).alias("readability"))


def cold_start_scores(
    candidates: DataFrame, prompt_status: DataFrame | None, params: ColdStartParams, seed: int
) -> DataFrame:
    """Eligible candidates as narrow rows (ids, domain, readability, sample key), one per prompt."""
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
    narrow = eligible.select(
        "candidate_id",
        "source",
        "prompt_id",
        "domain",
        "reasoning",
        F.xxhash64(F.lit(seed), F.col("candidate_id")).alias("sample_key"),
    )
    scored = with_readability(narrow, "reasoning", params.readable_paragraph_chars).select(
        "candidate_id", "source", "prompt_id", "domain", "readability", "sample_key"
    )
    readable = F.col("readability") >= params.min_readability
    if not params.one_per_prompt:
        return scored.where(readable)
    # The threshold is tested after the window, not before: classic Spark pushes a filter under the
    # projections, so the regexes would run twice per row (in the filter, then in the projection).
    # Same rows: readability leads the order, so a prompt's best row is readable iff any row is.
    best = Window.partitionBy("source", "prompt_id").orderBy(
        F.col("readability").desc(), "sample_key", "candidate_id"
    )
    ranked = scored.withColumn("_n", F.row_number().over(best))
    return ranked.where((F.col("_n") == 1) & readable).drop("_n")


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
