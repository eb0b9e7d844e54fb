"""Annotate throughput and quality on demo data, and the fastText floor.

    .venv/bin/python benchmarks/annotate.py --candidates 20000

Lands demo dumps in bronze (ingest), then times annotate's signals and
decisions (``annotate_candidates`` + ``decide_annotate``, written to a Delta
table; verification is another stage's cost) on the embedded engine, and the
floor: fastText ``predict`` alone over the same texts (each candidate's
completion and reasoning_content, one call per candidate) in one process.
Prints rows/s, MB/s of text, the floor, the per-core ratio (issue 3 target:
within 1.5x), and precision/recall per reason against the demo ground truth.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from deltalake import DeltaTable

from sftmix.jobs.demo.generator import DemoParams, generate_demo_data
from sftmix.jobs.ingest import ingest
from sftmix.jobs.runtime.context import open_runtime
from sftmix.transforms import language, process_pool
from sftmix.transforms.annotate import annotate_candidates, decide_annotate
from sftmix.transforms.raw_records import candidate_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, demo_config, peak_rss_gb, report  # noqa: E402

SCORED = (
    "mixed_language",
    "code_block",
    "long_paragraph",
    "repetition",
    "truncated",
    "malformed_think",
    "empty_answer",
)


def floor_seconds(texts: list[str]) -> tuple[float, float]:
    """fastText predict over every text, one process, one call per candidate: (wall, CPU) seconds."""
    model = language.load_model()
    lines = [" ".join(t.split()) for t in texts]  # the wrapper rejects "\n"; joining is not timed
    started, cpu = time.perf_counter(), time.process_time()
    for line in lines:
        language.identify(model, line)
    return time.perf_counter() - started, time.process_time() - cpu


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (the embedded engine runs here) and of the live UDF pool workers.

    CPU time, not wall time, is the fair per-core figure on a machine other jobs share.
    """
    engine = sum(os.times()[:2])
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pool in list(process_pool._pools.values()):
        for pid in list(getattr(pool, "_processes", {}) or {}):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return engine, total


def quality(lake: Path, demo: Path) -> dict[str, dict[str, float]]:
    table = DeltaTable(str(lake / "silver" / "annotate_bench")).to_pyarrow_table(
        columns=["candidate_id", "source", "prompt_id", "reject_reasons"]
    )
    rows = table.to_pylist()
    predicted = {r["candidate_id"]: set(r["reject_reasons"]) for r in rows}
    by_prompt = {(r["source"], r["prompt_id"]): r["candidate_id"] for r in rows}
    truth: dict[str, set[str]] = {}
    for record in pq.read_table(demo / "ground_truth" / "candidates.parquet").to_pylist():
        key = candidate_id(record["source"], record["prompt_id"], str(record["sample_index"]))
        key = key if key in predicted else by_prompt.get((record["source"], record["prompt_id"]), key)
        if key in predicted:
            truth[key] = set(record["defects"])
    figures = {}
    for reason in SCORED:
        tp = sum(1 for k, t in truth.items() if reason in t and reason in predicted[k])
        fp = sum(1 for k, t in truth.items() if reason not in t and reason in predicted[k])
        fn = sum(1 for k, t in truth.items() if reason in t and reason not in predicted[k])
        figures[reason] = {
            "precision": round(tp / max(1, tp + fp), 4),
            "recall": round(tp / max(1, tp + fn), 4),
            "positives": tp + fn,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="reuse demo data and bronze from an earlier run")
    args = parser.parse_args()

    demo = WORK / f"annotate-demo-{args.candidates}"
    lake = WORK / "annotate-lake"
    fresh = not (args.keep and demo.exists() and (lake / "bronze" / "generations").exists())
    if fresh:
        shutil.rmtree(demo, ignore_errors=True)
        shutil.rmtree(lake, ignore_errors=True)
        params = DemoParams(
            reasoning_prompts=args.candidates * 4 // 25,
            candidates_per_prompt=5,
            non_reasoning_records=args.candidates // 5,
            compress=False,
        )
        generate_demo_data(demo, params)
    conf = demo_config(demo, lake)
    raw = yaml.safe_load(conf.read_text())
    for source in raw["sources"]:
        source["max_bad_fraction"] = 0.5  # small runs plant the same few bad records as big ones
    conf.write_text(yaml.safe_dump(raw))

    figures: dict = {"candidates_requested": args.candidates}
    with open_runtime(str(conf)) as rt:
        if fresh:
            ingest(rt)
        bronze = rt.tables.read("bronze.generations")
        params = rt.config.annotate
        texts_table = DeltaTable(str(lake / "bronze" / "generations")).to_pyarrow_table(
            columns=["completion", "reasoning_content"]
        )
        texts = [
            (c or "") + "\n" + (r or "")
            for c, r in zip(
                texts_table.column("completion").to_pylist(),
                texts_table.column("reasoning_content").to_pylist(),
                strict=True,
            )
        ]
        text_mb = sum(len(t.encode()) for t in texts) / 1e6
        rows = len(texts)
        cores = max(1, process_pool.pool_size())
        # warm the pool and the model: a stage runs long enough that start-up does not count
        rt.spark.createDataFrame(bronze.limit(50).collect(), bronze.schema).transform(
            annotate_candidates, params
        ).count()
        started, cpu = time.perf_counter(), cpu_seconds()
        decided = bronze.transform(annotate_candidates, params).transform(decide_annotate, params)
        rt.tables.write(decided, "silver.annotate_bench")
        annotate_s, after = time.perf_counter() - started, cpu_seconds()
        engine_cpu, pool_cpu = after[0] - cpu[0], after[1] - cpu[1]
        annotate_cpu = engine_cpu + pool_cpu
        floor_s, floor_cpu = floor_seconds(texts)
    figures.update(
        {
            "rows": rows,
            "text_mb": round(text_mb, 1),
            "annotate_seconds": round(annotate_s, 2),
            "annotate_rows_per_s": round(rows / annotate_s, 1),
            "annotate_mb_per_s": round(text_mb / annotate_s, 2),
            "pool_workers": cores,
            "annotate_cpu_seconds": round(annotate_cpu, 2),
            "engine_cpu_seconds": round(engine_cpu, 2),  # Delta read/write, Arrow, the split, pickling
            "pool_cpu_seconds": round(pool_cpu, 2),  # the signals themselves
            "pool_ratio_to_floor": round(pool_cpu / floor_cpu, 2),
            "floor_seconds_one_process": round(floor_s, 2),
            "floor_cpu_seconds": round(floor_cpu, 2),
            "floor_rows_per_s": round(rows / floor_s, 1),
            "floor_mb_per_s": round(text_mb / floor_s, 2),
            # per core: CPU seconds annotate spent (engine + pool) against the one-process floor's CPU seconds
            "per_core_ratio_to_floor": round(annotate_cpu / floor_cpu, 2),
            "wall_ratio_to_floor_x_cores": round(annotate_s * cores / floor_s, 2),
            "peak_rss_gb": round(peak_rss_gb(), 2),
            "quality": quality(lake, demo),
        }
    )
    report("annotate", figures)


if __name__ == "__main__":
    main()
