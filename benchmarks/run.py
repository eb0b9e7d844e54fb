"""The whole pipeline at a scale, with the floors measured in the same run (``make bench``).

    .venv/bin/python benchmarks/run.py --scale 0.05                 # embedded Sail, Delta
    .venv/bin/python benchmarks/run.py --scale 0.05 --engine spark  # classic Spark local[2], Parquet
    .venv/bin/python benchmarks/run.py --compare 0.05               # both engines' results side by side

Scale 1 is the full-size run of issue 8: 740,000 reasoning prompts x 4
candidates + 250,000 non-reasoning records = 3.21M candidates (about 23 GB
of JSONL/Parquet, a mean of ~7 KB per reasoning candidate), mixed into
800,000 rows (600k reasoning + 200k non-reasoning). Smaller scales shrink
every count, the mix total and the cold-start size alike.

Per stage it prints wall seconds, rows/s, MB/s (of the stage's input text
where that is what the stage reads), the peak RSS of the whole process tree
(engine, UDF pool workers, the JVM on classic Spark) while the stage ran, and
the ratio of the stage's time to its floor. Floors, measured in this run:

- JSON parsing alone: orjson over every raw JSONL line in one process (and
  pyarrow for Parquet inputs), divided by the engine's cores;
- fastText predict alone: lid.176 over each candidate's full text, one call per
  candidate, in one process, on a deterministic sample of up to 20,000
  candidates; its MB/s is scaled to all of the stage's text and divided by the
  cores (running it over 23 GB would take longer than the pipeline);
- reading alone: the engine scanning the columns a stage reads from its input
  tables once, every value decoded (``STAGE_INPUTS``; an aggregate of lengths
  and sizes, nothing written);
- writing alone: each stage's output tables read back and written again by the
  engine to a scratch table (Delta on Sail, Parquet on classic Spark).

A stage's floor is the sum of the floors of what it must do: ingest = parse +
write bronze; annotate = fastText + read bronze + write silver.candidates;
dedup = MinHash fingerprints of every prompt (``minhash.fingerprint_batch``,
the numpy kernel dedup's pool runs, on a sample of 100,000 prompts in one
process, scaled and divided by the cores, as fastText's) + read + write;
select, mix = read their inputs + write their outputs; export = writing
gold.sft_mix and gold.cold_start as Parquet and as JSON lines (the formats it
writes, which reads them). Until 2026-11-27 the floors of annotate, select,
dedup and mix left the read out (dedup's floor was then its 0.1 s write, so it
had no ratio); each of those stages also reports ``ratio_to_floor_without_read``.
Results go to ``benchmarks/results/run-<engine>-<scale>.json``; the full-size
run also to ``full-<date>.json``.

``--until STAGE`` stops after that stage (e.g. ``--until ingest`` to compare ingest's
time and memory across scales without the two-hour annotate); the result then has no
``final_rows`` and only those stages' floors, and is saved as ``run-<engine>-<scale>-<stage>.json``.

``--resume-from STAGE --stages-log LOG`` continues a run that stopped before
``STAGE`` (a crash, or a session that ended): the demo data and the lake stay,
the earlier stages' figures are taken from the JSON lines the stopped run
printed to ``LOG`` (or from a finished run's result file, floors included),
and the result says ``resumed_from``. Floors are measured for the stages this
process runs (the write floor of annotate copies the 15 GB silver.candidates,
which a full-size lake's disk may not have room for). Stages run the same
code either way (each is timed alone, and the resumed ones as ``--full``, as in a
fresh run, whatever tables the stopped run left); only the process differs.
It also reruns the later stages of a finished run with newer code.

``--set KEY=VALUE --label NAME`` runs with other settings (as ``sftmix --set``),
e.g. ``--set code_verify.mode=external --label external`` for verdicts from
outside instead of the sandbox; the result records the overrides and goes to
``run-<engine>-<scale>-<label>.json``, never to ``full-<date>.json``. ``--label``
alone names a run with the default settings the same way (a second measurement
that must not replace the full-size file).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, demo_config, raw_bytes  # noqa: E402

from sftmix.jobs.cli import parse_overrides  # noqa: E402
from sftmix.jobs.demo.generator import DemoParams, generate_demo_data  # noqa: E402
from sftmix.jobs.pipeline import STAGES  # noqa: E402
from sftmix.jobs.runtime.context import open_runtime, setup_logging  # noqa: E402
from sftmix.transforms import language, process_pool  # noqa: E402

FULL_REASONING_PROMPTS = 740_000
FULL_NON_REASONING = 250_000
CANDIDATES_PER_PROMPT = 4
FULL_MIX = 800_000
FULL_COLD_START = 5_000
FASTTEXT_SAMPLE = 20_000
MINHASH_SAMPLE = 100_000

# The tables each stage writes that count for its write floor (its main outputs).
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "ingest": ("bronze.generations",),
    "annotate": ("silver.candidates",),
    "select": ("silver.selected", "silver.prompts"),
    "dedup": ("silver.prompt_status",),
    "mix": ("gold.sft_mix", "silver.decisions"),
    "export": ("gold.sft_mix",),
}

# What each stage must read, as (table, columns; None: every column): the read half of its floor.
# Ingest's read is the parse floor; export's floor (writing gold in both formats) reads its input.
MIX_READS = ("candidate_id", "source", "prompt_id", "kind", "domain", "reject_reasons", "system", "prompt",
             "messages", "reasoning", "answer", "reasoning_chars", "answer_chars", "paragraph_chars")
STAGE_INPUTS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "annotate": (("bronze.generations", None),),
    "select": (("silver.candidates", None),),
    "dedup": (("silver.prompts", None), ("silver.selected", ("source", "prompt_id", "completion"))),
    "mix": (
        ("silver.selected", MIX_READS),
        ("silver.candidates", ("candidate_id", "source", "prompt_id", "kind", "domain", "reject_reasons")),
        ("silver.prompt_status", None),
    ),
}


class TreeMemory:
    """Peak RSS of this process and all its descendants, sampled every 0.25 s in a thread.

    ``ru_maxrss`` of children only reports the largest single child; the JVM and
    the pool workers run at the same time, so their sum is what the machine holds.
    """

    def __init__(self) -> None:
        self.peak = 0
        self.own_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        self.peak = self.own_peak = 0

    def _run(self) -> None:
        root = os.getpid()
        while not self._stop.wait(0.25):
            total, own = _tree_rss(root)
            self.peak = max(self.peak, total)
            self.own_peak = max(self.own_peak, own)


def _tree_rss(root: int) -> tuple[int, int]:
    """(RSS of ``root`` and its descendants, RSS of ``root``) in bytes, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(stat[1])
            rss[int(entry)] = int(stat[21]) * page
    tree = {root}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sum(rss.get(pid, 0) for pid in tree), rss.get(root, 0)


def demo_params(scale: float) -> DemoParams:
    return DemoParams(
        reasoning_prompts=max(50, round(FULL_REASONING_PROMPTS * scale)),
        candidates_per_prompt=CANDIDATES_PER_PROMPT,
        non_reasoning_records=max(20, round(FULL_NON_REASONING * scale)),
        compress=False,
        shard_records=20_000,
    )


def ensure_demo(demo: Path, params: DemoParams, keep: bool) -> float | None:
    """Generate the demo data unless an earlier run left the same data; the seconds it took, or None."""
    marker = demo / "bench-params.json"
    wanted = json.dumps(params.__dict__, sort_keys=True)
    if keep and marker.exists() and marker.read_text() == wanted:
        return None
    shutil.rmtree(demo, ignore_errors=True)
    started = time.perf_counter()
    generate_demo_data(demo, params)
    marker.write_text(wanted)
    return time.perf_counter() - started


def bench_config(demo: Path, lake: Path, engine: str, scale: float) -> Path:
    path = demo_config(demo, lake, engine)
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("mix", {})["total"] = round(FULL_MIX * scale)
    raw.setdefault("cold_start", {})["size"] = max(50, round(FULL_COLD_START * scale))
    # Production's shard size (conf/base.yaml), not the demo config's 500: 40 shards at full size, not 1,600.
    raw.setdefault("export", {})["shard_rows"] = 20_000
    for source in raw["sources"]:
        source["max_bad_fraction"] = 0.5  # small scales plant the same few bad records as big ones
    if engine == "spark":
        raw["engine"]["spark_conf"] = {"spark.driver.memory": "8g", "spark.sql.session.timeZone": "UTC"}
        raw["engine"]["shuffle_partitions"] = 16
    path.write_text(yaml.safe_dump(raw))
    return path


def parse_floor(raw: Path) -> tuple[float, int]:
    """(seconds, bytes) to read and parse every raw input file in one process, without an engine."""
    started, size = time.perf_counter(), 0
    for path in sorted(raw.rglob("*")):
        if path.suffix == ".jsonl":
            size += path.stat().st_size
            with open(path, "rb", buffering=1 << 20) as stream:
                for line in stream:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(line)
        elif path.suffix == ".parquet":
            size += path.stat().st_size
            pq.read_table(path)
    return time.perf_counter() - started, size


def fasttext_floor(rt: Any) -> dict[str, float]:
    """fastText predict alone over a deterministic sample of candidates' full texts, one process."""
    from pyspark.sql import functions as F

    bronze = rt.tables.read("bronze.generations")
    total = bronze.select(
        F.count("*").alias("rows"),
        F.sum(
            F.coalesce(F.octet_length("completion"), F.lit(0))
            + F.coalesce(F.octet_length("reasoning_content"), F.lit(0))
        ).alias("bytes"),
    ).first()
    rows, text_bytes = int(total["rows"]), int(total["bytes"] or 0)
    every = max(1, rows // FASTTEXT_SAMPLE)
    sample = (
        bronze.where(F.abs(F.xxhash64("candidate_id")) % every == 0)
        .select(F.concat_ws("\n", F.coalesce("completion", F.lit("")), F.coalesce("reasoning_content", F.lit(""))))
        .limit(FASTTEXT_SAMPLE)
        .toPandas()  # a bounded sample: the floor runs in this one process by definition
        .iloc[:, 0]
        .tolist()
    )
    model = language.load_model()
    lines = [" ".join(text.split()) for text in sample]  # predict takes one line; joining is not timed
    sample_bytes = sum(len(line.encode()) for line in lines)
    started = time.process_time()
    for line in lines:
        language.identify(model, line)
    seconds = time.process_time() - started
    return {
        "sample_rows": len(lines),
        "sample_mb": round(sample_bytes / 1e6, 1),
        "mb_per_s_one_core": round(sample_bytes / 1e6 / seconds, 2),
        "text_mb": round(text_bytes / 1e6, 1),
        "text_rows": rows,
        "seconds_one_core_all_text": round(text_bytes / (sample_bytes / seconds), 1),
    }


def minhash_floor(rt: Any) -> dict[str, float]:
    """Dedup's kernel alone: MinHash fingerprints (tokens, shingles, signatures, band keys;
    ``minhash.fingerprint_batch``, the function dedup's pool runs) over a deterministic sample of
    silver.prompts, in batches of dedup's size, one process, CPU seconds scaled to every prompt."""
    from pyspark.sql import functions as F

    from sftmix.transforms.minhash import fingerprint_batch

    params = rt.config.dedup
    prompts = rt.tables.read("silver.prompts")
    rows = prompts.count()
    every = max(1, rows // MINHASH_SAMPLE)
    texts = (
        prompts.where(F.abs(F.xxhash64("source", "prompt_id")) % every == 0)
        .select("prompt")
        .limit(MINHASH_SAMPLE)
        .toPandas()  # a bounded sample: the floor runs in this one process by definition
        .iloc[:, 0]
        .tolist()
    )
    spec = params.spec(rt.config.seed)
    started = time.process_time()
    for start in range(0, len(texts), params.batch_rows):
        fingerprint_batch(texts[start : start + params.batch_rows], spec)
    seconds = time.process_time() - started
    return {
        "sample_rows": len(texts),
        "rows": rows,
        "rows_per_s_one_core": round(len(texts) / seconds),
        "seconds_one_core_all_rows": round(rows * seconds / max(1, len(texts)), 1),
    }


def write_floor(rt: Any, tables: tuple[str, ...]) -> float:
    """Seconds to read ``tables`` and write them again to scratch tables (the engine's write path)."""
    started = time.perf_counter()
    for name in tables:
        scratch = "bench.floor_" + name.replace(".", "_")
        rt.tables.write(rt.tables.read(name), scratch)
    seconds = time.perf_counter() - started
    for name in tables:
        shutil.rmtree(rt.tables.location("bench.floor_" + name.replace(".", "_")), ignore_errors=True)
    return seconds


def read_floor(rt: Any, inputs: tuple[tuple[str, tuple[str, ...] | None], ...]) -> float:
    """Seconds for the engine to scan ``inputs`` once, every value decoded, and nothing else.

    One aggregate per table: the summed length of each string or binary column, the summed size of
    each array or map, a count of the rest; the engine cannot answer any of them from metadata.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    started = time.perf_counter()
    for name, columns in inputs:
        df = rt.tables.read(name)
        fields = [f for f in df.schema.fields if columns is None or f.name in columns]
        figures = []
        for f in fields:
            if isinstance(f.dataType, (T.StringType, T.BinaryType)):
                figures.append(F.sum(F.length(f.name)))
            elif isinstance(f.dataType, (T.ArrayType, T.MapType)):
                figures.append(F.sum(F.size(f.name)))
            else:
                figures.append(F.count(f.name))
        df.select(*figures).collect()  # one row
    return time.perf_counter() - started


def export_formats_floor(rt: Any, tables: tuple[str, ...]) -> float:
    """Seconds for the engine to write ``tables`` in the formats export writes: Parquet and JSON lines.

    Export's output is those two files per shard (plus a card and checksums): a Delta rewrite of
    one table, the floor of the other stages, would count one format of two.
    """
    started = time.perf_counter()
    paths = []
    for name in tables:
        df = rt.tables.read(name)
        for fmt in ("parquet", "json"):
            path = rt.tables.scratch(f"floor-{fmt}-{name}")
            paths.append(path)
            getattr(df.write.mode("overwrite"), fmt)(path)
    seconds = time.perf_counter() - started
    for path in paths:
        rt.tables.drop_scratch(path)
    return seconds


def earlier_stages(log: Path, before: str) -> list[dict[str, Any]]:
    """The stage figures of an earlier run, for the stages before ``before``.

    ``log`` is what a stopped run printed (its JSON stage lines), or the result file of a finished
    run (``results/run-*.json``), whose stages also carry the floors measured in that run.
    """
    text = log.read_text()
    printed = {}
    if text.lstrip().startswith("{") and '"stages"' in text:
        with contextlib.suppress(json.JSONDecodeError):
            printed = {s["stage"]: s for s in json.loads(text)["stages"]}
    for line in text.splitlines():
        if line.startswith('{"stage": '):
            figures = json.loads(line)
            printed[figures["stage"]] = figures
    names = list(STAGES)[: list(STAGES).index(before)]
    missing = [name for name in names if name not in printed]
    if missing:
        raise SystemExit(f"{log} has no figures for {missing}: resume from an earlier stage")
    return [printed[name] for name in names]


def run(scale: float, engine: str, keep: bool, resume_from: str | None = None,
        stages_log: Path | None = None, until: str | None = None,
        overrides: dict[str, Any] | None = None, label: str | None = None) -> dict[str, Any]:
    tag = f"{scale:g}"
    demo = WORK / f"run-demo-{tag}"
    lake = WORK / f"run-lake-{engine}-{tag}"
    params = demo_params(scale)
    stages: list[dict[str, Any]] = []
    if resume_from:
        assert stages_log is not None
        stages = earlier_stages(stages_log, resume_from)
        generated = None
    else:
        generated = ensure_demo(demo, params, keep)
        shutil.rmtree(lake, ignore_errors=True)
    conf = bench_config(demo, lake, engine, scale)
    input_bytes = raw_bytes(demo / "raw")
    figures: dict[str, Any] = {
        "scale": scale,
        "engine": engine,
        "date": dt.date.today().isoformat(),
        "demo_params": params.__dict__,
        "demo_generate_s": round(generated, 1) if generated is not None else None,
        "input_mb": round(input_bytes / 1e6, 1),
        "cores": os.cpu_count(),
    }
    if resume_from:
        figures["resumed_from"] = resume_from
    if overrides:
        figures["overrides"] = overrides
    if label:
        figures["label"] = label
    names = list(STAGES)
    wanted = names[: names.index(until) + 1] if until else names
    if until:
        figures["until"] = until
    with TreeMemory() as memory, open_runtime(str(conf), overrides) as rt:
        if resume_from:
            # As a fresh run would: every resumed stage recomputes its tables from all of its input
            # (the stopped run may have left them, and an incremental select re-ranks nothing).
            rt.full_rebuild = True
        cores = max(1, process_pool.pool_size()) if engine == "local" else 2
        figures["cores_used"] = cores
        started = time.perf_counter() - sum(s["seconds"] for s in stages)
        ran: list[str] = []  # the stages this process runs (a resumed run took the others' figures)
        for name, body in STAGES.items():
            if name not in wanted or any(s["stage"] == name for s in stages):
                continue
            memory.reset()
            stage_started = time.perf_counter()
            result = rt.run_stage(name, body)
            ran.append(name)
            seconds = time.perf_counter() - stage_started
            stages.append(
                {
                    "stage": name,
                    "seconds": round(seconds, 1),
                    "rows_in": result.rows_in,
                    "rows_out": result.rows_out,
                    "rows_per_s": round(result.rows_in / seconds) if seconds else None,
                    "peak_rss_gb": round(memory.peak / 1e9, 2),
                    "engine_process_peak_rss_gb": round(memory.own_peak / 1e9, 2),
                }
            )
            print(json.dumps(stages[-1]), flush=True)
        figures["wall_s"] = round(time.perf_counter() - started, 1)
        if "export" in wanted:
            figures["final_rows"] = rt.tables.read("gold.sft_mix").count()
            figures["cold_start_rows"] = rt.tables.read("gold.cold_start").count()
        figures["candidates"] = stages[0]["rows_out"]

        # Floors, after the pipeline so they do not warm its caches; only of the stages this process ran
        # (a resumed run keeps the earlier stages' figures, and their floors where the source had them).
        memory.reset()
        ft = fasttext_floor(rt) if "annotate" in ran else None
        figures["floor_fasttext"] = ft
        minhash = minhash_floor(rt) if "dedup" in ran else None
        figures["floor_minhash"] = minhash
        writes = {name: round(write_floor(rt, tables), 1) for name, tables in STAGE_OUTPUTS.items() if name in ran}
        figures["floor_write_s"] = writes
        reads = {name: round(read_floor(rt, inputs), 1) for name, inputs in STAGE_INPUTS.items() if name in ran}
        figures["floor_read_s"] = reads
        if "export" in ran:
            figures["floor_export_formats_s"] = round(
                export_formats_floor(rt, ("gold.sft_mix", "gold.cold_start")), 1
            )
    # The floors as defined until 2026-11-27 (writes, plus parsing for ingest and fastText for annotate),
    # then today's: those plus each stage's reads and dedup's MinHash kernel.
    old_floors: dict[str, float] = dict(writes)
    if "ingest" in ran:
        parse_s, parse_bytes = parse_floor(demo / "raw")
        figures["floor_parse"] = {"seconds_one_core": round(parse_s, 1), "mb": round(parse_bytes / 1e6, 1),
                                  "mb_per_s_one_core": round(parse_bytes / 1e6 / parse_s, 1)}
        old_floors["ingest"] += parse_s / cores
    if ft is not None:
        old_floors["annotate"] += ft["seconds_one_core_all_text"] / cores
    if "floor_export_formats_s" in figures:
        old_floors["export"] = figures["floor_export_formats_s"]
    floors = {name: old_floors[name] + reads.get(name, 0.0) for name in old_floors}
    if minhash is not None:
        floors["dedup"] += minhash["seconds_one_core_all_rows"] / cores
    for stage in stages:
        name = stage["stage"]
        if name not in ran:
            continue
        stage["floor_s"] = round(floors[name], 1)
        stage["ratio_to_floor"] = ratio(stage["seconds"], floors[name])
        if name in reads:
            stage["ratio_to_floor_without_read"] = ratio(stage["seconds"], old_floors[name])
        if name == "ingest":
            stage["mb_per_s"] = round(input_bytes / 1e6 / stage["seconds"], 1)
        if name == "annotate" and ft is not None:
            stage["mb_per_s"] = round(ft["text_mb"] / stage["seconds"], 2)
    figures["stages"] = stages
    figures["peak_rss_gb"] = max(s["peak_rss_gb"] for s in stages)
    return figures


def ratio(seconds: float, floor: float) -> float | None:
    # A floor under 0.1 s is timer noise on a table this small: the ratio would say nothing.
    return round(seconds / floor, 2) if floor >= 0.1 else None


def save(figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2) + "\n"
    until = f"-{figures['until']}" if figures.get("until") else ""
    label = f"-{figures['label']}" if figures.get("label") else ""
    (RESULTS / f"run-{figures['engine']}-{figures['scale']:g}{label}{until}.json").write_text(text)
    if figures["scale"] >= 1 and not until and not label:
        (RESULTS / f"full-{figures['date']}.json").write_text(text)


def compare(scale: float) -> str:
    """A Markdown table of both engines' stage figures at ``scale``, from saved results."""
    runs = {}
    for engine in ("local", "spark"):
        path = RESULTS / f"run-{engine}-{scale:g}.json"
        if path.exists():
            runs[engine] = json.loads(path.read_text())
    if not runs:
        raise SystemExit(f"no results for scale {scale:g}: run benchmarks/run.py --scale {scale:g} first")
    head = "| stage | " + " | ".join(f"{e} s | {e} x floor | {e} peak GB" for e in runs) + " |"
    lines = [head, "|" + "---|" * (1 + 3 * len(runs))]
    for index, name in enumerate(STAGES):
        cells = []
        for figures in runs.values():
            stage = figures["stages"][index]
            cells += [f"{stage['seconds']}", f"{stage.get('ratio_to_floor')}", f"{stage['peak_rss_gb']}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = []
    for figures in runs.values():
        totals += [f"{figures['wall_s']}", "", f"{figures['peak_rss_gb']}"]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    first = next(iter(runs.values()))
    lines.append(f"\n{first['candidates']:,} candidates, {first['input_mb']:,} MB input, "
                 f"{first['final_rows']:,} rows in gold.sft_mix")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01, help="1 = 3.21M candidates -> 800k mix")
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--keep", action="store_true", help="reuse demo data an earlier run generated")
    parser.add_argument("--compare", type=float, metavar="SCALE", help="print both engines' results")
    parser.add_argument("--resume-from", choices=list(STAGES), help="continue a stopped run at this stage")
    parser.add_argument("--stages-log", type=Path, help="the stopped run's output (its stage lines)")
    parser.add_argument("--until", choices=list(STAGES), help="stop after this stage")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key of the run (YAML value); needs --label")
    parser.add_argument("--label", help="names the results (run-<engine>-<scale>-<label>.json); needed by --set")
    args = parser.parse_args()
    if args.compare is not None:
        print(compare(args.compare))
        return
    setup_logging()
    if args.resume_from and not args.stages_log:
        parser.error("--resume-from needs --stages-log")
    if args.set and not args.label:
        parser.error("--set needs --label: a run with other settings must not pass for the default one")
    overrides = parse_overrides(args.set)
    figures = run(args.scale, args.engine, args.keep, args.resume_from, args.stages_log, args.until,
                  overrides, args.label)
    save(figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "stages"}, indent=2))
    print(f"{'stage':<10} {'seconds':>9} {'rows/s':>9} {'floor s':>9} {'x floor':>8} {'peak GB':>8}")
    for s in figures["stages"]:
        print(f"{s['stage']:<10} {s['seconds']:>9} {s['rows_per_s'] or '-':>9} {s['floor_s']:>9} "
              f"{s['ratio_to_floor'] or '-':>8} {s['peak_rss_gb']:>8}")


if __name__ == "__main__":
    main()
