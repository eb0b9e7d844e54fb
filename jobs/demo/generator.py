"""``sftmix demo-data``: deterministic raw generation dumps with exact ground truth.

Writes, under ``<out>``, the five raw sources the ingest config expects
(grouped gzip JSONL, flat zstd JSONL, OpenAI batch file pairs, Parquet, and
``code_tests``: plain grouped JSONL whose prompts carry their tests for the
sandbox, expected outcomes in ``ground_truth/code_tests.parquet``), the
code sandbox's results (``judgments/code_sandbox``: the code candidates'
test counts live there, not in their records) and a judge model's scores of
the chat responses (``judgments/chat_judge``, an OpenAI-batch output) as
judgment files, a small math benchmark, and Parquet ground truth naming every injected defect,
duplicate, contamination and bad record, plus ``summary.json``. The same
seed gives byte-identical files (summary timings aside).

Throughput (single thread; CPU seconds of the process, so other jobs on the
machine do not count), measured 2026-11 on the 2-core dev machine with
6,000 prompts = 24.7k candidates + 1,000 chat rows = 189 MB of JSON:
  --no-compress             72 MB/s (83 MB/s in a quieter run: load 1.7 vs 14)
  default (gzip-1, zstd-3)  40 MB/s (44 MB/s quieter); gzip takes ~40% of it
~7.7 KB of JSON per candidate, so 3.2M candidates (~25 GB) take ~6 min
uncompressed, ~10 min compressed. Pools build once per process (~0.4 s).
Memory stays at a few MB whatever the size (no record is held after it is
written; tests/test_demo_data.py checks the tracemalloc peak).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .code_tests import prompts_for, write_code_tests
from .ground_truth import GroundTruth
from .prompts import benchmark_specs
from .sources import (
    RunContext,
    derive_rng,
    write_chat_parquet,
    write_code_flat,
    write_math_grouped,
    write_stem_logic_batch,
)

log = logging.getLogger(__name__)

SOURCES = ("math_grouped", "code_flat", "stem_logic_batch", "chat_parquet", "code_tests")
DOMAIN_SHARES = {"math": 0.60, "code": 0.30, "stem": 0.05}  # logic takes the rest (~5%)
BENCH_ROWS = 50


@dataclass(frozen=True)
class DemoParams:
    reasoning_prompts: int = 2000  # math/code/stem/logic prompts
    candidates_per_prompt: int = 4
    non_reasoning_records: int = 1000
    seed: int = 7
    shard_records: int = 5000  # records per output file (streaming, bounded memory)
    compress: bool = True  # False: plain .jsonl everywhere (for benchmarks)
    # A later batch of the same data set: prompt numbers start here (with another seed: new prompts).
    id_offset: int = 0


def domain_counts(params: DemoParams) -> dict[str, int]:
    counts = {d: round(params.reasoning_prompts * share) for d, share in DOMAIN_SHARES.items()}
    counts["logic"] = max(0, params.reasoning_prompts - sum(counts.values()))
    return counts


def _clear_previous(out_dir: Path) -> None:
    """Remove only what an earlier run wrote, so stale shards cannot mix with new ones."""
    for source in SOURCES:
        shutil.rmtree(out_dir / "raw" / source, ignore_errors=True)
    shutil.rmtree(out_dir / "judgments", ignore_errors=True)
    shutil.rmtree(out_dir / "ground_truth", ignore_errors=True)
    for path in (out_dir / "benchmarks" / "demo_bench.jsonl", out_dir / "summary.json"):
        path.unlink(missing_ok=True)


def _write_benchmark(out_dir: Path, bench: list[tuple[str, Any]]) -> None:
    path = out_dir / "benchmarks" / "demo_bench.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"id": bench_id, "question": spec.text, "answer": spec.answer.reference}
            for bench_id, spec in bench]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def generate_demo_data(out_dir: Path, params: DemoParams) -> dict[str, Any]:
    """Write the demo data set under ``out_dir`` and return the summary (also written as JSON)."""
    if params.shard_records < 1 or params.candidates_per_prompt < 1:
        raise ValueError("shard_records and candidates_per_prompt must be >= 1")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _clear_previous(out_dir)
    bench = benchmark_specs(derive_rng(params.seed, "benchmark").getrandbits(64), BENCH_ROWS)
    _write_benchmark(out_dir, bench)
    truth = GroundTruth(out_dir / "ground_truth")
    ctx = RunContext(out_dir, params.seed, params.candidates_per_prompt, params.shard_records,
                     params.compress, truth, bench, id_offset=params.id_offset)
    counts = domain_counts(params)
    sources: dict[str, dict[str, Any]] = {}
    steps = (
        ("math_grouped", lambda: write_math_grouped(ctx, counts["math"])),
        ("code_flat", lambda: write_code_flat(ctx, counts["code"])),
        ("stem_logic_batch", lambda: write_stem_logic_batch(ctx, counts["stem"], counts["logic"])),
        ("chat_parquet", lambda: write_chat_parquet(ctx, params.non_reasoning_records)),
        # Code prompts with their tests, for the sandbox: 1.2% on top of the reasoning prompts, at least 6.
        ("code_tests", lambda: write_code_tests(ctx, prompts_for(params.reasoning_prompts))),
    )
    for source, step in steps:
        step_started = time.perf_counter()
        sources[source] = step()
        log.info("demo-data %s: %d records, %d candidates, %.1f s", source, sources[source]["records"],
                 sources[source]["candidates"], time.perf_counter() - step_started)
    truth.close()
    summary = _summary(params, sources, truth, len(bench), time.perf_counter() - started)
    (out_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary


def _summary(params: DemoParams, sources: dict[str, dict[str, Any]], truth: GroundTruth, bench_rows: int,
             seconds: float) -> dict[str, Any]:
    raw = sum(s["bytes"] for s in sources.values())
    return {
        "seed": params.seed,
        "params": dataclasses.asdict(params),
        "sources": sources,
        "benchmark": {"file": "benchmarks/demo_bench.jsonl", "rows": bench_rows},
        "ground_truth": {"candidates": truth.candidates.rows, "prompts": truth.prompts.rows,
                         "bad_records": truth.bad.rows, "judgments": truth.judgments.rows},
        # Judgment files per judgment name: lines by quarantine error or by the status annotate gives them.
        "judgments": {name.removeprefix("judgment:"): dict(sorted(counts.items()))
                      for name, counts in sorted(truth.counts.items()) if name.startswith("judgment:")},
        "bytes_uncompressed": raw,
        "bytes_written": sum(s["bytes_on_disk"] for s in sources.values()),
        "seconds": round(seconds, 3),
        "mb_per_s": round(raw / seconds / 1e6, 1) if seconds > 0 else None,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DemoParams()
    parser.add_argument("--out", default="demo", help="output directory (default: demo)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--reasoning-prompts", type=int, default=defaults.reasoning_prompts,
                        help="math/code/stem/logic prompts (about 60/30/5/5%%)")
    parser.add_argument("--candidates-per-prompt", type=int, default=defaults.candidates_per_prompt)
    parser.add_argument("--non-reasoning", type=int, default=defaults.non_reasoning_records,
                        help="writing/factual/self-cognition/translation records")
    parser.add_argument("--shard-records", type=int, default=defaults.shard_records,
                        help="records per output file")
    parser.add_argument("--no-compress", action="store_true", help="plain .jsonl instead of .gz/.zst")
    parser.add_argument("--id-offset", type=int, default=defaults.id_offset,
                        help="first prompt number: a next week's batch, with another --seed, in another --out")


def run(args: argparse.Namespace) -> int:
    params = DemoParams(
        reasoning_prompts=args.reasoning_prompts,
        candidates_per_prompt=args.candidates_per_prompt,
        non_reasoning_records=args.non_reasoning,
        seed=args.seed,
        shard_records=args.shard_records,
        compress=not args.no_compress,
        id_offset=args.id_offset,
    )
    summary = generate_demo_data(Path(args.out), params)
    log.info("demo-data: %d candidates, %.1f MB in %.1f s (%.1f MB/s) -> %s",
             summary["ground_truth"]["candidates"], summary["bytes_uncompressed"] / 1e6,
             summary["seconds"], summary["mb_per_s"] or 0.0, args.out)
    return 0
