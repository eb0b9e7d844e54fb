"""Ingest against the demo generator's ground truth: every bad record in quarantine with its code."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftmix.jobs.demo.generator import DemoParams, generate_demo_data
from sftmix.jobs.ingest import ingest
from sftmix.transforms.raw_records import candidate_id

from .conftest import REPO, read_back


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_data(out, DemoParams(reasoning_prompts=120, candidates_per_prompt=3, non_reasoning_records=40))
    return out


def demo_conf(demo: Path, tmp: Path) -> Path:
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    local["extends"] = str(REPO / "conf" / "base.yaml")
    for source in local["sources"]:
        source["paths"] = [str(demo / p.removeprefix("../demo/")) for p in source["paths"]]
        source["max_bad_fraction"] = 0.5  # tiny demo: the generator plants at least one bad record of each kind
    path = tmp / "conf.yaml"
    path.write_text(yaml.safe_dump(local))
    return path


def test_demo_ground_truth_matches_bronze(runtime_factory, demo_dir: Path, tmp_path: Path) -> None:
    rt = runtime_factory(demo_conf(demo_dir, tmp_path))
    result = ingest(rt)

    quarantine = {(os.path.relpath(r["file"], demo_dir), r["line"]): r["error"]
                  for r in read_back(rt, "bronze.quarantine")}
    expected_bad = {(r["file"], r["line"]): r["error"]
                    for r in pq.read_table(demo_dir / "ground_truth" / "bad_records.parquet").to_pylist()}
    assert quarantine == expected_bad
    assert {"invalid_json", "invalid_utf8", "missing_field", "wrong_type", "record_too_large"} <= set(
        quarantine.values()
    )

    truth = pq.read_table(demo_dir / "ground_truth" / "candidates.parquet").to_pylist()
    generations = read_back(rt, "bronze.generations")
    # Sources that map a sample index are keyed by it; the Parquet chat rows (no index) by file and row.
    indexed = {candidate_id(r["source"], r["prompt_id"], str(r["sample_index"]))
               for r in truth if r["source"] != "chat_parquet"}
    assert {r["candidate_id"] for r in generations if r["source"] != "chat_parquet"} == indexed
    chat = sorted(r["prompt_id"] for r in truth if r["source"] == "chat_parquet")
    assert sorted(r["prompt_id"] for r in generations if r["source"] == "chat_parquet") == chat
    assert len({r["candidate_id"] for r in generations}) == len(generations)
    assert result.rows_out == len(generations) == len(truth)
    assert result.details["quarantined"] == len(expected_bad)
