"""Benchmark of ``sftmix whatif`` on a full-scale ``silver.candidates`` (default 3.2M rows).

The full-scale run annotates ~2.6M reasoning and ~250k non-reasoning candidates;
3.2M rounds that up. whatif reads only the signal and decision columns, so the
table is built from a real ``silver.candidates`` (the demo pipeline's, 8,872
rows under ``lake/`` after ``make run``) replicated in the engine with new
``candidate_id`` / ``prompt_id`` values: every signal column, ``signal_spans``,
``reject_reasons`` and ``spans`` keep the real distribution. The text columns
(prompt, reasoning, answer) are cut to 64 characters: whatif never reads them
(``decision_columns()`` has no text column), so their size only changes the
Parquet files' text pages, which column pruning skips.

Then the CLI runs end to end in a fresh process, engine start included, as a
user would type it:

    sftmix whatif annotate.long_paragraph.max_chars=1500 annotate.language.mixed_share=0.1

and, for the split, ``run_whatif`` is timed in the warm benchmark process too.

    .venv/bin/python benchmarks/whatif.py --rows 3200000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from pyspark.sql import DataFrame, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from benchmarks.common import REPO, WORK, peak_rss_gb, raw_bytes, report  # noqa: E402
from sftmix.jobs.runtime.context import open_runtime, setup_logging  # noqa: E402
from sftmix.jobs.whatif import run_whatif  # noqa: E402
from sftmix.transforms.annotate import decision_columns  # noqa: E402

CHANGES = ["annotate.long_paragraph.max_chars=1500", "annotate.language.mixed_share=0.1"]
TEXT_COLUMNS = ("prompt", "reasoning", "answer")
SHORT_TEXT = 64


def bench_config(lake: Path) -> Path:
    """conf/local.yaml (its mix quotas give whatif's quota column) pointed at the benchmark lake."""
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    local["extends"] = str(REPO / "conf" / "base.yaml")
    local["storage"] = {"root": str(lake)}
    path = lake.parent / "bench-whatif.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(local))
    return path


def replicate(seed_rows: DataFrame, rows: int) -> DataFrame:
    """``rows`` rows: copy k of seed row i is global row k * n + i; ids get the copy number."""
    spark = seed_rows.sparkSession
    columns = [c for c in decision_columns() if c in seed_rows.columns]
    texts = [F.substring(F.col(c), 1, SHORT_TEXT).alias(c) for c in TEXT_COLUMNS if c in seed_rows.columns]
    # 8,872 rows: a window without partitions is cheap here and numbers them deterministically.
    seeds = seed_rows.select(*columns, *texts).withColumn(
        "_i", F.row_number().over(Window.orderBy("candidate_id")) - 1
    )
    n = seeds.count()
    copies = -(-rows // n)
    replicated = spark.range(copies).withColumnRenamed("id", "_copy").crossJoin(seeds)
    suffix = F.concat(F.lit("~"), F.col("_copy").cast("string"))
    return (
        replicated.where(F.col("_copy") * n + F.col("_i") < rows)
        .withColumn("candidate_id", F.concat(F.col("candidate_id"), suffix))
        .withColumn("prompt_id", F.concat(F.col("prompt_id"), suffix))
        .drop("_copy", "_i")
    )


def time_cli(conf: Path) -> float:
    sftmix = Path(sys.executable).with_name("sftmix")
    started = time.perf_counter()
    done = subprocess.run([str(sftmix), "whatif", "--conf", str(conf), *CHANGES], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sftmix whatif failed:\n{done.stderr[-3000:]}")
    print(done.stdout)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3_200_000)
    parser.add_argument("--from-lake", default=str(REPO / "lake"), help="lake holding the seed silver.candidates")
    parser.add_argument("--keep", action="store_true", help="reuse the table of an earlier run")
    parser.add_argument("--cli-runs", type=int, default=2, help="times to run the CLI (fresh process each)")
    args = parser.parse_args()
    setup_logging()

    lake = WORK / f"whatif-lake-{args.rows}"
    conf = bench_config(lake)
    figures: dict = {"rows": args.rows, "changes": CHANGES, "text_columns_cut_to_chars": SHORT_TEXT}
    with open_runtime(str(conf)) as rt:
        table = rt.tables.location("silver.candidates")
        if not (args.keep and rt.tables.exists("silver.candidates")):
            shutil.rmtree(lake, ignore_errors=True)
            seed_rows = rt.spark.read.format("delta").load(f"{args.from_lake}/silver/candidates")
            started = time.perf_counter()
            rt.tables.write(replicate(seed_rows, args.rows), "silver.candidates")
            figures["build_seconds"] = round(time.perf_counter() - started, 1)
        candidates = rt.tables.read("silver.candidates")
        figures["rows"] = candidates.count()
        figures["seed_rows"] = rt.spark.read.format("delta").load(f"{args.from_lake}/silver/candidates").count()
        figures["table_mb"] = round(raw_bytes(Path(table)) / 1e6, 1)
        figures["table_files"] = sum(1 for p in Path(table).glob("*.parquet"))
        warm = []
        for _ in range(2):
            started = time.perf_counter()
            rows = run_whatif(rt, {k: yaml.safe_load(v) for k, v in (c.split("=", 1) for c in CHANGES)})
            warm.append(round(time.perf_counter() - started, 2))
        figures["in_process_seconds"] = warm
        figures["strata"] = len(rows)
        figures["newly_dropped"] = sum(r["newly_dropped"] for r in rows)
        figures["restored"] = sum(r["restored"] for r in rows)
    figures["peak_rss_gb_build"] = round(peak_rss_gb(), 2)
    cli = [round(time_cli(conf), 2) for _ in range(args.cli_runs)]
    figures["cli_wall_seconds"] = cli
    figures["cli_wall_seconds_best"] = min(cli)
    figures["under_a_minute"] = max(cli) < 60
    figures["load_average_1m"] = round(os.getloadavg()[0], 1)
    figures["cores"] = os.cpu_count()
    report("whatif", figures)


if __name__ == "__main__":
    main()
