"""Issue 6, item 6: on the demo data, the mix of conf/local.yaml yields exactly its total, stratum by stratum.

The silver tables are built straight from the demo's ground truth (defects become reject reasons, clean
candidates are selected, the planted duplicates and contaminated prompts get their dedup status), so
this measures the mix alone on the demo's real strata sizes, not the stages before it.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sftmix.jobs.mix import mix
from sftmix.jobs.runtime.config import load_config
from sftmix.transforms.raw_records import candidate_id

from .conftest import REPO
from .test_mix import CANDIDATE_SCHEMA, SELECTED_SCHEMA, STATUS_SCHEMA, _tuples

TOTAL = 240  # of 274 eligible rows: math and code run short


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generator = pytest.importorskip("sftmix.jobs.demo.generator")
    out = tmp_path_factory.mktemp("demo")
    generator.generate_demo_data(
        out, generator.DemoParams(reasoning_prompts=160, non_reasoning_records=120, candidates_per_prompt=2)
    )
    return out


def silver_from_truth(demo_dir: Path) -> tuple[list[dict], list[dict], list[tuple]]:
    prompts = {
        (p["source"], p["prompt_id"]): p
        for p in pq.read_table(demo_dir / "ground_truth" / "prompts.parquet").to_pylist()
    }
    candidates = []
    for c in pq.read_table(demo_dir / "ground_truth" / "candidates.parquet").to_pylist():
        prompt = prompts[(c["source"], c["prompt_id"])]
        candidates.append(
            {
                "candidate_id": candidate_id(c["source"], c["prompt_id"], str(c["sample_index"])),
                "prompt_id": c["prompt_id"],
                "source": c["source"],
                "kind": c["kind"],
                "domain": c["domain"],
                "system": None,
                "prompt": prompt["prompt"],
                "messages": None,
                "reasoning": "r" * min(c["reasoning_chars"] or 0, 200) or None,
                "answer": "The answer.",
                "reasoning_chars": c["reasoning_chars"],
                "answer_chars": 11,
                "paragraph_chars": [c["reasoning_chars"]] if c["reasoning_chars"] else [],
                "verdict": "correct",
                "reject_reasons": list(c["defects"] or []),
            }
        )
    selected = [{**c, "select_rank": 1} for c in candidates if not c["reject_reasons"]]
    status = [
        (
            p["source"],
            p["prompt_id"],
            "contaminated"
            if p["contaminated_by"]
            else "duplicate_prompt"
            if p["exact_dup_of"]
            else "near_duplicate"
            if p["near_dup_of"]
            else "kept",
            None,
        )
        for p in prompts.values()
    ]
    return candidates, selected, status


def test_local_mix_on_demo_data_gives_the_exact_total_per_stratum(runtime_factory, demo_dir: Path) -> None:
    local = load_config(REPO / "conf" / "local.yaml").mix
    assert local.shortfall == "redistribute" and local.total < 10_000  # the demo must be able to fill it
    rt = runtime_factory(REPO / "conf" / "local.yaml", mix__total=TOTAL, cold_start__size=0)
    candidates, selected, status = silver_from_truth(demo_dir)
    spark = rt.spark
    rt.tables.write(
        spark.createDataFrame(_tuples(candidates, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA), "silver.candidates"
    )
    rt.tables.write(
        spark.createDataFrame(_tuples(selected, SELECTED_SCHEMA), SELECTED_SCHEMA), "silver.selected"
    )
    rt.tables.write(spark.createDataFrame(status, STATUS_SCHEMA), "silver.prompt_status")
    result = mix(rt)

    plan = [r.asDict() for r in rt.tables.read("ops.mix_plan").collect() if r["dataset"] == "sft_mix"]
    asked = {(p["kind"], p["domain"]): p["asked"] for p in plan}
    assert sum(asked.values()) == TOTAL
    assert sum(n for (kind, _), n in asked.items() if kind == "reasoning") == TOTAL * 3 // 4
    counts: dict[tuple[str, str], int] = {}
    for row in rt.tables.read("gold.sft_mix").select("kind", "domain").collect():
        counts[(row["kind"], row["domain"])] = counts.get((row["kind"], row["domain"]), 0) + 1
    assert sum(counts.values()) == TOTAL == result.rows_out
    assert counts == {(p["kind"], p["domain"]): p["taken"] for p in plan if p["taken"]}
    # The demo's strata are uneven: some run short, and the plan shows what moved where.
    assert any(p["short"] for p in plan) and all(p["taken"] <= p["available"] for p in plan)
    assert result.details["in_mix_candidates"] == TOTAL
    assert list(result.details["phases"]) == [
        "sft_mix_s", "cold_start_s", "decisions_s", "check_s", "plan_and_history_s",
    ]
