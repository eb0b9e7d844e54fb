"""Demo data through ingest -> annotate -> select, checked against the generator's ground truth (issue 4).

Every prompt with a correct, defect-free candidate gets one selected; no incorrect candidate is selected;
every verdict on a candidate with a known truth agrees with it. The code candidates' test counts come only
from the sandbox's judgment files, so their verdicts check the join by candidate id as well.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftmix.jobs.annotate import annotate
from sftmix.jobs.demo.generator import DemoParams, generate_demo_data
from sftmix.jobs.ingest import ingest
from sftmix.jobs.runtime.context import Runtime, StageResult
from sftmix.jobs.select_candidates import select

from .conftest import REPO


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("select-demo")
    generate_demo_data(
        out, DemoParams(reasoning_prompts=60, candidates_per_prompt=4, non_reasoning_records=10)
    )
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    local["extends"] = str(REPO / "conf" / "base.yaml")
    for source in local["sources"] + local["judgments"]:
        source["paths"] = [str(out / p.removeprefix("../demo/")) for p in source["paths"]]
        source["max_bad_fraction"] = 1.0  # a small demo has a high share of planted bad records
    (out / "conf.yaml").write_text(yaml.safe_dump(local))
    return out


def _truth(demo: Path) -> dict[tuple[str, str, int], tuple[bool | None, list[str]]]:
    table = pq.read_table(demo / "ground_truth" / "candidates.parquet").to_pylist()
    return {
        (r["source"], str(r["prompt_id"]), r["sample_index"]): (r["is_correct"], r["defects"]) for r in table
    }


def test_demo_selection_matches_ground_truth(runtime_factory, demo: Path) -> None:
    rt = runtime_factory(demo / "conf.yaml")
    results = {stage.__name__: rt.run_stage(stage.__name__, stage) for stage in (ingest, annotate, select)}
    shares = results["annotate"].details["verification"]["reference_path_shares"]
    assert set(shares) <= {"cheap", "cache", "math_verify"} and abs(sum(shares.values()) - 1) < 0.01
    assert shares["cheap"] > 0.5  # most demo answers are settled without Math-Verify
    truth = _truth(demo)
    key = ("source", "prompt_id", "sample_index")
    candidates = rt.tables.read("silver.candidates").select(*key, "verdict").collect()
    known = [(truth[tuple(r[:3])][0], r["verdict"]) for r in candidates if tuple(r[:3]) in truth]
    judged = [(is_correct, verdict) for is_correct, verdict in known if is_correct is not None]
    assert judged and all((verdict == "correct") == is_correct for is_correct, verdict in judged)

    code = [r for r in candidates if r["source"] == "code_flat"]
    assert code and all(r["verdict"] in ("correct", "incorrect") for r in code)  # every one judged by the sandbox

    selected = [tuple(r) for r in rt.tables.read("silver.selected").select(*key).collect()]
    assert selected and not [s for s in selected if truth.get(s, (None, []))[0] is False]
    clean_correct = {(s, p) for (s, p, _), (ok, defects) in truth.items() if ok and not defects}
    assert clean_correct and clean_correct <= {(s, p) for s, p, _ in selected}
    check_sandbox_judgments(rt, demo, results["ingest"], results["annotate"])


def check_sandbox_judgments(rt: Runtime, demo: Path, landed: StageResult, result: StageResult) -> None:
    """Every sandbox line: quarantined with its file, line and code, or landed with the status the truth says."""
    truth = [r for r in pq.read_table(demo / "ground_truth" / "judgments.parquet").to_pylist()
             if r["judgment"] == "code_sandbox"]
    bad = {(r["file"], r["line"]): r["error"] for r in truth if r["error"]}
    good = {(r["file"], r["line"]): r for r in truth if not r["error"]}
    assert bad and {"applied", "superseded", "unmatched"} == {r["status"] for r in good.values()}

    def relative(path: str) -> str:
        return str(Path(path).relative_to(demo))

    quarantine = {(relative(r["file"]), r["line"]): r["error"]
                  for r in rt.tables.read("bronze.quarantine").where("source = 'code_sandbox'").collect()}
    assert quarantine == bad
    judgments = {(relative(r["file"]), r["line"]): r
                 for r in rt.tables.read("silver.judgments").where("judgment = 'code_sandbox'").collect()}
    assert set(judgments) == set(good)
    for where, expected in good.items():
        got = judgments[where]
        assert (got["status"], got["tests_passed"], got["tests_total"], got["prompt_id"], got["sample_index"]) == (
            expected["status"], expected["tests_passed"], expected["tests_total"], expected["prompt_id"],
            expected["sample_index"]), where
    counts = {status: sum(1 for r in good.values() if r["status"] == status)
              for status in ("applied", "superseded", "unmatched")}
    files = len(list((demo / "judgments").glob("*/*.jsonl")))
    chat = pq.read_table(demo / "ground_truth" / "judgments.parquet").num_rows - len(truth)
    assert landed.details["judgments"] == {"files": files, "records": len(truth) + chat,
                                           "landed": len(good) + chat, "quarantined": len(bad)}
    sandbox = result.details["judgments"]["by_judgment"]["code_sandbox"]
    assert sandbox == counts

    # The judge's replies: one per chat candidate, keyed by candidate id, the score parsed from its JSON.
    scores = {(r["file"], r["line"]): r["judge_score"]
              for r in pq.read_table(demo / "ground_truth" / "judgments.parquet").to_pylist()
              if r["judgment"] == "chat_judge"}
    chat = rt.tables.read("silver.candidates").where("source = 'chat_parquet'").select(
        "candidate_id", "judge_score", "judged_by").collect()
    applied = {r["candidate_id"]: (relative(r["file"]), r["line"]) for r in
               rt.tables.read("silver.judgments").where("judgment = 'chat_judge'").collect()}
    assert chat and len(applied) == len(chat) == len(scores)
    assert all(r["judged_by"] == ["chat_judge"] and r["judge_score"] == scores[applied[r["candidate_id"]]]
               for r in chat)
    assert result.details["judgments"]["by_judgment"]["chat_judge"] == {
        "applied": len(chat), "superseded": 0, "unmatched": 0}
