"""Ingest throughput: demo dumps (plain JSONL + Parquet) -> bronze tables on the embedded engine.

    .venv/bin/python benchmarks/ingest.py --candidates 200000

Prints rows/s, MB/s of raw input, peak RSS, and two floors measured on the same
files in one process: parsing alone (orjson over every line) and the time the
engine takes to write the staged rows (Delta write alone). Target (issue 2):
at least 50 MB/s of raw JSONL on this 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path

import orjson

from sftmix.jobs.demo.generator import DemoParams, generate_demo_data
from sftmix.jobs.ingest import ingest
from sftmix.jobs.runtime.context import open_runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, demo_config, peak_rss_gb, raw_bytes, report  # noqa: E402


def parse_floor(raw: Path) -> float:
    """Seconds to read and orjson-parse every JSONL line in one process (no engine)."""
    started = time.perf_counter()
    for path in raw.rglob("*.jsonl"):
        with open(path, "rb", buffering=1 << 20) as stream:
            for line in stream:
                with contextlib.suppress(orjson.JSONDecodeError):
                    orjson.loads(line)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--keep", action="store_true", help="reuse demo data from an earlier run")
    args = parser.parse_args()

    demo = WORK / f"ingest-demo-{args.candidates}"
    lake = WORK / f"ingest-lake-{args.engine}"
    if not (args.keep and demo.exists()):
        shutil.rmtree(demo, ignore_errors=True)
        params = DemoParams(
            reasoning_prompts=args.candidates // 5, candidates_per_prompt=4,
            non_reasoning_records=args.candidates // 5, compress=False,
        )
        generate_demo_data(demo, params)
    shutil.rmtree(lake, ignore_errors=True)
    conf = demo_config(demo, lake, args.engine)
    total_bytes = raw_bytes(demo / "raw")
    jsonl_bytes = sum(p.stat().st_size for p in (demo / "raw").rglob("*.jsonl"))

    with open_runtime(str(conf)) as rt:
        started = time.perf_counter()
        result = ingest(rt)
        seconds = time.perf_counter() - started
        write_started = time.perf_counter()
        rt.tables.write(rt.tables.read("bronze.generations"), "bronze.write_floor")
        write_seconds = time.perf_counter() - write_started
    floor = parse_floor(demo / "raw")
    figures = {
        "engine": args.engine,
        "candidates": result.rows_out,
        "records": result.rows_in,
        "raw_mb": round(total_bytes / 1e6, 1),
        "jsonl_mb": round(jsonl_bytes / 1e6, 1),
        "ingest_s": round(seconds, 2),
        "rows_per_s": round(result.rows_out / seconds),
        "mb_per_s": round(total_bytes / 1e6 / seconds, 1),
        "floor_parse_only_s": round(floor, 2),
        "floor_parse_mb_per_s": round(jsonl_bytes / 1e6 / floor, 1),
        "floor_delta_write_s": round(write_seconds, 2),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }
    report(f"ingest-{args.engine}", figures)


if __name__ == "__main__":
    main()
