"""Benchmark decontamination: word n-gram overlap and exact match after normalization.

A prompt is contaminated by a benchmark item when, after the normalization of
``text_normalize.py`` (NFKC, case fold, number formatting, punctuation and
whitespace), it contains at least ``min_overlap`` of the item question's word
``ngram``-grams (and at least ``min_matching_ngrams`` of them; open-r1 uses
8-grams and any one shared; DeepSeek used 10), or equals it exactly. N-grams,
not whole-text hashes, catch an added instruction ("Solve the following
problem: ...") or a suffix ("Put the answer in \\boxed{}"): the question's own
n-grams survive inside the prompt. A question shorter than ``ngram`` tokens
has no n-gram of that size and is matched exactly only.

How it runs: the stage builds an ``NgramProbe`` from the benchmark questions
(small, on the driver); ``dedup.fingerprint`` looks every prompt's n-grams up
in it during the one pass over the text, keeping only the hits
(``bench_ngrams``); ``find_contamination`` joins those few hits with the
items' n-grams (``item_ngrams``) into one audit row per (prompt, item) match;
``contaminated_prompts`` keeps the strongest per prompt and
``contamination_report`` counts per benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.transforms import process_pool
from sftmix.transforms.text_normalize import ngram_hashes, text_hashes, tokenize


@dataclass(frozen=True)
class BenchmarkFile:
    """One benchmark file: JSONL or Parquet with a question field and an optional answer field."""

    name: str
    path: str
    question_field: str = "question"
    answer_field: str | None = None
    # Field naming an item; null: "id" when the file has it, else the 1-based row number.
    id_field: str | None = None


@dataclass(frozen=True)
class DecontaminateParams:
    """Decontamination against benchmark files (documented in conf/base.yaml)."""

    enabled: bool = True
    ngram: int = 8
    min_matching_ngrams: int = 1
    # Share of the item's n-grams the prompt must contain. 0 is open-r1's rule (any shared n-gram),
    # which flags prompts that merely share a stock phrase ("find the length of the diagonal of the");
    # a copied question, even with a prefix, suffix or reformatted numbers, keeps nearly all of them.
    min_overlap: float = 0.5
    exact_match: bool = True
    # Per prompt: long prompts keep their first n-grams only (memory bound). Text is read up to
    # dedup.max_chars: the n-grams come from the same tokenization pass as the MinHash shingles.
    max_ngrams: int = 20_000
    batch_rows: int = 2000
    benchmarks: list[BenchmarkFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.min_matching_ngrams < 1 or self.max_ngrams < 1:
            raise ValueError("decontaminate.ngram, min_matching_ngrams and max_ngrams must be >= 1")
        if not 0.0 <= self.min_overlap <= 1.0:
            raise ValueError(f"decontaminate.min_overlap must be in [0, 1], got {self.min_overlap}")
        names = [b.name for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ValueError("decontaminate.benchmarks: names must be unique")


# Prefilter bitmap: 2**20 bits (128 KB) keyed by the top bits of an n-gram hash. It travels with every
# process-pool work item (the exact hash list may be megabytes), and at benchmark sizes (MATH-500 + AIME
# + GPQA: ~50k n-grams) it passes ~5% of a prompt's n-grams; the exact check then runs in the engine.
_PREFILTER_BITS = 20


@dataclass(frozen=True)
class NgramProbe:
    """The benchmark n-grams a prompt's n-grams are looked up in."""

    n: int
    max_ngrams: int
    bits: np.ndarray  # packed prefilter bitmap
    hashes: np.ndarray | None  # sorted unique int64 n-gram hashes; None in the copy sent to pool workers

    @staticmethod
    def build(questions: Sequence[str | None], params: DecontaminateParams, max_chars: int) -> NgramProbe:
        tokens = tokenize(pa.array(list(questions), pa.string()), max_chars)
        offsets, hashes = ngram_hashes(tokens, params.ngram)
        full = np.repeat(tokens.lengths >= params.ngram, np.diff(offsets))
        unique = np.unique(hashes[full])
        bitmap = np.zeros(1 << _PREFILTER_BITS, dtype=bool)
        bitmap[(unique >> np.uint64(64 - _PREFILTER_BITS)).astype(np.int64)] = True
        # Sorted as signed: the order searchsorted sees in ``contains`` (unique sorted them unsigned).
        return NgramProbe(params.ngram, params.max_ngrams, np.packbits(bitmap), np.sort(unique.view(np.int64)))

    def light(self) -> NgramProbe:
        return NgramProbe(self.n, self.max_ngrams, self.bits, None)

    def prefilter(self, hashes: np.ndarray) -> np.ndarray:
        """Mask of uint64 hashes that may be benchmark n-grams (no false negatives)."""
        index = (hashes >> np.uint64(64 - _PREFILTER_BITS)).astype(np.int64)
        return ((self.bits[index >> 3] >> (7 - (index & 7)).astype(np.uint8)) & 1) == 1

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Exact membership of int64 hashes."""
        if self.hashes is None:
            raise ValueError("NgramProbe.contains needs the full probe, not its light copy")
        if len(self.hashes) == 0 or len(hashes) == 0:
            return np.zeros(len(hashes), dtype=bool)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return self.hashes[at] == hashes


BENCHMARK_SCHEMA = T.StructType(
    [
        T.StructField("benchmark", T.StringType()),
        T.StructField("item_id", T.StringType()),
        T.StructField("question", T.StringType()),
        T.StructField("answer", T.StringType()),
    ]
)

def _ngram_work(items: Sequence[tuple[list[str | None], int, int, int]]) -> list[tuple]:
    out = []
    for texts, n, max_chars, max_ngrams in items:
        tokens = tokenize(pa.array(texts, pa.string()), max_chars)
        offsets, hashes = ngram_hashes(tokens, n, max_ngrams)
        # Short texts got one n-gram made of all their tokens: not an n-gram of size n, drop it.
        full = tokens.lengths >= n
        keep = np.repeat(full, np.diff(offsets))
        counts = np.where(full, np.diff(offsets), 0)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        texts_out = _ngram_texts(tokens.normalized, n, max_ngrams)
        out.append((text_hashes(tokens.normalized), offsets, hashes[keep].view(np.int64), texts_out))
    return out


def _ngram_texts(normalized: pa.Array, n: int, max_ngrams: int) -> list[str]:
    """The n-grams as text, in the order of ``ngram_hashes`` (benchmark side only: small)."""
    texts = []
    for value in normalized.to_pylist():
        words = value.split(" ") if value else []
        texts.extend(" ".join(words[i : i + n]) for i in range(min(len(words) - n + 1, max_ngrams)))
    return texts


def _ngram_frame(df: DataFrame, text_col: str, params: DecontaminateParams, max_chars: int) -> DataFrame:
    """Keep every column but ``text_col``; add ``norm_hash`` and ``ngrams`` (structs of hash and text)."""
    kept = [f for f in df.schema.fields if f.name != text_col]
    names = [f.name for f in kept]
    element = T.StructType([T.StructField("hash", T.LongType()), T.StructField("text", T.StringType())])
    schema = T.StructType(
        kept + [T.StructField("norm_hash", T.LongType()), T.StructField("ngrams", T.ArrayType(element))]
    )
    n, max_ngrams, batch_rows = params.ngram, params.max_ngrams, params.batch_rows

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            texts = batch.column(text_col).to_pylist()
            pieces = [
                (texts[i : i + batch_rows], n, max_chars, max_ngrams) for i in range(0, len(texts), batch_rows)
            ]
            results = process_pool.map_chunks(_ngram_work, pieces, chunk_size=1)
            norm = np.concatenate([r[0] for r in results])
            counts = np.concatenate([np.diff(r[1]) for r in results])
            offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32), pa.int32())
            hashes = pa.array(np.concatenate([r[2] for r in results]), pa.int64())
            text_values = pa.array([t for r in results for t in r[3]], pa.string())
            values = pa.StructArray.from_arrays([hashes, text_values], names=["hash", "text"])
            ngrams = pa.ListArray.from_arrays(offsets, values)
            columns = [batch.column(name) for name in names] + [pa.array(norm, pa.int64()), ngrams]
            yield pa.RecordBatch.from_arrays(columns, names=[f.name for f in schema.fields])

    return df.mapInArrow(run, schema)


def _answer_key(col: str) -> F.Column:
    """Answers compared loosely for the audit: case, spaces and dollar signs ignored."""
    return F.lower(F.regexp_replace(F.coalesce(F.col(col), F.lit("")), r"[\s$]", ""))


def item_ngrams(items: DataFrame, params: DecontaminateParams, max_chars: int) -> DataFrame:
    """Benchmark items with ``norm_hash``, ``item_ngrams`` (count) and ``ngrams`` (hash + text, for the audit)."""
    return _ngram_frame(items, "question", params, max_chars).withColumn(
        "item_ngrams", F.size("ngrams")
    )


def find_contamination(prompts: DataFrame, item_ngrams: DataFrame, params: DecontaminateParams) -> DataFrame:
    """Audit rows: one per (prompt, benchmark item) that matches, exact or by shared n-grams.

    ``prompts``: node, source, prompt_id, norm_hash, ``bench_ngrams`` (the prompt's n-gram hashes
    found in the benchmarks: ``dedup.fingerprint`` with an ``NgramProbe``) and optionally
    reference_answer. ``item_ngrams``: the frame of ``item_ngrams(...)``. Both sides are small by
    now: no prompt-side explosion of every n-gram.
    """
    answer = "reference_answer" if "reference_answer" in prompts.columns else None
    prompt_ngrams = prompts
    item_info = item_ngrams.select("benchmark", "item_id", "answer", "item_ngrams")
    bench_grams = item_ngrams.select("benchmark", "item_id", F.explode("ngrams").alias("g")).select(
        "benchmark", "item_id", F.col("g.hash").alias("hash"), F.col("g.text").alias("text")
    )
    by_ngram = (
        prompt_ngrams.select("node", F.explode("bench_ngrams").alias("hash"))
        .distinct()
        .join(F.broadcast(bench_grams), "hash")
        .groupBy("node", "benchmark", "item_id")
        .agg(F.count("*").alias("matching_ngrams"), F.min(F.struct("hash", "text")).alias("first"))
        .join(F.broadcast(item_info.select("benchmark", "item_id", "item_ngrams")), ["benchmark", "item_id"])
        .where(
            (F.col("matching_ngrams") >= params.min_matching_ngrams)
            & (F.col("matching_ngrams") >= F.lit(params.min_overlap) * F.col("item_ngrams"))
        )
        .select("node", "benchmark", "item_id", "matching_ngrams", F.col("first.text").alias("ngram"))
    )
    matches = by_ngram.withColumn("exact", F.lit(False))
    if params.exact_match:
        exact = prompt_ngrams.select("node", "norm_hash").join(
            F.broadcast(item_ngrams.select("benchmark", "item_id", "norm_hash")), "norm_hash"
        )
        matches = (
            exact.select("node", "benchmark", "item_id", F.lit(True).alias("exact"))
            .join(by_ngram, ["node", "benchmark", "item_id"], "full")
            .withColumn("exact", F.coalesce(F.col("exact"), F.lit(False)))
            .withColumn("matching_ngrams", F.coalesce(F.col("matching_ngrams"), F.lit(0)))
        )
    info = prompt_ngrams.select("node", "source", "prompt_id", *([answer] if answer else []))
    joined = matches.join(info, "node").join(F.broadcast(item_info), ["benchmark", "item_id"])
    answer_match = (
        F.when(
            F.col(answer).isNotNull() & F.col("answer").isNotNull(), _answer_key(answer) == _answer_key("answer")
        )
        if answer
        else F.lit(None).cast("boolean")
    )
    return joined.select(
        "node",
        "source",
        "prompt_id",
        "benchmark",
        "item_id",
        F.when(F.col("exact"), F.lit("exact")).otherwise(F.lit("ngram")).alias("match"),
        F.col("matching_ngrams").cast("int").alias("matching_ngrams"),
        F.col("item_ngrams").cast("int").alias("item_ngrams"),
        F.when(F.col("item_ngrams") > 0, F.col("matching_ngrams") / F.col("item_ngrams"))
        .otherwise(F.lit(None))
        .cast("double")
        .alias("overlap"),
        F.when(F.col("exact") & F.col("ngram").isNull(), F.lit("<exact match>"))
        .otherwise(F.col("ngram"))
        .alias("ngram"),
        answer_match.alias("answer_match"),
    )


def contaminated_prompts(matches: DataFrame) -> DataFrame:
    """The strongest match per prompt: exact first, then most shared n-grams, then benchmark/item."""
    window = Window.partitionBy("node").orderBy(
        F.col("match").asc(),  # "exact" < "ngram"
        F.col("matching_ngrams").desc(),
        F.col("benchmark"),
        F.col("item_id"),
    )
    return (
        matches.withColumn("rank", F.row_number().over(window))
        .where(F.col("rank") == 1)
        .select(
            "node",
            F.concat_ws("/", "benchmark", "item_id").alias("contaminated_by"),
            F.col("ngram").alias("contamination_ngram"),
            F.col("match").alias("contamination_match"),
        )
    )


def contamination_report(matches: DataFrame, items: DataFrame) -> DataFrame:
    """Per benchmark: items, items matched, prompts matched, exact and n-gram matches."""
    per_bench = matches.groupBy("benchmark").agg(
        F.countDistinct("item_id").alias("items_matched"),
        F.countDistinct("node").alias("prompts_matched"),
        F.sum(F.when(F.col("match") == "exact", 1).otherwise(0)).alias("exact_matches"),
        F.sum(F.when(F.col("match") == "ngram", 1).otherwise(0)).alias("ngram_matches"),
        F.sum(F.when(F.col("answer_match"), 1).otherwise(0)).alias("answer_matches"),
    )
    sizes = items.groupBy("benchmark").agg(F.count("*").alias("items"))
    return (
        sizes.join(per_bench, "benchmark", "left")
        .fillna(0, ["items_matched", "prompts_matched", "exact_matches", "ngram_matches", "answer_matches"])
        .select(
            "benchmark",
            F.col("items").cast("long"),
            F.col("items_matched").cast("long"),
            F.col("prompts_matched").cast("long"),
            F.col("exact_matches").cast("long"),
            F.col("ngram_matches").cast("long"),
            F.col("answer_matches").cast("long"),
        )
    )
