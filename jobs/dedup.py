"""Stage ``dedup``: silver.prompts (+ silver.selected) -> silver.prompt_status, silver.contamination.

Order: decontaminate every prompt first (a contaminated prompt is never a
representative), then exact dedup of the rest by normalized-text hash, then
MinHash LSH over the exact keepers: candidate pairs, exact Jaccard check,
connected components (each round written to a scratch table and read back:
Sail has no checkpoint), one representative per component. Exact duplicate
responses across prompts (silver.selected) are flagged in
``duplicate_response_of``. Benchmark files are small: read on the driver
with pyarrow/orjson and handed to the engine as a frame.

Writes ``silver.prompt_status`` (one row per prompt), ``silver.contamination``
(one audit row per prompt x benchmark item match) and
``ops.contamination_report`` (one row per benchmark); rewrites
``gold.rl_prompts`` with select's rule restricted to kept prompts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import orjson
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sftmix.jobs.runtime.config import ConfigError
from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.connected_components import connected_components
from sftmix.transforms.decontaminate import (
    BENCHMARK_SCHEMA,
    BenchmarkFile,
    NgramProbe,
    contaminated_prompts,
    contamination_report,
    find_contamination,
    item_ngrams,
)
from sftmix.transforms.dedup import (
    DedupParams,
    candidate_pairs,
    duplicate_responses,
    exact_keepers,
    fingerprint,
    near_edges,
    prompt_status,
    representatives,
    verify_pairs,
    with_node_ids,
)
from sftmix.transforms.selection import rl_prompt_pool

log = logging.getLogger("sftmix")


class Scratch:
    """``materialize``: write a frame to a fresh scratch Parquet path and read it back (cuts the plan)."""

    def __init__(self, rt: Runtime, purpose: str) -> None:
        self.rt, self.purpose, self.paths = rt, purpose, []
        self.seconds: list[float] = []  # per write: where a stage's time goes

    def __call__(self, df: DataFrame) -> DataFrame:
        path = self.rt.tables.scratch(self.purpose)
        self.paths.append(path)
        started = time.perf_counter()
        df.write.mode("overwrite").parquet(path)
        self.seconds.append(round(time.perf_counter() - started, 2))
        # With the schema given: Sail writes no file for an empty frame, and a bare read finds no columns.
        return self.rt.spark.read.schema(df.schema).parquet(path)

    def drop(self) -> None:
        for path in self.paths:
            self.rt.tables.drop_scratch(path)
        self.paths.clear()


def read_benchmark(bench: BenchmarkFile) -> list[tuple[str, str, str | None, str | None]]:
    """(benchmark, item_id, question, answer) rows of one JSONL or Parquet file, read on the driver."""
    if not os.path.isfile(bench.path):
        raise ConfigError(f"decontaminate.benchmarks[{bench.name}]: file not found: {bench.path}")
    if bench.path.endswith(".parquet"):
        records = pq.read_table(bench.path).to_pylist()
    else:
        with open(bench.path, "rb") as handle:
            records = [orjson.loads(line) for line in handle if line.strip()]
    rows = []
    for index, record in enumerate(records, start=1):
        if bench.question_field not in record:
            raise ConfigError(
                f"decontaminate.benchmarks[{bench.name}]: record {index} of {bench.path} "
                f"has no field {bench.question_field!r}"
            )
        id_field = bench.id_field or ("id" if "id" in record else None)
        item_id = str(record[id_field]) if id_field else str(index)
        answer = record.get(bench.answer_field) if bench.answer_field else None
        rows.append((bench.name, item_id, _as_text(record[bench.question_field]), _as_text(answer)))
    return rows


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def benchmark_rows(rt: Runtime) -> list[tuple[str, str, str | None, str | None]]:
    decon = rt.config.decontaminate
    if not decon.enabled:
        return []
    return [row for bench in decon.benchmarks for row in read_benchmark(bench)]


def check_node_ids(fp: DataFrame) -> None:
    """Node ids are 64-bit key hashes; a collision (odds ~1e-8 at 1M prompts) must fail, not merge."""
    row = fp.agg(F.count("*").alias("n"), F.countDistinct("node").alias("d")).collect()[0]
    if row["n"] != row["d"]:
        raise RuntimeError(f"dedup: {row['n'] - row['d']} node-id collisions among {row['n']} prompts")


def near_duplicate_clusters(
    keepers: DataFrame, texts: DataFrame, cfg: DedupParams, seed: int, scratch: Scratch, details: dict[str, Any]
) -> DataFrame:
    """(node, component, representative, ...) of every exact keeper: LSH pairs, Jaccard check, components."""
    bands, rows = cfg.lsh()
    scored = scratch(verify_pairs(candidate_pairs(keepers, cfg.max_bucket_size), texts, cfg, seed))
    components = connected_components(near_edges(scored, cfg), scratch, cfg.max_rounds)
    pair_counts = scored.agg(
        F.count("*").alias("candidates"), F.count(F.when(F.col("jaccard") >= cfg.threshold, 1)).alias("edges")
    ).collect()[0]
    details.update(
        lsh_bands=bands,
        lsh_rows=rows,
        candidate_pairs=pair_counts["candidates"],
        verified_pairs=pair_counts["edges"] if cfg.verify_jaccard else None,
        cc_rounds=components.rounds,
    )
    return representatives(keepers, components.labels, seed)


def contamination(
    rt: Runtime, fp: DataFrame, rows: list[tuple], scratch: Scratch
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(audit matches, strongest match per prompt, per-benchmark report) of fingerprinted prompts.

    Runs with no benchmark too: the (then empty) tables replace those of an earlier configuration.
    """
    decon, max_chars = rt.config.decontaminate, rt.config.dedup.max_chars
    items = scratch(item_ngrams(rt.spark.createDataFrame(rows, BENCHMARK_SCHEMA), decon, max_chars))
    matches = scratch(find_contamination(fp, items, decon))
    return matches, contaminated_prompts(matches), contamination_report(matches, items)


def with_duplicate_responses(rt: Runtime, status: DataFrame) -> DataFrame:
    if rt.config.dedup.duplicate_responses and rt.tables.exists("silver.selected"):
        responses = duplicate_responses(rt.tables.read("silver.selected"), rt.config.seed)
        return status.join(responses, ["source", "prompt_id"], "left")
    return status.withColumn("duplicate_response_of", F.lit(None).cast("string"))


def dedup(rt: Runtime) -> StageResult:
    cfg, seed = rt.config.dedup, rt.config.seed
    columns = ["source", "prompt_id", "prompt", "reference_answer", "n_correct", "n_selected"]
    prompts = with_node_ids(rt.tables.read("silver.prompts").select(*columns))
    scratch = Scratch(rt, "dedup")
    details: dict[str, Any] = {}
    try:
        rows = benchmark_rows(rt)
        probe = NgramProbe.build([r[2] for r in rows], rt.config.decontaminate, cfg.max_chars) if rows else None
        fp = scratch(fingerprint(prompts, cfg, seed, probe))
        check_node_ids(fp)
        matches, contaminated, report = contamination(rt, fp, rows, scratch)

        clean = fp.join(contaminated.select("node"), "node", "left_anti")
        exact = exact_keepers(clean, seed) if cfg.exact else clean.withColumn("exact_keeper", F.col("node"))
        exact = scratch(exact)
        keepers = exact.where(F.col("node") == F.col("exact_keeper"))
        clusters = near_duplicate_clusters(keepers, prompts, cfg, seed, scratch, details) if cfg.near else None

        everyone = fp.join(exact.select("node", "exact_keeper"), "node", "left")
        status = with_duplicate_responses(rt, prompt_status(everyone, clusters, contaminated))
        rt.tables.write(status, "silver.prompt_status")
        rt.tables.write(matches.drop("node"), "silver.contamination")
        rt.tables.write(report, "ops.contamination_report")
    finally:
        scratch.drop()

    report_rows = rt.tables.read("ops.contamination_report").collect()
    details["benchmarks"] = {r["benchmark"]: r.asDict() for r in report_rows}
    written = rt.tables.read("silver.prompt_status")
    per_status = written.groupBy("dedup_status").agg(
        F.count("*").alias("n"), F.count("duplicate_response_of").alias("responses")
    ).collect()
    counts = {r["dedup_status"]: r["n"] for r in per_status}
    details["duplicate_responses"] = sum(r["responses"] for r in per_status)
    rewrite_rl_prompts(rt, written)
    return StageResult(
        rows_in=sum(counts.values()),
        rows_out=counts.get("kept", 0),
        rejected={k: v for k, v in counts.items() if k != "kept"},
        details=details,
    )


def rewrite_rl_prompts(rt: Runtime, status: DataFrame) -> None:
    """gold.rl_prompts again, from silver.prompts, with only the prompts kept here (select's own rule)."""
    pool = rl_prompt_pool(rt.tables.read("silver.prompts"), rt.config.select, status)
    rt.tables.write(pool, "gold.rl_prompts")


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("dedup", dedup)


if __name__ == "__main__":
    stage_main("dedup", dedup)
