"""The runner: stage order, ops.runs + ops.stage_metrics, idempotent reruns, resume after a failure."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyspark.sql import functions as F

from sftmix.jobs import annotate, cli, ingest, ops, pipeline
from sftmix.jobs.runtime.context import Runtime, StageResult

from .conftest import REPO, read_back

THINK = "<think>\nLet x = 2. Then x + 2 = 4, so the sum is four.\n</think>\n\nThe answer is \\boxed{4}."


def write_tiny_source(root: Path, prompts: int = 3, samples: int = 2, bad_lines: int = 1) -> Path:
    """A flat JSONL dump (prompts x samples candidates, plus bad lines) and a config reading it."""
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"pid": f"p{p}", "prompt": f"What is {p} + 2?", "completion": THINK, "i": i,
                    "finish_reason": "stop", "answer": "4"})
        for p in range(prompts) for i in range(samples)
    ] + ['{"pid": "broken", "prompt": "cut'] * bad_lines
    (raw / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    config = {
        "extends": str(REPO / "conf" / "base.yaml"),
        "sources": [{
            "name": "tiny", "format": "flat", "paths": [str(raw / "*.jsonl")], "domain": "math",
            "max_bad_fraction": 0.5,
            "fields": {"prompt_id": "pid", "prompt": "prompt", "completion": "completion", "sample_index": "i",
                       "finish_reason": "finish_reason", "reference_answer": "answer"},
        }],
    }
    path = root / "conf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pick_first(rt: Runtime) -> StageResult:
    """A stand-in for select: per prompt, the lowest sample index; rewrites silver.selected."""
    candidates = rt.tables.read("silver.candidates")
    selected = candidates.where(F.col("sample_index") == 0).select("candidate_id", "prompt_id", "sample_index")
    rt.tables.write(selected, "silver.selected")
    rows_out = rt.tables.read("silver.selected").count()
    rows_in = candidates.count()
    return StageResult(rows_in, rows_out, rejected={"not_selected": rows_in - rows_out})


class Flaky:
    """A stage that fails the first ``failures`` times it runs (a transient cluster error)."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, rt: Runtime) -> StageResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("executor lost (simulated)")
        selected = rt.tables.read("silver.selected")
        rt.tables.write(selected.withColumn("in_mix", F.lit(True)), "gold.sft_mix")
        n = rt.tables.read("gold.sft_mix").count()
        return StageResult(n, n)


def seed_candidates(rt: Runtime) -> StageResult:
    """A stand-in for ingest + annotate where only the later stages matter (keeps the test cheap)."""
    rows = [(f"c{p}{i}", f"p{p}", i) for p in range(3) for i in range(2)]
    frame = rt.spark.createDataFrame(rows, "candidate_id string, prompt_id string, sample_index int")
    rt.tables.write(frame, "silver.candidates")
    return StageResult(len(rows), len(rows))


def stages(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    """The real ingest and annotate, then fake stages, as the runner's STAGES."""
    monkeypatch.setattr(pipeline, "STAGES", {"ingest": ingest.ingest, "annotate": annotate.annotate, **extra})


def runs_of(rt: Runtime, run_id: str) -> list[dict[str, Any]]:
    rows = [r for r in read_back(rt, "ops.runs") if r["run_id"] == run_id]
    return sorted(rows, key=lambda r: r["written_at"])


def without(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in columns} for r in rows]


def test_plan_stages_keeps_flow_order_and_cuts_at_from() -> None:
    names = list(pipeline.STAGES)
    assert pipeline.plan_stages() == names
    assert pipeline.plan_stages([names[1], names[0]]) == names[:2]
    assert pipeline.plan_stages(None, names[1]) == names[1:]
    with pytest.raises(pipeline.StageSelectionError, match="unknown stage 'nope'"):
        pipeline.plan_stages(["nope"])
    with pytest.raises(pipeline.StageSelectionError, match="not among the selected"):
        pipeline.plan_stages([names[0]], names[1])


def test_run_records_manifest_metrics_and_reruns_identically(runtime_factory, tmp_path, monkeypatch, caplog):
    stages(monkeypatch, select=pick_first)
    conf = write_tiny_source(tmp_path)
    caplog.set_level(logging.INFO, logger="sftmix")

    rt = runtime_factory(conf, run_id="run-1")
    results = pipeline.run_pipeline(rt)
    assert list(results) == ["ingest", "annotate", "select"]
    assert (results["ingest"].rows_in, results["ingest"].rows_out) == (7, 6)
    assert results["select"].rows_out == 3
    # One progress line per stage, with rows and seconds.
    for stage in results:
        assert any(r.getMessage().startswith(f"{stage}: ") and " rows out in " in r.getMessage()
                   for r in caplog.records)

    start, end = runs_of(rt, "run-1")
    assert (start["status"], end["status"]) == ("running", "succeeded")
    assert end["stages"] == "ingest,annotate,select" and end["engine"] == rt.engine.name
    assert end["config_hash"] == rt.config.config_hash and end["ended_at"] >= end["started_at"]
    assert json.loads(start["input_versions"]) == {}  # an empty lake
    outputs = json.loads(end["output_versions"])
    assert {"bronze.generations", "silver.candidates", "silver.selected"} <= set(outputs)
    if rt.tables.table_format == "delta":
        assert outputs["silver.selected"] == 0
    metrics = {r["stage"]: r for r in read_back(rt, "ops.stage_metrics")}
    assert set(metrics) == {"ingest", "annotate", "select"}
    assert json.loads(metrics["select"]["rejected"]) == {"not_selected": 3}
    assert json.loads(metrics["ingest"]["rejected"]) == {"quarantined": 1}

    before = {name: read_back(rt, name) for name in ("bronze.generations", "silver.candidates", "silver.selected")}
    again = runtime_factory(conf, run_id="run-2")
    pipeline.run_pipeline(again)
    # A rerun replaces every output: same rows, no duplicates (ingest skips the files it has).
    for name, rows in before.items():
        assert read_back(again, name) == rows, name
    assert json.loads(runs_of(again, "run-2")[0]["input_versions"]).keys() >= before.keys()


def test_failure_is_recorded_and_from_resumes(runtime_factory, monkeypatch, caplog):
    flaky = Flaky(failures=1)
    monkeypatch.setattr(pipeline, "STAGES", {"annotate": seed_candidates, "select": pick_first, "mix": flaky})
    rt = runtime_factory(run_id="run-f")
    with pytest.raises(RuntimeError, match="executor lost"):
        pipeline.run_pipeline(rt)
    start, failed = runs_of(rt, "run-f")
    assert failed["status"] == "failed" and failed["failed_stage"] == "mix"
    assert failed["error"] == "RuntimeError: executor lost (simulated)"
    assert not rt.tables.exists("gold.sft_mix")
    assert "resume with: sftmix run --from mix --run-id run-f" in caplog.text
    assert "mix" not in {r["stage"] for r in read_back(rt, "ops.stage_metrics")}

    # `sftmix run --resume` reads the failure from ops.runs: same run id, from the failed stage.
    args = cli.build_parser().parse_args(["run", "--resume"])
    assert cli._run(rt, args) == 0
    assert flaky.calls == 2
    final = runs_of(rt, "run-f")[-1]
    assert final["status"] == "succeeded" and final["stages"] == "mix"
    assert sorted(r["candidate_id"] for r in read_back(rt, "gold.sft_mix")) == sorted(
        r["candidate_id"] for r in read_back(rt, "silver.selected")
    )
    assert ops.last_failed_run(rt.tables) is None


def test_long_stage_logs_progress_while_it_runs(runtime_factory, monkeypatch, caplog):
    def slow(rt: Runtime) -> StageResult:
        rt.progress("waiting for the slow part")
        time.sleep(1.0)
        return StageResult(1, 1)

    monkeypatch.setattr(pipeline, "STAGES", {"slow": slow})
    caplog.set_level(logging.INFO, logger="sftmix")
    rt = runtime_factory()
    rt.progress_seconds = 0.3
    pipeline.run_pipeline(rt)
    beats = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(beats) >= 2 and beats[0].endswith("(waiting for the slow part)"), beats
