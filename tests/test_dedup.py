"""Stage ``dedup`` on both engines: exact, near, contamination, components, gold.rl_prompts.

One stage run per engine covers two inputs at once (classic Spark pays seconds per job): hand-made
prompts with one case each, and the demo data's prompts scored against its ground truth (issue 5,
item 4). silver.prompts is built straight from ``ground_truth/prompts.parquet``, so this measures
dedup alone. Near-duplicate quality is scored on pairs: two prompts are predicted together when
they share ``cluster_id``, truly together when the ground truth links them (``exact_dup_of``, or
``near_dup_of`` at Jaccard >= 0.8).
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from sftmix.jobs.dedup import Scratch, dedup, stored_response_hashes
from sftmix.transforms import candidate_signals, repetition
from sftmix.transforms.connected_components import connected_components
from sftmix.transforms.dedup import candidate_pairs, duplicate_responses

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


PROMPTS_SCHEMA = (
    "source string, prompt_id string, kind string, domain string, language string, system string, "
    "prompt string, messages array<struct<role: string, content: string>>, "
    "reference_answer string, n_candidates int, n_clean int, n_verified int, n_correct int, "
    "pass_rate double, n_eligible int, n_selected int, no_selection_reason string"
)
SELECTED_SCHEMA = "source string, prompt_id string, candidate_id string, completion string, answer string"

BASE = (
    "A farmer has seventeen sheep in a green meadow beside the old stone bridge and every morning "
    "he counts them twice before breakfast because the fence near the river is broken"
)
NEAR = BASE.replace("is broken", "is damaged")
OTHER = (
    "Write a short poem about the lighthouse keeper who lights the lamp every evening and watches the "
    "ships sail past the rocky northern coast"
)
BENCH_Q = (
    "Let x be the number of integers between 1 and 1000 inclusive that are divisible by 7 but not by 11. "
    "Find x."
)
BENCH_SHORT = "What is 17 times 23?"


def _prompt(source: str, pid: str, text: str | None, n_correct: int, answer: str | None = None) -> tuple:
    messages = [{"role": "user", "content": text}]
    return (source, pid, "reasoning", "math", "en", None, text, messages, answer, 8, 8, 8, n_correct,
            n_correct / 8, 1, 1, None)


def _write_inputs(rt, tmp_path: Path, extra: list[tuple]) -> None:  # noqa: ANN001 - Runtime
    prompts = extra + [
        _prompt("a", "base", BASE, 2, "17"),
        _prompt("b", "base-copy", BASE.upper() + "!!", 3, "17"),  # exact copy with more correct: kept
        _prompt("a", "near", NEAR, 4, "17"),  # near copy with the most correct: it represents the cluster
        _prompt("a", "other", OTHER, 0),
        _prompt("c", "leak-prefix", "Solve the following problem step by step. " + BENCH_Q, 1, "128"),
        _prompt("c", "leak-numbers", BENCH_Q.replace("1000", "1,000"), 1),
        _prompt("c", "leak-short", "what is 17 times 23", 1),
        _prompt("c", "clean-math", "Let y be the number of primes below 50. Find y.", 1, "15"),
        _prompt("d", "empty", "", 0),
    ]
    rt.tables.write(rt.spark.createDataFrame(prompts, PROMPTS_SCHEMA), "silver.prompts")
    selected = [
        ("a", "other", "c1", "The  answer is 4.", "4"),
        ("c", "clean-math", "c2", "the answer is 4.", "4"),  # same response under another prompt
        ("a", "near", "c3", "Seventeen.", "17"),
    ]
    rt.tables.write(rt.spark.createDataFrame(selected, SELECTED_SCHEMA), "silver.selected")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        "\n".join(json.dumps(r) for r in [
            {"id": "q1", "question": BENCH_Q, "answer": "128"},
            {"id": "q2", "question": BENCH_SHORT, "answer": "391"},
            {"id": "q3", "question": "An unrelated benchmark question about geometry of circles and chords."},
        ]) + "\n"
    )


def test_dedup_stage(runtime_factory, tmp_path: Path, demo_dir: Path) -> None:  # noqa: ANN001
    truth = pq.read_table(demo_dir / "ground_truth" / "prompts.parquet").to_pylist()
    benches = [
        {"name": "demo", "path": str(tmp_path / "bench.jsonl"), "question_field": "question", "answer_field": "answer"},
        {"name": "demo_bench", "path": str(demo_dir / "benchmarks" / "demo_bench.jsonl"),
         "question_field": "question", "answer_field": "answer"},
    ]
    rt = runtime_factory(decontaminate__benchmarks=benches)
    demo_rows = [
        (t["source"], t["prompt_id"], t["kind"], t["domain"], "en", None, t["prompt"], None, t["reference_answer"],
         1, 1, 1, 1, 1.0, 1, 1, None)
        for t in truth
    ]
    _write_inputs(rt, tmp_path, demo_rows)
    result = dedup(rt)
    _check_demo(rt, truth)

    status = {(r["source"], r["prompt_id"]): r for r in read_back(rt, "silver.prompt_status")}
    got = {k: r["dedup_status"] for k, r in status.items() if k[0] in {"a", "b", "c", "d"}}
    assert got == {
        ("a", "base"): "duplicate_prompt",
        ("b", "base-copy"): "near_duplicate",
        ("a", "near"): "kept",
        ("a", "other"): "kept",
        ("c", "leak-prefix"): "contaminated",
        ("c", "leak-numbers"): "contaminated",
        ("c", "leak-short"): "contaminated",
        ("c", "clean-math"): "kept",
        ("d", "empty"): "kept",
    }
    assert status[("a", "base")]["duplicate_of"] == "a/near"
    assert status[("b", "base-copy")]["duplicate_of"] == "a/near"
    assert status[("a", "base")]["norm_hash"] == status[("b", "base-copy")]["norm_hash"]
    assert len({status[k]["cluster_id"] for k in [("a", "base"), ("b", "base-copy"), ("a", "near")]}) == 1
    assert status[("c", "leak-prefix")]["contaminated_by"] == "demo/q1"
    assert status[("c", "leak-short")]["contamination_match"] == "exact"
    assert status[("c", "leak-prefix")]["contamination_ngram"].count(" ") == 7  # an 8-gram, kept for audit
    assert status[("c", "clean-math")]["duplicate_response_of"] == "a/other" or (
        status[("a", "other")]["duplicate_response_of"] == "c/clean-math"
    )
    assert set(result.rejected) == {"duplicate_prompt", "near_duplicate", "contaminated"}
    assert result.details["cc_rounds"] >= 1
    # Where the stage's time went, in order (stage metrics).
    assert list(result.details["phases"]) == [
        "fingerprints_s", "contamination_s", "exact_s", "near_s", "status_s", "figures_and_rl_s",
    ]
    assert all(seconds >= 0 for seconds in result.details["phases"].values())

    audit = [r for r in read_back(rt, "silver.contamination") if r["benchmark"] == "demo"]
    assert {(r["prompt_id"], r["item_id"], r["match"]) for r in audit} == {
        ("leak-prefix", "q1", "ngram"), ("leak-numbers", "q1", "exact"), ("leak-short", "q2", "exact"),
    }
    assert [r["answer_match"] for r in audit if r["prompt_id"] == "leak-prefix"] == [True]
    report = {r["benchmark"]: r for r in read_back(rt, "ops.contamination_report")}
    assert report["demo"]["items"] == 3 and report["demo"]["items_matched"] == 2
    assert report["demo"]["prompts_matched"] == 3

    # Before dedup, select's rule admits base, base-copy, near, leak-prefix and clean-math.
    rl = {(r["source"], r["prompt_id"]) for r in read_back(rt, "gold.rl_prompts") if r["source"] in {"a", "b", "c", "d"}}
    assert rl == {("a", "near"), ("c", "clean-math")}
    assert not list((tmp_path / "lake" / "_scratch").glob("*"))  # scratch tables removed


def test_connected_components_and_hot_buckets(runtime_factory) -> None:  # noqa: ANN001
    rt = runtime_factory()
    spark = rt.spark
    # A chain 9-8-...-1 (long diameter), a star around 20, a pair, and a repeated edge.
    edges = [(i + 1, i) for i in range(1, 9)] + [(20, 21), (20, 22), (23, 20), (30, 31), (31, 30)]
    frame = spark.createDataFrame(edges, "a long, b long")
    scratch = Scratch(rt, "cc-test")
    try:
        result = connected_components(frame, scratch)
        labels = {r["node"]: r["component"] for r in result.labels.collect()}
    finally:
        scratch.drop()
    assert labels == {**{i: 1 for i in range(1, 10)}, 20: 20, 21: 20, 22: 20, 23: 20, 30: 30, 31: 30}

    # One hot bucket of 5 members over max_bucket_size 3: a star, not 10 pairs; a small bucket: all pairs.
    fp = spark.createDataFrame(
        [(n, [7]) for n in range(5)] + [(10, [8]), (11, [8]), (12, [8])], "node long, lsh_keys array<long>"
    )
    pairs = {(r["a"], r["b"]) for r in candidate_pairs(fp, 3).collect()}
    assert pairs == {(0, 1), (0, 2), (0, 3), (0, 4), (10, 11), (10, 12), (11, 12)}
    assert candidate_pairs(fp.where(F.col("node") == 0), 3).count() == 0


def test_duplicate_responses_ignore_whitespace_and_case(runtime_factory) -> None:  # noqa: ANN001
    """Unicode whitespace (a no-break space, an ideographic space) counts as none, on both engines,
    whether the hashes come from annotate's signal pass (``response_hash``) or from the completions;
    the job uses the stored ones only when no measured row lacks one."""
    rt = runtime_factory()
    completions = [
        ("p1", "The  answer is 4."),
        ("p2", "the answer\u00a0is\n4.\u3000"),
        ("p3", "The answer is 5."),
        ("p4", "   "),  # blank: never a duplicate
        ("p5", ""),
    ]
    # What annotate stores for a completion without a think block: no reasoning, the text as the answer.
    stored = [
        ("s", pid, text, candidate_signals.response_hash(0, repetition.measure(text, 10).content_hash), None)
        for pid, text in completions
    ]
    assert [row[3] for row in stored][3:] == [0, 0]
    schema = "source string, prompt_id string, completion string, response_hash bigint, annotate_error string"
    selected = rt.spark.createDataFrame(stored, schema)
    for stored_hashes in (True, False):
        found = duplicate_responses(selected, 1234, stored_hashes).collect()
        rows = {r["prompt_id"]: r["duplicate_response_of"] for r in found}
        assert len(rows) == 1 and rows.popitem()[1] in ("s/p1", "s/p2"), stored_hashes

    assert stored_response_hashes(selected)
    assert not stored_response_hashes(selected.drop("response_hash"))
    older = rt.spark.createDataFrame([*stored, ("s", "p6", "old row", None, None)], schema)
    assert not stored_response_hashes(older)
    failed = rt.spark.createDataFrame([*stored, ("s", "p7", "x", None, "TimeoutError")], schema)
    assert stored_response_hashes(failed)  # a row annotate could not measure has nothing to compare


def _check_demo(rt, truth: list[dict[str, Any]]) -> None:  # noqa: ANN001 - Runtime
    status = {f"{r['source']}/{r['prompt_id']}": r for r in read_back(rt, "silver.prompt_status")}
    by_key = {f"{t['source']}/{t['prompt_id']}": t for t in truth}
    keys = sorted(by_key)
    status = {k: status[k] for k in keys}

    # Contamination: every injected prompt caught with its benchmark item; a flag on any other
    # prompt is justified only when it copies an injected one.
    injected = {k: t["contaminated_by"] for k, t in by_key.items() if t["contaminated_by"]}
    assert injected, "the demo data should inject contaminated prompts"
    flagged = {k: r["contaminated_by"] for k, r in status.items() if r["dedup_status"] == "contaminated"}
    for key, item in injected.items():
        assert flagged.get(key) == f"demo_bench/{item}", (key, by_key[key]["prompt"][:120])
    for key in set(flagged) - set(injected):
        origin = by_key[key]["exact_dup_of"] or by_key[key]["near_dup_of"]
        assert origin in injected, f"clean prompt flagged contaminated: {key}: {by_key[key]['prompt'][:120]}"

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
