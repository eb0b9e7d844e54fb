"""Verification signals (``verify_candidates``) and the decisions made from them (``decide_verification``).

A candidate's ``verdict`` (correct | incorrect | unverifiable | error) and the
``verifier`` that gave it come from the first source of truth it has:

1. ``external_verdict`` (a sandbox or a judge dump said correct/incorrect): ``external``;
2. ``tests_passed``/``tests_total`` from outside (the record or a judgment
   file): all passed is correct: ``tests``; code rows with neither 1 nor 2
   and with tests of their prompt are run in the sandbox afterwards
   (``transforms/code_verify.py``: ``sandbox``, ahead of a judge score);
3. a ``reference_answer``: the final answer is extracted and compared
   (``transforms/math_equivalence.py``): ``choice``, ``text``, ``exact``,
   ``numeric``, ``math_verify`` or ``no_answer``; domains listed in
   ``external_only_domains`` (code) never take this path;
4. ``judge_score`` at or above ``judge_min_score`` (when configured): ``judge``;
5. otherwise ``unverifiable`` (``none``).

The external verdict, the test counts and the judge score are the
generation's own fields, or, where judgment files give them, the judgment's
values, merged in before this runs (``transforms/judgments.py``).

``verify_path`` says how a reference comparison was settled (cheap | cache |
math_verify; external for 1, 2 and 4): the stage reports the shares. The
cache/math_verify split depends on which rows share a process, so it is a
performance trace; the verdict itself never depends on it.

Decisions stay apart from signals (STYLE.md, Dolma), so a what-if can redo
them without re-verifying: ``incorrect`` for every incorrect verdict, and
``unverified`` where the source requires verification and no definite
verdict exists. An ``incorrect`` carries a span: the extracted answer's
offsets in ``answer`` and a ``detail`` naming the extracted answer, the
reference and the verifier; for a sandbox verdict (``transforms/code_verify.py``)
the detail is the code status, tests passed/total and the first failure
(``code_failure``), with no offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.transforms.math_equivalence import MathSettings, judge_answers

VERDICTS = ("correct", "incorrect", "unverifiable", "error")
VERIFY_REASONS = ("incorrect", "unverified")
SPAN_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField("reason", T.StringType()),
            T.StructField("start", T.IntegerType()),
            T.StructField("end", T.IntegerType()),
            T.StructField("detail", T.StringType()),
        ]
    )
)
MATCH_TYPE = T.StructType(
    [
        T.StructField("extracted_answer", T.StringType()),
        T.StructField("extracted_start", T.IntegerType()),
        T.StructField("extracted_end", T.IntegerType()),
        T.StructField("extraction_method", T.StringType()),
        T.StructField("verdict", T.StringType()),
        T.StructField("verifier", T.StringType()),
        T.StructField("verify_path", T.StringType()),
    ]
)
# Spellings of an external verdict (sandbox reports, judge dumps) that mean correct / incorrect.
EXTERNAL_CORRECT = ["correct", "pass", "passed", "true", "yes", "1", "accepted"]
EXTERNAL_INCORRECT = ["incorrect", "fail", "failed", "false", "no", "0", "wrong", "rejected"]


@dataclass(frozen=True)
class VerifyParams:
    """Verification settings (config section ``verify``)."""

    # Math-Verify's own per-call timeout (signal.alarm: whole seconds); a timeout is the verdict `error`.
    timeout_s: int = 5
    # Pairs per process-pool task, and how long the parent waits for one before calling its rows `error`.
    chunk_size: int = 64
    chunk_timeout_s: float = 120.0
    # Math-Verify results kept per engine process, by (normalized answer, reference).
    cache_entries: int = 200_000
    # A longer extracted answer is not parsed (verdict `error`): no final answer is that long.
    max_answer_chars: int = 1000
    # Without a box or answer phrase, Math-Verify scans this many trailing characters of the answer.
    scan_chars: int = 2000
    # Domains verified only by tests or external verdicts, never by matching a reference answer.
    external_only_domains: list[str] = field(default_factory=lambda: ["code"])
    # A judge score at or above this makes a verdict (correct, else incorrect); None: scores only rank.
    judge_min_score: float | None = None

    def __post_init__(self) -> None:
        if self.timeout_s < 1:
            raise ValueError("verify.timeout_s must be at least 1 (Math-Verify's alarm counts whole seconds)")
        if self.chunk_size < 1 or self.chunk_timeout_s <= 0:
            raise ValueError("verify.chunk_size and verify.chunk_timeout_s must be positive")

    def math_settings(self) -> MathSettings:
        return MathSettings(
            timeout_s=self.timeout_s,
            chunk_size=self.chunk_size,
            chunk_timeout_s=self.chunk_timeout_s,
            cache_entries=self.cache_entries,
            max_answer_chars=self.max_answer_chars,
            scan_chars=self.scan_chars,
        )


def answer_column(df: DataFrame) -> Column:
    """``answer`` when annotate made it, else the completion after its last ``</think>``."""
    if "answer" in df.columns:
        return F.col("answer")
    completion = F.col("completion")
    return F.when(
        F.instr(completion, "</think>") > 0, F.substring_index(completion, "</think>", -1)
    ).otherwise(completion)


def _match_udf(settings: MathSettings) -> Any:
    @F.pandas_udf(MATCH_TYPE)  # type: ignore[call-overload]
    def match_answers(answers: pd.Series, references: pd.Series) -> pd.DataFrame:
        # Nulls arrive as None or NaN depending on the engine: only real strings are texts.
        texts = [a if isinstance(a, str) else None for a in answers]
        refs = [r if isinstance(r, str) else None for r in references]
        outcomes = judge_answers(texts, refs, settings)
        return pd.DataFrame(
            {
                "extracted_answer": pd.Series([o.extracted if o else None for o in outcomes], dtype=object),
                "extracted_start": pd.Series([o.start if o else None for o in outcomes], dtype="Int32"),
                "extracted_end": pd.Series([o.end if o else None for o in outcomes], dtype="Int32"),
                "extraction_method": pd.Series([o.method if o else None for o in outcomes], dtype=object),
                "verdict": pd.Series([o.verdict if o else None for o in outcomes], dtype=object),
                "verifier": pd.Series([o.verifier if o else None for o in outcomes], dtype=object),
                "verify_path": pd.Series([o.path if o else None for o in outcomes], dtype=object),
            }
        )

    return match_answers


def _optional(df: DataFrame, name: str, data_type: str) -> Column:
    return F.col(name) if name in df.columns else F.lit(None).cast(data_type)


def verify_candidates(df: DataFrame, params: VerifyParams) -> DataFrame:
    """Add ``answer`` (if absent), ``extracted_answer``/``_start``/``_end``, ``extraction_method``,
    ``verdict``, ``verifier`` and ``verify_path``."""
    df = df.withColumn("answer", answer_column(df)) if "answer" not in df.columns else df
    external = F.lower(F.trim(_optional(df, "external_verdict", "string")))
    external_verdict = F.when(external.isin(EXTERNAL_CORRECT), F.lit("correct")).when(
        external.isin(EXTERNAL_INCORRECT), F.lit("incorrect")
    )
    passed, total = _optional(df, "tests_passed", "long"), _optional(df, "tests_total", "long")
    all_passed = F.when(passed >= total, F.lit("correct")).otherwise(F.lit("incorrect"))
    tests_verdict = F.when((total > 0) & passed.isNotNull(), all_passed)
    reference = _optional(df, "reference_answer", "string")
    domain = _optional(df, "domain", "string")
    matchable = (
        external_verdict.isNull()
        & tests_verdict.isNull()
        & reference.isNotNull()
        & (F.length(F.trim(reference)) > 0)
        & (~domain.isin(params.external_only_domains) if params.external_only_domains else F.lit(True))
    )
    matcher = _match_udf(params.math_settings())
    # The UDF sees null for rows it must not judge: Spark evaluates a UDF on every row, even under CASE WHEN.
    df = df.withColumn(
        "_match",
        matcher(F.when(matchable, F.coalesce(F.col("answer"), F.lit(""))), F.when(matchable, reference)),
    )
    judge = _optional(df, "judge_score", "double")
    judge_verdict: Column = F.lit(None).cast("string")
    if params.judge_min_score is not None:
        judge_verdict = F.when(
            judge.isNotNull(), F.when(judge >= params.judge_min_score, "correct").otherwise("incorrect")
        )
    verdict = F.coalesce(
        external_verdict, tests_verdict, F.col("_match.verdict"), judge_verdict, F.lit("unverifiable")
    )
    verifier = (
        F.when(external_verdict.isNotNull(), F.lit("external"))
        .when(tests_verdict.isNotNull(), F.lit("tests"))
        .when(F.col("_match.verdict").isNotNull(), F.col("_match.verifier"))
        .when(judge_verdict.isNotNull(), F.lit("judge"))
        .otherwise(F.lit("none"))
    )
    path = F.when(F.col("_match.verdict").isNotNull(), F.col("_match.verify_path")).when(
        verifier != "none", F.lit("external")
    )
    return (
        df.withColumn("extracted_answer", F.col("_match.extracted_answer"))
        .withColumn("extracted_start", F.col("_match.extracted_start"))
        .withColumn("extracted_end", F.col("_match.extracted_end"))
        .withColumn("extraction_method", F.col("_match.extraction_method"))
        .withColumn("verdict", verdict)
        .withColumn("verifier", verifier)
        .withColumn("verify_path", path)
        .drop("_match")
    )


def decide_verification(df: DataFrame, params: VerifyParams, requiring_sources: list[str]) -> DataFrame:
    """Append ``incorrect`` / ``unverified`` to ``reject_reasons`` and the ``incorrect`` span to ``spans``.

    Reasons and spans this function owns are dropped first, so running it again (a what-if) replaces
    rather than repeats them.
    """
    reasons = (
        F.filter(F.col("reject_reasons"), lambda r: ~r.isin(list(VERIFY_REASONS)))
        if "reject_reasons" in df.columns
        else F.array().cast("array<string>")
    )
    spans = (
        F.filter(F.col("spans"), lambda s: s["reason"] != F.lit("incorrect"))
        if "spans" in df.columns
        else F.array().cast(SPAN_TYPE)
    )
    requires = F.col("source").isin(requiring_sources) if requiring_sources else F.lit(False)
    incorrect = F.col("verdict") == "incorrect"
    unverified = requires & ~F.col("verdict").isin("correct", "incorrect")
    added = (
        F.when(incorrect, F.array(F.lit("incorrect")))
        .when(unverified, F.array(F.lit("unverified")))
        .otherwise(F.array().cast("array<string>"))
    )
    # "field: what", as the annotate spans say it; the offsets index `answer`.
    answer_detail = F.concat(
        F.lit("answer: "),
        F.when(
            F.col("extracted_answer").isNotNull(),
            F.concat(F.lit('extracted "'), F.col("extracted_answer"), F.lit('"')),
        ).otherwise(F.lit("no final answer found")),
        F.lit(', reference "'),
        F.coalesce(F.col("reference_answer"), F.lit("")),
        F.lit('" ('),
        F.coalesce(F.col("verifier"), F.lit("none")),
        F.lit(")"),
    )
    # Sandbox rows have no extracted answer or reference: the detail is what the tests said.
    detail = answer_detail
    if {"code_status", "code_failure", "tests_passed", "tests_total"} <= set(df.columns):
        code_detail = F.concat(
            F.lit("answer: "),
            F.col("code_status"),
            F.lit(", "),
            F.coalesce(F.col("tests_passed").cast("string"), F.lit("?")),
            F.lit("/"),
            F.coalesce(F.col("tests_total").cast("string"), F.lit("?")),
            F.lit(" tests passed"),
            F.when(F.col("code_failure").isNotNull(), F.concat(F.lit(": "), F.col("code_failure"))).otherwise(
                F.lit("")
            ),
            F.lit(" (sandbox)"),
        )
        detail = F.when(
            (F.col("verifier") == "sandbox") & F.col("code_status").isNotNull(), code_detail
        ).otherwise(answer_detail)
    span = F.struct(
        F.lit("incorrect").alias("reason"),
        F.col("extracted_start").cast("int").alias("start"),
        F.col("extracted_end").cast("int").alias("end"),
        detail.alias("detail"),
    )
    added_span = F.when(incorrect, F.array(span)).otherwise(F.array().cast(SPAN_TYPE))
    return df.withColumn("reject_reasons", F.concat(reasons, added)).withColumn(
        "spans", F.concat(spans.cast(SPAN_TYPE), added_span.cast(SPAN_TYPE))
    )


def verification_counts(df: DataFrame) -> DataFrame:
    """Rows per (verifier, verify_path, verdict): a small aggregate for stage metrics."""
    return df.groupBy("verifier", "verify_path", "verdict").agg(F.count(F.lit(1)).alias("rows"))


def summarize_verification(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage-metric details from ``verification_counts`` rows: verdicts, verifiers, path shares."""
    verdicts: dict[str, int] = {}
    verifiers: dict[str, int] = {}
    paths: dict[str, int] = {}
    for row in rows:
        n = int(row["rows"])
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + n
        verifiers[row["verifier"]] = verifiers.get(row["verifier"], 0) + n
        if row["verify_path"] in ("cheap", "cache", "math_verify"):
            paths[row["verify_path"]] = paths.get(row["verify_path"], 0) + n
    compared = sum(paths.values())
    shares = {k: round(v / compared, 4) for k, v in sorted(paths.items())} if compared else {}
    return {
        "verdicts": verdicts,
        "verifiers": verifiers,
        "reference_paths": paths,
        "reference_path_shares": shares,
    }
