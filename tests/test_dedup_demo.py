"""Issue 5, item 4: the dedup stage against the demo data's ground truth.

silver.prompts is built straight from ``ground_truth/prompts.parquet`` (the
stage only needs keys, text and counts), so this measures dedup alone, not
the stages before it. Near-duplicate quality is scored on pairs: two prompts
are predicted together when they share ``cluster_id``, truly together when the
ground truth links them (``exact_dup_of``, or ``near_dup_of`` at Jaccard >= 0.8).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sftmix.jobs.dedup import dedup

from .conftest import read_back

DEMO_PROMPTS = 600


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generator = pytest.importorskip("sftmix.jobs.demo.generator")
    out = tmp_path_factory.mktemp("demo")
    generator.generate_demo_data(
        out, generator.DemoParams(reasoning_prompts=DEMO_PROMPTS, non_reasoning_records=300, candidates_per_prompt=1)
    )
    return out


def _groups(pairs: list[tuple[str, str]], keys: list[str]) -> dict[str, str]:
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in pairs:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    return {k: find(k) for k in keys}


def _pair_set(labels: dict[str, Any]) -> set[tuple[str, str]]:
    members: dict[Any, list[str]] = defaultdict(list)
    for key, label in labels.items():
        members[label].append(key)
    return {tuple(sorted(p)) for group in members.values() for p in combinations(group, 2)}


def test_dedup_on_demo_ground_truth(runtime_factory, demo_dir: Path) -> None:  # noqa: ANN001
    truth = pq.read_table(demo_dir / "ground_truth" / "prompts.parquet").to_pylist()
    bench = {"name": "demo_bench", "path": str(demo_dir / "benchmarks" / "demo_bench.jsonl"),
             "question_field": "question", "answer_field": "answer"}
    rt = runtime_factory(decontaminate__benchmarks=[bench])
    rows = [
        (t["source"], t["prompt_id"], t["kind"], t["domain"], "en", t["prompt"], t["reference_answer"],
         1, 1, 1, 1, 1.0, 1, None)
        for t in truth
    ]
    from .test_dedup import PROMPTS_SCHEMA

    rt.tables.write(rt.spark.createDataFrame(rows, PROMPTS_SCHEMA), "silver.prompts")
    dedup(rt)
    status = {f"{r['source']}/{r['prompt_id']}": r for r in read_back(rt, "silver.prompt_status")}
    keys = sorted(status)
    by_key = {f"{t['source']}/{t['prompt_id']}": t for t in truth}

    # Contamination: every injected prompt caught with its benchmark item; a flag on any other
    # prompt is justified only when it copies an injected one.
    injected = {k: t["contaminated_by"] for k, t in by_key.items() if t["contaminated_by"]}
    assert injected, "the demo data should inject contaminated prompts"
    flagged = {k: r["contaminated_by"] for k, r in status.items() if r["dedup_status"] == "contaminated"}
    for key, item in injected.items():
        assert flagged.get(key) == f"demo_bench/{item}", (key, by_key[key]["prompt"][:120])
    for key in set(flagged) - set(injected):
        origin = by_key[key]["exact_dup_of"] or by_key[key]["near_dup_of"]
        audit = [r for r in read_back(rt, "silver.contamination") if f"{r['source']}/{r['prompt_id']}" == key]
        assert origin in injected, f"{audit} clean prompt flagged contaminated: {key}: {by_key[key]['prompt'][:120]}"

    # Exact and near duplicates, scored as pairs among the prompts that are not contaminated.
    clean = [k for k in keys if k not in flagged]
    links = [(k, t["exact_dup_of"]) for k, t in by_key.items() if t["exact_dup_of"]]
    near_links = [
        (k, t["near_dup_of"]) for k, t in by_key.items() if t["near_dup_of"] and t["near_dup_jaccard"] >= 0.8
    ]
    truth_pairs = _pair_set(_groups(links + near_links, clean))
    predicted = _pair_set({k: status[k]["cluster_id"] for k in clean})
    hit = truth_pairs & predicted
    assert near_links and truth_pairs
    recall, precision = len(hit) / len(truth_pairs), len(hit) / max(1, len(predicted))
    print(f"demo dedup: {len(truth_pairs)} true pairs, recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.9 and precision >= 0.95
    # Exact copies in particular: each one removed as duplicate_prompt, pointing at a kept prompt.
    for key, original in links:
        if key in flagged or original in flagged:
            continue
        assert status[key]["cluster_id"] == status[original]["cluster_id"]
        survivor = status[key]["duplicate_of"] or key
        assert status[survivor]["dedup_status"] == "kept"
