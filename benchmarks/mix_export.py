"""Benchmark of the mix and export stages on synthetic silver tables (default 1M candidates).

Writes silver.candidates / silver.selected / silver.prompt_status with the engine
(reasoning of 1-16 paragraphs of 60 demo-vocabulary words, drawn from a fixed
pool by a hash of the id; 4 candidates per reasoning prompt, ~15% rejected,
~3% of prompts dropped by dedup), then times the stages with the default config
(800,000 rows: 600k reasoning in R1 proportions + 200k non-reasoning; 5,000
cold-start rows; 20,000-row shards in JSONL and Parquet).

    .venv/bin/python benchmarks/mix_export.py --candidates 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import functions as F  # noqa: E402

from benchmarks.common import WORK, peak_rss_gb, report  # noqa: E402
from sftmix.jobs.export import export  # noqa: E402
from sftmix.jobs.mix import mix  # noqa: E402
from sftmix.jobs.runtime.context import open_runtime, setup_logging  # noqa: E402

REASONING_DOMAINS = (("math", 600), ("code", 900), ("stem", 950), ("logic", 1000))
CHAT_DOMAINS = (("writing", 350), ("factual_qa", 650), ("self_cognition", 750), ("translation", 1000))


def _pool(count: int, words: int, seed: int) -> list[str]:
    import random

    from sftmix.jobs.demo.words import ADJECTIVES, NOUNS

    rng = random.Random(seed)
    vocab = sorted(set(NOUNS) | set(ADJECTIVES))
    return [" ".join(rng.choice(vocab) for _ in range(words)).capitalize() + "." for _ in range(count)]


def generate(batches, reasoning_rows: int):  # noqa: ANN001, ANN201 - mapInArrow over spark.range
    """Candidate rows from ids: paragraphs from a fixed pool picked by a hash of the id (fast, repeatable)."""
    import pyarrow as pa
    import xxhash

    paragraphs, sentences = _pool(4096, 60, 1), _pool(4096, 25, 2)
    for batch in batches:
        out: dict[str, list] = {
            k: []
            for k in (
                "candidate_id",
                "prompt_id",
                "source",
                "kind",
                "domain",
                "prompt",
                "reasoning",
                "answer",
                "reject_reasons",
                "sample_index",
            )
        }
        for i in batch.column("id").to_pylist():
            reasoning = i < reasoning_rows
            prompt_no = i // 4 if reasoning else i
            bucket = xxhash.xxh64_intdigest(str(prompt_no).encode()) % 1000
            domain = next(d for d, cut in (REASONING_DOMAINS if reasoning else CHAT_DOMAINS) if bucket < cut)
            h = xxhash.xxh64_intdigest(str(i).encode())
            n_paragraphs = 1 + h % 16 if reasoning else (h % 3 if domain in ("writing", "factual_qa") else 0)
            text = "\n\n".join(paragraphs[(h >> (4 * k)) % 4096 ^ k] for k in range(n_paragraphs)) or None
            out["candidate_id"].append(f"c{i:09d}")
            out["prompt_id"].append(f"p{prompt_no}")
            out["source"].append(f"bench_{domain}")
            out["kind"].append("reasoning" if reasoning else "non_reasoning")
            out["domain"].append(domain)
            out["prompt"].append(f"Question {prompt_no}: {sentences[prompt_no % 4096]}")
            out["reasoning"].append(text)
            out["answer"].append(f"In summary, {sentences[h % 4096].lower()} The answer is {h % 97}.")
            out["reject_reasons"].append(["incorrect"] if (h >> 40) % 100 < 15 else [])
            out["sample_index"].append(i % 4 if reasoning else 0)
        yield pa.RecordBatch.from_pydict(out)


def write_inputs(rt, candidates: int) -> dict:
    import functools

    spark = rt.spark
    reasoning_rows = int(candidates * 0.78) // 4 * 4
    narrow = (
        "candidate_id string, prompt_id string, source string, kind string, domain string, prompt string, "
        "reasoning string, answer string, reject_reasons array<string>, sample_index long"
    )
    rows = (
        spark.range(candidates)
        .repartition(8)
        .mapInArrow(functools.partial(generate, reasoning_rows=reasoning_rows), narrow)
        .select(
            "*",
            F.lit(None).cast("string").alias("system"),
            F.lit(None).cast("array<struct<role:string,content:string>>").alias("messages"),
            F.coalesce(F.length("reasoning"), F.lit(0)).cast("long").alias("reasoning_chars"),
            F.length("answer").cast("long").alias("answer_chars"),
            F.lit("correct").alias("verdict"),
        )
    )
    rt.tables.write(rows, "silver.candidates")
    candidates_table = rt.tables.read("silver.candidates")
    selected = candidates_table.where(F.size("reject_reasons") == 0).withColumn("select_rank", F.lit(1))
    rt.tables.write(selected, "silver.selected")
    prompts = candidates_table.select("source", "prompt_id").distinct()
    roll = F.pmod(F.xxhash64(F.lit(13), F.col("prompt_id")), F.lit(100))
    status = prompts.select(
        "source",
        "prompt_id",
        F.when(roll == 0, "duplicate_prompt")
        .when(roll == 1, "near_duplicate")
        .when(roll == 2, "contaminated")
        .otherwise("kept")
        .alias("dedup_status"),
        F.lit(None).cast("string").alias("duplicate_of"),
    )
    rt.tables.write(status, "silver.prompt_status")
    size = sum(
        p.stat().st_size for p in Path(rt.tables.location("silver.candidates")).rglob("*") if p.is_file()
    )
    return {"candidates_bytes_on_disk": size}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--total", type=int, default=None, help="mix total (default: 80%% of --candidates)")
    parser.add_argument("--keep", action="store_true", help="reuse the inputs of an earlier run")
    args = parser.parse_args()
    setup_logging()
    work = WORK / "mix_export"
    lake = work / "lake"
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "conf.yaml"
    conf.write_text(
        f"extends: {Path(__file__).resolve().parent.parent / 'conf' / 'base.yaml'}\n"
        f"storage: {{root: {lake}}}\n"
        f"mix: {{total: {args.total or int(args.candidates * 0.8)}}}\n"
    )
    figures: dict = {"candidates": args.candidates}
    with open_runtime(str(conf)) as rt:
        if not args.keep:
            started = time.perf_counter()
            figures.update(write_inputs(rt, args.candidates))
            figures["inputs_s"] = round(time.perf_counter() - started, 1)
        for stage, body in (("mix", mix), ("export", export)):
            started, cpu = time.perf_counter(), cpu_seconds()
            result = rt.run_stage(stage, body)
            figures[f"{stage}_s"] = round(time.perf_counter() - started, 1)
            # CPU seconds of this process (the embedded engine runs here): comparable under a shared load.
            figures[f"{stage}_cpu_s"] = round(cpu_seconds() - cpu, 1)
            figures[f"{stage}_rows_out"] = result.rows_out
            figures[f"{stage}_details"] = {k: v for k, v in result.details.items() if k != "plan"}
        figures["selected_rows"] = rt.tables.read("silver.selected").count()
    export_bytes = sum(p.stat().st_size for p in (lake / "export").rglob("*") if p.is_file())
    figures["export_mb"] = round(export_bytes / 1e6, 1)
    figures["peak_rss_gb"] = round(peak_rss_gb(), 2)
    figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
    report("mix_export", figures)


if __name__ == "__main__":
    main()
