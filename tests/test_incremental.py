"""Incremental runs equal a full rebuild: on both engines, a lake built in two batches (new raw
files and a re-run judgment file arrive in the second) has the same silver tables and RL pool as a
lake built from everything at once with ``--full``, and the second run annotated only what was new.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sftmix.jobs.pipeline import run_pipeline
from sftmix.jobs.runtime.context import Runtime
from sftmix.jobs.runtime.tables import Tables

from .test_annotate_demo import demo_conf

generator = pytest.importorskip("sftmix.jobs.demo.generator")

# Mix and export always recompute from the silver tables (deterministic, tests/test_mix*.py), so
# equal silver tables give equal gold ones; they are left out to keep the test quick on classic Spark.
STAGES = ["ingest", "annotate", "select", "dedup"]
# Files that arrive in the second batch: new prompts (math), new candidates of old and new prompts
# (code_flat: one candidate per line), a Parquet part, and a sandbox re-run that re-judges old rows.
SECOND_BATCH = (
    "raw/math_grouped/part-00001.jsonl",
    "raw/code_flat/part-00003.jsonl",
    "raw/chat_parquet/part-00001.parquet",
    "judgments/code_sandbox/run2-00000.jsonl",
)
# Compared row for row; columns naming the run or the version differ by design, and verify_path
# records whether a process-local cache answered (a performance trace; the verdict never depends on it).
COMPARED = {
    "silver.candidates": ("verify_path",),
    "silver.judgments": (),
    "silver.prompts": (),
    "silver.selected": ("verify_path",),
    "silver.prompt_status": (),
    "silver.prompt_fingerprints": (),
    "silver.contamination": (),
    "gold.rl_prompts": (),
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incremental-demo")
    params = generator.DemoParams(
        reasoning_prompts=60, candidates_per_prompt=4, non_reasoning_records=30, shard_records=20,
        compress=False, seed=11,
    )
    generator.generate_demo_data(out, params)
    return out


def lake_conf(data: Path, where: Path) -> Path:
    """The demo config over ``data``: sources, judgments and the benchmark file."""
    path = demo_conf(data, where)
    conf = yaml.safe_load(path.read_text())
    for entry in [*conf.get("judgments", []), *conf["decontaminate"]["benchmarks"]]:
        for key in ("paths", "path"):
            if key in entry:
                fix = lambda p: str(data / p.removeprefix("../demo/"))  # noqa: E731
                entry[key] = [fix(p) for p in entry[key]] if isinstance(entry[key], list) else fix(entry[key])
    path.write_text(yaml.safe_dump(conf))
    return path


def rows(rt: Runtime, name: str, skip: tuple[str, ...]) -> list[tuple[str, ...]]:
    frame = rt.tables.read(name)
    columns = sorted(c for c in frame.columns if c not in skip)
    return sorted(tuple(f"{c}={r[c]}" for c in columns) for r in frame.select(*columns).collect())


def differences(left: list[tuple[str, ...]], right: list[tuple[str, ...]]) -> list[str]:
    """The column values of the first rows that differ (for a readable failure)."""
    only_left, only_right = sorted(set(left) - set(right)), sorted(set(right) - set(left))
    if not only_left or not only_right:
        return [f"{len(left)} vs {len(right)} rows"]
    return [f"{a[:200]} != {b[:200]}" for a, b in zip(only_left[0], only_right[0], strict=True) if a != b]


def run(rt: Runtime, full: bool = False) -> dict[str, Any]:
    rt.full_rebuild = full
    return {name: result.details for name, result in run_pipeline(rt, STAGES).items()}


class SimulatedCrash(RuntimeError):
    pass


def crash_on_append(table: str) -> Any:
    """Tables.write that dies when asked to append to ``table`` (annotate's second commit)."""
    real = Tables.write

    def write(self: Tables, df: Any, name: str, *args: Any, **kwargs: Any) -> None:
        if name == table and (args[:1] == ("append",) or kwargs.get("mode") == "append"):
            raise SimulatedCrash(f"the job died before appending to {table}")
        real(self, df, name, *args, **kwargs)

    return write


def test_incremental_run_equals_full_rebuild(
    engine, runtime_factory, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The crash-and-resume and the changed-threshold steps test logic above the engine (a write
    # refused before it starts, a settings hash); classic Spark, where each pipeline run here takes
    # about a minute, runs the batches and the comparison with --full only.
    engine_steps = engine.kind == "local"
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    held = tmp_path / "held"
    for relative in SECOND_BATCH:
        (held / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(data / relative, held / relative)
    conf = lake_conf(data, tmp_path)
    # The lake commits annotate's rows in slices of 100 (several commits on both paths); the --full
    # build below in one: the tables must not depend on it.
    lake = runtime_factory(conf=conf, storage__root=str(tmp_path / "lake"), annotate__commit_rows=100)
    # The first build dies after annotate's first commit; the next run resumes from what was committed.
    if engine_steps:
        with monkeypatch.context() as patch:
            patch.setattr(Tables, "write", crash_on_append("silver.candidates"))
            with pytest.raises(SimulatedCrash):
                run(lake)
        committed = lake.tables.read("silver.candidates").count()
    first = run(lake)
    if engine_steps:
        resumed = first["annotate"]["incremental"]
        assert resumed["mode"] == "incremental" and resumed["reused"] == committed > 0
        assert resumed["annotated"] > 0 and resumed["commits"] >= 2
    before = lake.tables.read("silver.candidates").count()
    for relative in SECOND_BATCH:
        shutil.move(held / relative, data / relative)
    second = run(lake)
    after = lake.tables.read("silver.candidates").count()

    # Only the new candidates and the re-judged old ones were annotated; every other row was reused.
    step = second["annotate"]["incremental"]
    new = after - before
    rejudged = sum(1 for line in (data / SECOND_BATCH[-1]).read_text().splitlines() if line.strip())
    assert step["mode"] == "incremental"
    assert new > 0
    assert new < step["annotated"] <= new + rejudged
    assert step["reused"] == after - step["annotated"]

    full = runtime_factory(conf=conf, storage__root=str(tmp_path / "full"))
    run(full, full=True)
    for name, skip in COMPARED.items():
        incremental_rows, full_rows = rows(lake, name, skip), rows(full, name, skip)
        assert incremental_rows == full_rows, (name, differences(incremental_rows, full_rows))

    # A third run with nothing new annotates nothing and changes no row.
    third = run_pipeline(lake, ["annotate"])["annotate"].details["incremental"]
    assert third == {"mode": "incremental", "annotated": 0, "reused": after, "commits": 1}
    assert rows(lake, "silver.candidates", ("verify_path",)) == rows(full, "silver.candidates", ("verify_path",))

    if not engine_steps:
        return
    # Another threshold: every row was decided with the old one, so all are annotated again.
    moved = runtime_factory(conf=conf, storage__root=str(tmp_path / "lake"), annotate__long_paragraph__max_chars=900)
    again = run_pipeline(moved, ["annotate"])["annotate"].details["incremental"]
    assert again["mode"] == "full" and again["why"].startswith("the annotate settings changed")
