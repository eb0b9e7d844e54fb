"""Verification throughput: bronze.generations -> verdicts, on demo data, plus real generations.

    .venv/bin/python benchmarks/verify.py --prompts 2000 --samples 8

Prints verify rows/s (all candidates, and those compared with a reference),
the share of compared rows each path settled (cheap / cache / math_verify),
the cache hit rate (cache / (cache + math_verify)), and the floor it is
measured against: Math-Verify alone (parse + verify of every compared pair,
one process, no cheap path, no cache). With /work/shared present it also
judges NeMo-Skills' 150 real MATH generations and reports the agreement with
their own `symbolic_correct` label.

    .venv/bin/python benchmarks/verify.py --realdata

runs the graded sources of conf/realdata.yaml (Sky-T1, Qwen2.5-Math, NeMo-Skills
generations with each data set's own grader verdict), verifies them with that
verdict hidden, and reports the agreement per source.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml
from pyspark.sql import functions as F

from sftmix.jobs.demo.generator import DemoParams, generate_demo_data
from sftmix.jobs.ingest import ingest
from sftmix.jobs.runtime.context import open_runtime
from sftmix.transforms.annotate import annotate_candidates
from sftmix.transforms.answer_extraction import final_segment
from sftmix.transforms.math_equivalence import MathSettings, judge_answers, verdict_cache
from sftmix.transforms.verify import verify_candidates

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, WORK, demo_config, peak_rss_gb, report  # noqa: E402

NEMO = REPO.parent / "shared" / "realdata" / "nvidia_nemo-skills"


def math_verify_floor(pairs: list[tuple[str, str]]) -> float:
    """Seconds for Math-Verify alone on (answer text, reference) pairs: parse both, verify, one process."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    parse("$1$", extraction_config=config)  # first use compiles the grammars: not part of the floor
    started = time.perf_counter()
    for answer, reference in pairs:
        verify(parse(f"${reference}$", extraction_config=config), parse(answer, extraction_config=config))
    return time.perf_counter() - started


def real_generations() -> dict[str, object]:
    rows = [
        json.loads(line) for i in range(3) for line in (NEMO / f"output-rs{i}.jsonl").read_text().splitlines()
    ]
    verdict_cache().clear()
    started = time.perf_counter()
    outcomes = judge_answers(
        [r["generation"] for r in rows], [r["expected_answer"] for r in rows], MathSettings()
    )
    seconds = time.perf_counter() - started
    agree = sum(
        (o.verdict == "correct") == r["symbolic_correct"] for r, o in zip(rows, outcomes, strict=True)
    )
    paths = {p: sum(o.path == p for o in outcomes) for p in ("cheap", "cache", "math_verify")}
    return {
        "rows": len(rows),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(rows) / seconds, 1),
        "agreement_with_nemo_skills": round(agree / len(rows), 3),
        "paths": paths,
    }


def realdata(args: argparse.Namespace) -> None:
    """conf/realdata.yaml's graded sources (Sky-T1, Qwen2.5-Math, NeMo-Skills): verify with each source's own
    grader verdict hidden, then compare with it."""
    lake = WORK / f"verify-realdata-lake-{args.engine}"
    if not args.keep:
        shutil.rmtree(lake, ignore_errors=True)
    overrides = {"storage.root": str(lake)}
    if args.engine == "spark":
        overrides.update({"engine.kind": "spark", "engine.master": "local[2]", "engine.udf_pool_size": 0})
    with open_runtime(str(REPO / "conf" / "realdata.yaml"), overrides) as rt:
        if not rt.tables.exists("bronze.generations"):
            ingest(rt)
        annotated = str(lake / "_annotated")
        if not (args.keep and Path(annotated).exists()):
            # The answer as the pipeline sees it: annotate's think split (Sky-T1's solution wrappers too).
            rt.tables.read("bronze.generations").where(
                F.col("external_verdict").isNotNull() & F.col("reference_answer").isNotNull()
            ).transform(annotate_candidates, rt.config.annotate).write.mode("overwrite").parquet(annotated)
        graded = rt.spark.read.parquet(annotated).withColumnRenamed("external_verdict", "grader_verdict")
        rows = graded.count()
        verdict_cache().clear()
        out = str(lake / "_verify_bench")
        started = time.perf_counter()
        graded.transform(verify_candidates, rt.config.verify).select(
            "source", "grader_verdict", "verdict", "verify_path", "extraction_method"
        ).write.mode("overwrite").parquet(out)
        seconds = time.perf_counter() - started
        result = rt.spark.read.parquet(out)
        grader_correct = F.col("grader_verdict").isin("correct", "true", "1")
        per_source = result.groupBy("source").agg(
            F.count(F.lit(1)).alias("rows"),
            F.avg(((F.col("verdict") == "correct") == grader_correct).cast("double")).alias("agreement"),
            F.sum(((F.col("verdict") == "correct") & ~grader_correct).cast("long")).alias(
                "we_correct_grader_not"
            ),
            F.sum(((F.col("verdict") != "correct") & grader_correct).cast("long")).alias(
                "grader_correct_we_not"
            ),
        )
        sources = {r["source"]: {k: r[k] for k in r.asDict() if k != "source"} for r in per_source.collect()}
        per_method = {
            str(r["extraction_method"]): {"rows": r["rows"], "agreement": round(r["agreement"], 4)}
            for r in result.groupBy("extraction_method")
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.avg(((F.col("verdict") == "correct") == grader_correct).cast("double")).alias("agreement"),
            )
            .collect()
        }
        paths = {
            r["verify_path"]: r["n"]
            for r in result.groupBy("verify_path").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        agree = result.agg(
            F.avg(((F.col("verdict") == "correct") == grader_correct).cast("double"))
        ).collect()[0][0]
    sent = paths.get("cache", 0) + paths.get("math_verify", 0)
    report(
        f"verify-realdata-{args.engine}",
        {
            "engine": args.engine,
            "graded_candidates": rows,
            "verify_s": round(seconds, 2),
            "rows_per_s": round(rows / seconds, 1),
            "path_shares": {
                p: round(n / rows, 3) for p, n in sorted(paths.items(), key=lambda kv: str(kv[0]))
            },
            "cache_hit_rate": round(paths.get("cache", 0) / sent, 3) if sent else None,
            "agreement_with_source_graders": round(agree, 4),
            "per_extraction_method": per_method,
            "per_source": {
                k: {**v, "agreement": round(v["agreement"], 4)} for k, v in sorted(sources.items())
            },
            "peak_rss_gb": round(peak_rss_gb(), 2),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--realdata", action="store_true", help="graded real generations (conf/realdata.yaml)"
    )
    parser.add_argument("--prompts", type=int, default=2000, help="reasoning prompts in the demo data")
    parser.add_argument("--samples", type=int, default=8, help="candidates per prompt")
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--floor-pairs", type=int, default=1000, help="pairs timed for the Math-Verify floor")
    parser.add_argument("--keep", action="store_true", help="reuse demo data and bronze from an earlier run")
    args = parser.parse_args()
    if args.realdata:
        realdata(args)
        return

    demo = WORK / f"verify-demo-{args.prompts}x{args.samples}"
    lake = WORK / f"verify-lake-{args.engine}-{args.prompts}x{args.samples}"
    fresh = not (args.keep and demo.exists() and lake.exists())
    if fresh:
        shutil.rmtree(demo, ignore_errors=True)
        shutil.rmtree(lake, ignore_errors=True)
        generate_demo_data(
            demo,
            DemoParams(
                reasoning_prompts=args.prompts,
                candidates_per_prompt=args.samples,
                non_reasoning_records=args.prompts // 10,
                compress=False,
            ),
        )
    conf = demo_config(demo, lake, args.engine)
    settings = yaml.safe_load(conf.read_text())
    for source in settings["sources"]:
        source["max_bad_fraction"] = 1.0  # the demo plants bad records; verification is what is timed here
    conf.write_text(yaml.safe_dump(settings))

    with open_runtime(str(conf)) as rt:
        if fresh:
            ingest(rt)
        generations = rt.tables.read("bronze.generations")
        rows = generations.count()
        verdict_cache().clear()  # on Sail the UDF runs in this process: start cold
        out = str(lake / "_verify_bench")
        started = time.perf_counter()
        verified = generations.transform(verify_candidates, rt.config.verify)
        verified.select("candidate_id", "extracted_answer", "verdict", "verifier", "verify_path").write.mode(
            "overwrite"
        ).parquet(out)
        seconds = time.perf_counter() - started
        written = rt.spark.read.parquet(out)
        paths = {
            r["verify_path"]: r["n"]
            for r in written.groupBy("verify_path").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        verdicts = {
            r["verdict"]: r["n"]
            for r in written.groupBy("verdict").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        compared_pairs = [
            (final_segment(r["completion"]), r["reference_answer"])
            for r in rt.spark.read.parquet(out)
            .where(F.col("verify_path").isin("cheap", "cache", "math_verify"))
            .join(generations, "candidate_id")
            .orderBy(F.xxhash64(F.col("candidate_id")))
            .select("completion", "reference_answer")
            .limit(args.floor_pairs)
            .collect()
        ]
        engine = rt.engine.name
        pool = rt.engine.udf_pool_size

    compared = sum(paths.get(p, 0) for p in ("cheap", "cache", "math_verify"))
    sent = paths.get("cache", 0) + paths.get("math_verify", 0)
    floor_seconds = math_verify_floor(compared_pairs) if compared_pairs else 0.0
    floor_rate = len(compared_pairs) / floor_seconds if floor_seconds else None
    figures = {
        "engine": engine,
        "udf_pool_size": pool,
        "candidates": rows,
        "compared_with_reference": compared,
        "verify_s": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1),
        "compared_rows_per_s": round(compared / seconds, 1),
        "path_shares": {p: round(paths.get(p, 0) / compared, 3) for p in ("cheap", "cache", "math_verify")}
        if compared
        else {},
        "cache_hit_rate": round(paths.get("cache", 0) / sent, 3) if sent else None,
        "verdicts": verdicts,
        "other_paths": {str(k): v for k, v in paths.items() if k not in ("cheap", "cache", "math_verify")},
        "floor_math_verify_only_pairs_per_s": round(floor_rate, 1) if floor_rate else None,
        "floor_would_take_s": round(compared / floor_rate, 1) if floor_rate else None,
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }
    if NEMO.is_dir():
        figures["nemo_skills_real_generations"] = real_generations()
    report(f"verify-{args.engine}", figures)


if __name__ == "__main__":
    main()
