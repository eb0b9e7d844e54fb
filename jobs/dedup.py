"""Stage ``dedup``: silver.prompts (+ silver.selected) -> silver.prompt_status, silver.contamination.

Order: decontaminate every prompt first (a contaminated prompt is never a
representative), then exact dedup of the rest by normalized-text hash, then
MinHash LSH over the exact keepers: candidate pairs, exact Jaccard check,
connected components (each round written to a scratch table and read back:
Sail has no checkpoint), one representative per component. Exact duplicate
responses across prompts (silver.selected) are flagged in
``duplicate_response_of``. Benchmark files are small: read on the driver
with pyarrow/orjson and handed to the engine as a frame.

Incremental: fingerprints (the MinHash pass, the stage's costly part) are
kept in ``silver.prompt_fingerprints``, one row per prompt with the hash of
the text it was computed from and the ``fingerprint_config`` it was computed
under. A run fingerprints only the prompts with no row for their current text,
and drops the rows of prompts gone from silver.prompts; everything is
fingerprinted again under ``--full``, without the table, or when the config
hash differs. Everything after fingerprinting (contamination, exact, LSH
pairs, Jaccard, components, representatives) runs over all stored
fingerprints every time: a new prompt must meet every earlier one, and these
steps cost little next to fingerprinting. So the outputs are the same as a
full rebuild's, row for row.

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
from sftmix.jobs.runtime.context import Phases, Runtime, StageResult, stage_main
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
    fingerprint_config,
    near_edges,
    prompt_status,
    representatives,
    verify_pairs,
    with_node_ids,
    with_text_hash,
)
from sftmix.transforms.selection import rl_prompt_pool

log = logging.getLogger("sftmix")

FINGERPRINTS = "silver.prompt_fingerprints"
PROMPT_KEY = ["source", "prompt_id"]


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


def benchmark_probe(rt: Runtime, rows: list[tuple[str, str, str | None, str | None]]) -> NgramProbe | None:
    """The benchmark questions' n-grams that ``fingerprint`` looks prompts up in (None: no benchmark)."""
    if not rows:
        return None
    return NgramProbe.build([r[2] for r in rows], rt.config.decontaminate, rt.config.dedup.max_chars)


def read_prompts(rt: Runtime) -> DataFrame:
    """silver.prompts as dedup needs it: key, text, the counts that pick a keeper, node id, text hash."""
    columns = ["source", "prompt_id", "prompt", "reference_answer", "n_correct", "n_selected"]
    return with_text_hash(with_node_ids(rt.tables.read("silver.prompts").select(*columns)))


def check_node_ids(fp: DataFrame) -> int:
    """Node ids are 64-bit key hashes; a collision (odds ~1e-8 at 1M prompts) must fail, not merge.

    A key repeated in silver.prompts counts as a collision too. Returns the number of prompts.
    """
    row = fp.agg(F.count("*").alias("n"), F.countDistinct("node").alias("d")).collect()[0]
    if row["n"] != row["d"]:
        raise RuntimeError(f"dedup: {row['n'] - row['d']} node-id collisions among {row['n']} prompts")
    return int(row["n"])


def refingerprint_reason(rt: Runtime, config: str) -> str | None:
    """Why every prompt must be fingerprinted again, or None when the stored fingerprints can be reused."""
    if rt.full_rebuild:
        return "--full"
    if not rt.tables.exists(FINGERPRINTS):
        return f"no {FINGERPRINTS} table"
    stored = {r[0] for r in rt.tables.read(FINGERPRINTS).select("fingerprint_config").distinct().limit(2).collect()}
    if stored and stored != {config}:
        return f"fingerprint config changed ({', '.join(sorted(stored))} -> {config})"
    return None  # same config, or an empty table: nothing stale to throw away


def update_fingerprints(
    rt: Runtime, prompts: DataFrame, probe: NgramProbe | None, scratch: Scratch, details: dict[str, Any]
) -> None:
    """Bring silver.prompt_fingerprints in step with ``prompts`` (key, node, text_hash, prompt).

    Only prompts without a row for their current text go through ``fingerprint``; its output is
    written to scratch first, so the Python pass runs once whatever reads it next (counts, merge).
    """
    cfg, seed = rt.config.dedup, rt.config.seed
    config = fingerprint_config(cfg, seed, probe)
    todo = prompts.select(*PROMPT_KEY, "node", "text_hash", "prompt")
    reason = refingerprint_reason(rt, config)
    if reason is None:
        stored = rt.tables.read(FINGERPRINTS)
        todo = todo.join(stored.select(*PROMPT_KEY, "text_hash"), [*PROMPT_KEY, "text_hash"], "left_anti")
        # Materialized: a merge source must not read the merge's own target, and the count is free.
        gone = scratch(stored.select(*PROMPT_KEY).join(prompts.select(*PROMPT_KEY), PROMPT_KEY, "left_anti"))
    else:
        log.info("dedup: fingerprinting every prompt: %s", reason)
    rt.progress("fingerprinting " + ("every prompt" if reason else "new and changed prompts"))
    fresh = scratch(fingerprint(todo, cfg, seed, probe).withColumn("fingerprint_config", F.lit(config)))
    fingerprinted = fresh.count()
    if reason is None:
        dropped = gone.count()
        log.info("dedup: %d prompts fingerprinted, %d fingerprints dropped", fingerprinted, dropped)
        if fingerprinted or dropped:
            rt.tables.merge(fresh, FINGERPRINTS, PROMPT_KEY, delete=gone)
    else:
        dropped = None
        rt.tables.write(fresh, FINGERPRINTS)
    details.update(
        fingerprint_mode="incremental" if reason is None else "full",
        refingerprint_reason=reason,
        fingerprint_config=config,
        fingerprinted=fingerprinted,
        fingerprints_dropped=dropped,
    )


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
        selected = rt.tables.read("silver.selected")
        responses = duplicate_responses(selected, rt.config.seed, stored_response_hashes(selected))
        return status.join(responses, ["source", "prompt_id"], "left")
    return status.withColumn("duplicate_response_of", F.lit(None).cast("string"))


def stored_response_hashes(selected: DataFrame) -> bool:
    """Whether annotate's ``response_hash`` can decide duplicate responses: the column exists and no
    row annotate measured (``annotate_error`` null) lacks it. Two narrow columns; stops at a miss."""
    if "response_hash" not in selected.columns:
        log.warning("dedup: silver.selected has no response_hash (an older sftmix): hashing the completions")
        return False
    measured = F.col("annotate_error").isNull() if "annotate_error" in selected.columns else F.lit(True)
    if selected.where(F.col("response_hash").isNull() & measured).limit(1).count():
        log.warning(
            "dedup: some selected rows have no response_hash (annotated by an older sftmix): "
            "duplicate responses are hashed from the completions instead"
        )
        return False
    return True


def dedup(rt: Runtime) -> StageResult:
    cfg, seed = rt.config.dedup, rt.config.seed
    prompts = read_prompts(rt)
    scratch = Scratch(rt, "dedup")
    details: dict[str, Any] = {}
    phases = Phases()
    try:
        # Before any fingerprinting: a repeated key or a node collision would also break the merge.
        n_prompts = check_node_ids(prompts)
        rows = benchmark_rows(rt)
        probe = benchmark_probe(rt, rows)
        update_fingerprints(rt, prompts, probe, scratch, details)
        phases.done("fingerprints_s")
        details["fingerprints_reused"] = n_prompts - details["fingerprinted"]
        rt.progress("near duplicates and contamination over all fingerprints")
        # Counts come from silver.prompts, fingerprints from the table; the text hash in the join
        # guarantees no fingerprint of an older text is used.
        stored = rt.tables.read(FINGERPRINTS).select(
            *PROMPT_KEY, "text_hash", "norm_hash", "n_tokens", "lsh_keys", "bench_ngrams"
        )
        fp = scratch(prompts.drop("prompt").join(stored, [*PROMPT_KEY, "text_hash"]).drop("text_hash"))
        if fp.count() != n_prompts:
            raise RuntimeError(f"dedup: {FINGERPRINTS} is out of step with silver.prompts")
        matches, contaminated, report = contamination(rt, fp, rows, scratch)
        phases.done("contamination_s")

        clean = fp.join(contaminated.select("node"), "node", "left_anti")
        exact = exact_keepers(clean, seed) if cfg.exact else clean.withColumn("exact_keeper", F.col("node"))
        exact = scratch(exact)
        keepers = exact.where(F.col("node") == F.col("exact_keeper"))
        phases.done("exact_s")
        clusters = near_duplicate_clusters(keepers, prompts, cfg, seed, scratch, details) if cfg.near else None
        phases.done("near_s")

        everyone = fp.join(exact.select("node", "exact_keeper"), "node", "left")
        status = with_duplicate_responses(rt, prompt_status(everyone, clusters, contaminated))
        rt.tables.write(status, "silver.prompt_status")
        rt.tables.write(matches.drop("node"), "silver.contamination")
        rt.tables.write(report, "ops.contamination_report")
        phases.done("status_s")  # duplicate responses included
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
    phases.done("figures_and_rl_s")
    details["phases"] = phases.seconds
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
