"""Sandboxed code verification: start overhead, candidates/s and tests/s on HumanEval and MBPP.

    .venv/bin/python benchmarks/code_verify.py [--pool 2] [--limit N]

Measures
- the sandbox start overhead: median wall of `python3 -I -S -c pass` inside a fresh bwrap minus
  the same command run directly (and an empty `/bin/true` sandbox for reference);
- HumanEval's 164 and MBPP's 974 canonical solutions, then mechanically broken versions of
  them (tests/code_realdata.py), through `verify_programs` on the UDF process pool:
  candidates/s, tests/s, statuses, and every canonical solution that does not pass, with why.
Needs /work/shared (the real data) and bwrap.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sftmix.transforms import process_pool
from sftmix.transforms.code_verify import CodeVerifyParams, verify_programs
from sftmix.transforms.sandbox import SANDBOX_PYTHON, SandboxLimits, require_sandbox, run_in_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import report  # noqa: E402

from tests.code_realdata import humaneval_items, humaneval_rows, mbpp_items, mbpp_rows  # noqa: E402


def median_wall(run: object, times: int) -> float:
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def start_overhead(times: int = 30) -> dict[str, float]:
    limits = SandboxLimits()
    bare = median_wall(lambda: subprocess.run([SANDBOX_PYTHON, "-I", "-S", "-c", "pass"], check=True), times)
    boxed = median_wall(lambda: run_in_sandbox([SANDBOX_PYTHON, "-I", "-S", "-c", "pass"], limits=limits), times)
    empty = median_wall(lambda: run_in_sandbox(["/bin/true"], limits=limits), times)
    return {
        "python_direct_ms": round(bare * 1000, 1),
        "python_in_sandbox_ms": round(boxed * 1000, 1),
        "sandbox_start_overhead_ms": round((boxed - bare) * 1000, 1),
        "empty_sandbox_ms": round(empty * 1000, 1),
    }


def measure(name: str, items: list[tuple[str, str]], params: CodeVerifyParams) -> dict[str, object]:
    started = time.perf_counter()
    outcomes = verify_programs(items, params)
    seconds = time.perf_counter() - started
    statuses = Counter(o.status for o in outcomes if o is not None)
    tests = sum(o.tests_total for o in outcomes if o is not None)
    figures: dict[str, object] = {
        "candidates": len(items),
        "tests": tests,
        "seconds": round(seconds, 2),
        "candidates_per_s": round(len(items) / seconds, 1),
        "tests_per_s": round(tests / seconds, 1),
        "statuses": dict(sorted(statuses.items())),
    }
    if name.endswith("canonical"):
        figures["not_passing"] = [
            {"row": i, "status": o.status, "passed": f"{o.tests_passed}/{o.tests_total}", "failure": o.failure}
            for i, o in enumerate(outcomes)
            if o is not None and o.status != "pass"
        ]
    else:
        figures["still_passing"] = [i for i, o in enumerate(outcomes) if o is not None and o.status == "pass"]
    print(f"{name}: {figures['candidates_per_s']} candidates/s, {figures['tests_per_s']} tests/s, {statuses}",
          file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=2, help="UDF pool workers (the machine's cores)")
    parser.add_argument("--limit", type=int, default=0, help="first N rows of each set (0: all)")
    args = parser.parse_args()
    require_sandbox()
    figures: dict[str, object] = {"pool_workers": args.pool, "start": start_overhead()}
    process_pool.configure(args.pool)
    humaneval, mbpp = humaneval_rows(), mbpp_rows()
    if args.limit:
        humaneval, mbpp = humaneval[: args.limit], mbpp[: args.limit]
    raw, fenced = CodeVerifyParams(program_source="raw"), CodeVerifyParams()
    try:
        figures["humaneval_canonical"] = measure("humaneval_canonical", humaneval_items(humaneval), raw)
        figures["humaneval_broken"] = measure(
            "humaneval_broken", humaneval_items(humaneval, broken_versions=True), raw
        )
        figures["mbpp_canonical"] = measure("mbpp_canonical", mbpp_items(mbpp), fenced)
        figures["mbpp_broken"] = measure("mbpp_broken", mbpp_items(mbpp, broken_versions=True), fenced)
    finally:
        process_pool.shutdown()
    load = Path("/proc/loadavg").read_text().split()[:3]
    figures["load_average_after"] = [float(x) for x in load]
    report("code_verify", figures)


if __name__ == "__main__":
    main()
