"""Ingest of real public dumps (../shared/realdata): skipped where that folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftmix.jobs.ingest import ingest
from sftmix.jobs.raw_files import iter_lines

from .conftest import REPO, SHARED, read_back

REALDATA = SHARED / "realdata"
pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is not on this machine")


def test_real_dumps_land_with_their_quirks(runtime_factory) -> None:
    rt = runtime_factory(REPO / "conf" / "realdata.yaml")
    result = ingest(rt)
    rows = read_back(rt, "bronze.generations")
    quarantine = read_back(rt, "bronze.quarantine")
    assert quarantine == []
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["source"]] = counts.get(row["source"], 0) + 1
    # Sky-T1: one candidate per problem per model file; Qwen: 8 per problem; NeMo: 3 files x 50.
    assert counts == {
        "sky_t1_aime24": 6 * 30, "sky_t1_amc23": 4 * 40, "sky_t1_math500": 2 * 500, "sky_t1_minerva": 272,
        "qwen_math_cot": 8 * 100, "nemo_skills_rs": 150, "humaneval": 164, "self_instruct": 252,
    }
    assert result.rows_out == len(rows) and len({r["candidate_id"] for r in rows}) == len(rows)
    amc = next(r for r in rows if r["source"] == "sky_t1_amc23" and r["prompt_id"] == "0")
    assert amc["reference_answer"] == "27.0"  # a JSON float, kept as its text
    assert {r["external_verdict"] for r in rows if r["source"] == "qwen_math_cot"} <= {"correct", "incorrect"}
    assert any(r["external_verdict"] == "incorrect" for r in rows if r["source"] == "nemo_skills_rs")
    assert all(r["prompt_id"].startswith("HumanEval/") for r in rows if r["source"] == "humaneval")


def test_u2028_inside_strings_does_not_split_records() -> None:
    path = REALDATA / "lmarena_arena-hard-auto" / "arena-hard-v2.0_question.jsonl"
    text = path.read_bytes()
    assert "\u2028".encode() in text
    lines = list(iter_lines(str(path), 1 << 24))
    assert len(lines) == text.count(b"\n")
    assert all(isinstance(json.loads(data), dict) for _, data, _ in lines)
    assert Path(path).stat().st_size == sum(len(d) for _, d, _ in lines)
