"""Benchmark of the stable mix: a mix of 1M candidates, then +10% new candidates (no duplicates of
earlier prompts), mixed again with ``mix.stable`` and, for comparison, from scratch; ``sftmix diff``.

Inputs are the synthetic silver tables of ``benchmarks/mix_export.py`` (the default config's 800,000-row
mix); the new batch is the same generator with ids and prompt ids of its own. Phases run as separate
commands so that none takes long on a shared machine; figures accumulate in
``benchmarks/results/mix_stable-latest.json``:

    .venv/bin/python benchmarks/mix_stable.py --phase base     # inputs + mix version 1
    .venv/bin/python benchmarks/mix_stable.py --phase grow     # +10%, stable mix version 2, diff 1 -> 2
    .venv/bin/python benchmarks/mix_stable.py --phase scratch  # from-scratch version 3, diff 2 -> 3
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import functions as F  # noqa: E402

from benchmarks.common import RESULTS, WORK, peak_rss_gb, report  # noqa: E402
from benchmarks.mix_export import cpu_seconds, generate, write_inputs  # noqa: E402
from sftmix.jobs.diff import run_diff  # noqa: E402
from sftmix.jobs.mix import mix, mix_versions, version_rows  # noqa: E402
from sftmix.jobs.runtime.context import open_runtime, setup_logging  # noqa: E402

NAME = "mix_stable"


def append_batch(rt, count: int) -> None:
    """``count`` new candidates (new prompts only) appended to silver.candidates / selected / prompt_status."""
    narrow = (
        "candidate_id string, prompt_id string, source string, kind string, domain string, prompt string, "
        "reasoning string, answer string, reject_reasons array<string>, sample_index long"
    )
    reasoning_rows = int(count * 0.78) // 4 * 4
    rows = (
        rt.spark.range(count)
        .repartition(4)
        .mapInArrow(functools.partial(generate, reasoning_rows=reasoning_rows), narrow)
        .select(
            F.concat(F.lit("new-"), F.col("candidate_id")).alias("candidate_id"),
            F.concat(F.lit("new-"), F.col("prompt_id")).alias("prompt_id"),
            "source",
            "kind",
            "domain",
            "prompt",
            "reasoning",
            "answer",
            "reject_reasons",
            "sample_index",
            F.lit(None).cast("string").alias("system"),
            F.lit(None).cast("array<struct<role:string,content:string>>").alias("messages"),
            F.coalesce(F.length("reasoning"), F.lit(0)).cast("long").alias("reasoning_chars"),
            F.length("answer").cast("long").alias("answer_chars"),
            F.lit("correct").alias("verdict"),
        )
    )
    scratch = rt.tables.scratch("new-batch")
    rows.write.mode("overwrite").parquet(scratch)
    batch = rt.spark.read.parquet(scratch)
    columns = rt.tables.read("silver.candidates").columns
    rt.tables.write(batch.select(*columns), "silver.candidates", mode="append")
    selected = batch.where(F.size("reject_reasons") == 0).withColumn("select_rank", F.lit(1))
    rt.tables.write(selected.select(*rt.tables.read("silver.selected").columns), "silver.selected", mode="append")
    # New prompts are all kept: the batch holds no duplicate of an earlier prompt.
    status = batch.select("source", "prompt_id").distinct().select(
        "source",
        "prompt_id",
        F.lit("kept").alias("dedup_status"),
        F.lit(None).cast("string").alias("duplicate_of"),
    )
    rt.tables.write(status, "silver.prompt_status", mode="append")
    rt.tables.drop_scratch(scratch)


def timed_mix(rt, figures: dict, label: str) -> None:
    started, cpu = time.perf_counter(), cpu_seconds()
    result = rt.run_stage("mix", mix)
    figures[f"{label}_mix_s"] = round(time.perf_counter() - started, 1)
    figures[f"{label}_mix_cpu_s"] = round(cpu_seconds() - cpu, 1)
    figures[f"{label}_details"] = {k: v for k, v in result.details.items() if k != "plan"}


def timed_diff(rt, figures: dict, label: str) -> None:
    started = time.perf_counter()
    diff = run_diff(rt)
    figures[f"{label}_diff_s"] = round(time.perf_counter() - started, 1)
    reasons: dict[str, int] = {}
    for (change, _, _, reason), n in diff.counts.items():
        reasons[f"{change}:{reason}"] = reasons.get(f"{change}:{reason}", 0) + n
    figures[f"{label}_diff"] = {"from": diff.from_version.mix_version, "to": diff.to_version.mix_version, **reasons}


def kept_share(rt, old: int, new: int) -> float:
    versions = {v.mix_version: v for v in mix_versions(rt)}
    a, b = version_rows(rt, versions[old]), version_rows(rt, versions[new])
    kept = a.join(b, ["candidate_id", "copy_index"]).count()
    return round(kept / versions[old].rows, 5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=["base", "grow", "scratch"], required=True)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--growth", type=float, default=0.10, help="new candidates, as a share of --candidates")
    # 80% (the default config's 800k of 1M) takes nearly every eligible row and runs strata short, so new
    # rows move quota between strata; 40% leaves every stratum a choice. Each total keeps its own figures.
    parser.add_argument("--total", type=int, default=None, help="mix total (default: 80%% of --candidates)")
    args = parser.parse_args()
    setup_logging()
    total = args.total or int(args.candidates * 0.8)
    work = WORK / NAME
    lake = work / "lake"
    if args.phase == "base":
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "conf.yaml"
    stable = args.phase != "scratch"
    conf.write_text(
        f"extends: {Path(__file__).resolve().parent.parent / 'conf' / 'base.yaml'}\n"
        f"storage: {{root: {lake}}}\n"
        # The cold-start set is not what this measures; its draw does not depend on mix.stable.
        f"mix: {{total: {total}, stable: {str(stable).lower()}}}\n"
        "cold_start: {size: 0}\n"
    )
    latest = RESULTS / f"{NAME}-latest.json"
    results: dict = json.loads(latest.read_text()) if latest.exists() else {}
    if args.phase == "base":
        results[f"mix_total_{total}"] = {}
    figures: dict = results.setdefault(f"mix_total_{total}", {})
    figures["candidates"] = args.candidates
    with open_runtime(str(conf)) as rt:
        if args.phase == "base":
            started = time.perf_counter()
            write_inputs(rt, args.candidates)
            figures["inputs_s"] = round(time.perf_counter() - started, 1)
            timed_mix(rt, figures, "v1")
        elif args.phase == "grow":
            new = int(args.candidates * args.growth)
            started = time.perf_counter()
            append_batch(rt, new)
            figures["new_candidates"] = new
            figures["append_s"] = round(time.perf_counter() - started, 1)
            timed_mix(rt, figures, "v2_stable")
            figures["v2_stable_kept_share_of_v1"] = kept_share(rt, 1, 2)
            timed_diff(rt, figures, "v1_v2")
        else:
            timed_mix(rt, figures, "v3_scratch")
            figures["v3_scratch_kept_share_of_v1"] = kept_share(rt, 1, 3)
            timed_diff(rt, figures, "v2_v3")
        figures["selected_rows"] = rt.tables.read("silver.selected").count()
    figures[f"{args.phase}_peak_rss_gb"] = round(peak_rss_gb(), 2)
    figures[f"{args.phase}_load_average"] = [round(x, 1) for x in os.getloadavg()]
    report(NAME, results)


if __name__ == "__main__":
    main()
