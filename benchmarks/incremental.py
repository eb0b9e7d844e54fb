"""A new batch of 10% more candidates: incremental run vs full rebuild, and the share of the mix kept.

    .venv/bin/python benchmarks/incremental.py --scale 0.02                 # embedded Sail, Delta
    .venv/bin/python benchmarks/incremental.py --scale 0.02 --engine spark  # classic Spark, Parquet
    .venv/bin/python benchmarks/incremental.py --onto-run 1                 # a batch onto run.py's lake

Demo data at a scale (``benchmarks/run.py``'s sizes) is cut into about ten
shards per source; the last shard of each source (about 10% of the
candidates, all of them new prompts or new candidates) is held back. Then:

1. ``first``: the whole pipeline over the other 90% (a lake from nothing);
2. ``incremental``: the held files arrive; ``sftmix run`` with ``mix.stable``
   ingests only them, annotates only their candidates, ranks only the prompts
   they touch, and draws the mix keeping the previous version's rows;
3. ``full``: a fresh lake built from all files at once with ``--full``.

Prints per stage seconds of each run, the incremental/full ratio (issue 12's
target: under a quarter), rows annotated vs reused, and the share of the
first mix kept by the stable draw (target: at least 99% when the new batch
duplicates no earlier prompt). Results: ``benchmarks/results/incremental-<engine>-<scale>.json``.

``--onto-run S`` measures the same on the lake ``benchmarks/run.py --scale S``
left (at scale 1 the full-size lake, which takes hours to build): a second
week's batch of 10% more candidates is generated apart (another seed, prompt
numbers from 5,000,000: new prompts and files), the sources' and judgments'
paths gain its directory, and ``sftmix run`` with ``mix.stable`` takes it in.
The full rebuild is not run again: its stand-in is run.py's pipeline time over
the first batch alone, a lower bound of a rebuild over both (more input), so
the ratio printed is an upper bound. Results: ``incremental-onto-<engine>-<scale>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, raw_bytes  # noqa: E402
from run import bench_config, demo_params, ensure_demo  # noqa: E402

from sftmix.jobs.pipeline import run_pipeline  # noqa: E402
from sftmix.jobs.runtime.context import open_runtime, setup_logging  # noqa: E402

SHARDS = 10
BATCH_SHARE = 0.1
BATCH_ID_OFFSET = 5_000_000


def held_files(raw: Path) -> list[Path]:
    """The last data shard of each source with at least five (bad-record and empty files stay)."""
    held = []
    for source in sorted(p for p in raw.iterdir() if p.is_dir()):
        shards = sorted(p for p in source.iterdir() if p.is_file() and "99999" not in p.name and "empty" not in p.name)
        if len({p.name.split(".")[0] for p in shards}) < 5:
            continue
        last = shards[-1].name.split(".")[0]
        held += [p for p in shards if p.name.split(".")[0] == last]  # a batch's .input and .output go together
    return held


def timed_run(conf: Path, full: bool, overrides: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    with open_runtime(str(conf), overrides) as rt:
        rt.full_rebuild = full
        stages: dict[str, Any] = {}
        for name, result in run_pipeline(rt).items():
            stages[name] = {"rows_in": result.rows_in, "rows_out": result.rows_out}
            for key in ("incremental", "phases", "mix_version", "kept_rows", "previous_version", "plan"):
                if key in result.details:
                    stages[name][key] = result.details[key]
        seconds = rt.tables.read("ops.stage_metrics").where(f"run_id = '{rt.run_id}'").collect()
        for row in seconds:
            stages[row["stage"]]["seconds"] = round(row["seconds"], 1)
    return {"wall_s": round(time.perf_counter() - started, 1), "stages": stages}


def new_share(annotate: dict[str, Any]) -> float:
    """Share of the candidates the incremental annotate had to annotate (the rest it reused)."""
    return round(annotate["annotated"] / (annotate["annotated"] + annotate["reused"]), 3)


def save(name: str, figures: dict[str, Any]) -> None:
    """Print the figures and write them under results/ with the time they were written."""
    figures["written_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def kept_shares(first_mix: dict[str, Any], mix: dict[str, Any]) -> dict[str, Any]:
    """Share of the previous mix the stable draw kept, of all its rows and of those the new quotas allow."""
    first_rows = first_mix["rows_out"]
    # The stable draw keeps a previous row unless it is rejected now or its stratum's quota shrank:
    # the rows it could keep are, per stratum, the smaller of the two versions' quotas.
    before = {(p["kind"], p["domain"]): p["taken"] for p in first_mix["plan"]}
    after = {(p["kind"], p["domain"]): p["taken"] for p in mix["plan"]}
    keepable = sum(min(n, after.get(stratum, 0)) for stratum, n in before.items())
    kept = mix.get("kept_rows") or 0
    return {
        "mix_kept_share": round(kept / first_rows, 4) if first_rows else None,
        "mix_keepable_rows": keepable,
        "mix_kept_share_of_keepable": round(kept / keepable, 4) if keepable else None,
    }


def onto_run(scale: float, engine: str) -> None:
    """A 10% batch onto the lake ``benchmarks/run.py --scale`` built; see the module docstring."""
    tag = f"{scale:g}"
    demo, lake = WORK / f"run-demo-{tag}", WORK / f"run-lake-{engine}-{tag}"
    first_figures = json.loads((RESULTS / f"run-{engine}-{tag}.json").read_text())
    if not lake.exists():
        raise SystemExit(f"no lake at {lake}: run benchmarks/run.py --scale {tag} --engine {engine} first")
    batch = WORK / f"run-batch-{tag}"
    base = demo_params(scale)
    params = dataclasses.replace(demo_params(scale * BATCH_SHARE), seed=base.seed + 1,
                                 id_offset=BATCH_ID_OFFSET, shard_records=base.shard_records)
    generated = ensure_demo(batch, params, keep=True)
    conf = bench_config(demo, lake, engine, scale)
    raw = yaml.safe_load(conf.read_text())
    for entry in raw["sources"] + raw.get("judgments", []):
        entry["paths"] = [*entry["paths"], *(p.replace(str(demo), str(batch), 1) for p in entry["paths"])]
    conf.write_text(yaml.safe_dump(raw))

    with open_runtime(str(conf)) as rt:
        metrics = rt.tables.read("ops.stage_metrics").where("stage = 'mix'").orderBy("finished_at").collect()
    first_mix = {"rows_out": metrics[-1]["rows_out"], "plan": json.loads(metrics[-1]["details"])["plan"]}
    incremental = timed_run(conf, False, {"mix.stable": True})
    figures = {
        "engine": engine,
        "scale": scale,
        "batch_params": params.__dict__,
        "batch_generate_s": round(generated, 1) if generated is not None else None,
        "batch_mb": round(raw_bytes(batch / "raw") / 1e6, 1),
        "first_mb": first_figures["input_mb"],
        "new_share_of_candidates": new_share(incremental["stages"]["annotate"]["incremental"]),
        "first_wall_s": first_figures["wall_s"],
        "incremental": incremental,
        "incremental_over_first_run": round(incremental["wall_s"] / first_figures["wall_s"], 3),
        **kept_shares(first_mix, incremental["stages"]["mix"]),
    }
    save(f"incremental-onto-{engine}-{tag}", figures)
    print(f"\nincremental {incremental['wall_s']} s vs the first run {first_figures['wall_s']} s (a full rebuild "
          f"takes longer): {figures['incremental_over_first_run']:.2f}x; {figures['new_share_of_candidates']:.1%} new "
          f"candidates; stable mix kept {figures['mix_kept_share']:.2%} of {first_mix['rows_out']} rows "
          f"({figures['mix_kept_share_of_keepable']:.2%} of the {figures['mix_keepable_rows']} the new quotas allow)")
    for stage, values in incremental["stages"].items():
        print(f"  {stage:<9} first {next(s['seconds'] for s in first_figures['stages'] if s['stage'] == stage):>7}"
              f"  incremental {values.get('seconds', '-'):>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--keep", action="store_true", help="reuse demo data an earlier run generated")
    parser.add_argument("--onto-run", type=float, metavar="SCALE", help="add a 10%% batch to run.py's lake")
    args = parser.parse_args()
    setup_logging()
    if args.onto_run is not None:
        onto_run(args.onto_run, args.engine)
        return

    work = WORK / f"incremental-{args.engine}-{args.scale:g}"
    demo = WORK / f"incremental-demo-{args.scale:g}"
    params = demo_params(args.scale)
    params = dataclasses.replace(params, shard_records=max(20, params.reasoning_prompts // SHARDS))
    ensure_demo(demo, params, args.keep)
    held_dir = work / "held"
    shutil.rmtree(work, ignore_errors=True)
    held_dir.mkdir(parents=True)
    raw = demo / "raw"
    held = held_files(raw)
    held_bytes = sum(p.stat().st_size for p in held)
    all_bytes = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file())
    moved = []
    try:
        for path in held:
            target = held_dir / path.relative_to(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
            moved.append((target, path))
        lake_conf = bench_config(demo, work / "lake", args.engine, args.scale)
        first = timed_run(lake_conf, False, {})
    finally:
        for target, path in moved:
            shutil.move(target, path)
    incremental = timed_run(lake_conf, False, {"mix.stable": True})
    full_conf = bench_config(demo, work / "full", args.engine, args.scale)
    full = timed_run(full_conf, True, {})

    first_rows = first["stages"]["mix"]["rows_out"]
    shares = kept_shares(first["stages"]["mix"], incremental["stages"]["mix"])
    keepable = shares["mix_keepable_rows"]
    figures = {
        "engine": args.engine,
        "scale": args.scale,
        "held_files": [str(p.relative_to(raw)) for p in held],
        "held_share_of_bytes": round(held_bytes / all_bytes, 3),
        "new_share_of_candidates": new_share(incremental["stages"]["annotate"]["incremental"]),
        "first": first,
        "incremental": incremental,
        "full": full,
        "incremental_over_full": round(incremental["wall_s"] / full["wall_s"], 3),
        **shares,
    }
    save(f"incremental-{args.engine}-{args.scale:g}", figures)
    print(f"\nincremental {incremental['wall_s']} s vs full rebuild {full['wall_s']} s: "
          f"{figures['incremental_over_full']:.2f}x; {figures['new_share_of_candidates']:.1%} new candidates; "
          f"stable mix kept {figures['mix_kept_share']:.2%} of {first_rows} rows "
          f"({figures['mix_kept_share_of_keepable']:.2%} of the {keepable} its strata's new quotas allow)")
    for stage in full["stages"]:
        print(f"  {stage:<9} first {first['stages'][stage].get('seconds', '-'):>7}  "
              f"incremental {incremental['stages'][stage].get('seconds', '-'):>7}  "
              f"full {full['stages'][stage].get('seconds', '-'):>7}")


if __name__ == "__main__":
    main()
