"""Incremental dedup (issue 12, part 1): stored fingerprints, new prompts against all earlier ones.

One lake gets batch 1, then the final inputs (batch 1 with one prompt edited and one removed, plus
batch 2, whose prompts copy or nearly copy batch-1 prompts). A second, fresh lake gets the final
inputs once with ``--full``. The result tables must agree row for row, and the incremental run
must have fingerprinted only the new and edited prompts. Then a changed shingle size on the first
lake must fingerprint everything again.

Classic Spark spends about a minute per dedup stage run on this shared 2-core machine (Sail: ~2 s),
so the test runs the stage three times and the config change through the fingerprint step only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sftmix.jobs.dedup import (
    FINGERPRINTS,
    Scratch,
    benchmark_probe,
    benchmark_rows,
    dedup,
    read_prompts,
    update_fingerprints,
)
from sftmix.jobs.runtime.context import Runtime
from sftmix.transforms.decontaminate import DecontaminateParams, NgramProbe
from sftmix.transforms.dedup import DedupParams, fingerprint_config

from .conftest import read_back
from .test_dedup import BASE, BENCH_Q, OTHER, PROMPTS_SCHEMA, _prompt

RESULTS = ("silver.prompt_status", "silver.contamination", "ops.contamination_report", "gold.rl_prompts")

THIRD = (
    "Two trains leave the same station at noon and travel in opposite directions along a straight track "
    "one at sixty miles per hour and the other at forty miles per hour how far apart are they at three"
)
EDIT_OLD = "Name three rivers that flow through more than four countries and the seas they end in"
EDIT_NEW = "Name three rivers that flow through more than five countries and the seas they end in"
GONE = "Explain why the sky looks blue at midday and red at sunset in a few plain sentences"
FRESH = "Describe how a bicycle gear system trades pedalling force for speed on a steep hill climb"

BATCH_1 = [
    _prompt("a", "base", BASE, 4, "17"),
    _prompt("a", "other", OTHER, 2),
    _prompt("a", "third", THIRD, 1, "100"),
    _prompt("a", "leak", "Solve the following problem step by step. " + BENCH_Q, 1, "128"),
    _prompt("a", "edit", EDIT_OLD, 1),
    _prompt("a", "gone", GONE, 1),
]
BATCH_2 = [
    _prompt("b", "base-copy", BASE.upper() + "!!", 1, "17"),  # exact copy of a/base, fewer correct
    _prompt("b", "other-near", OTHER + " tonight", 0),  # near copy of a/other (one shingle more)
    _prompt("b", "third-better", THIRD.replace("at three", "at four"), 5, "200"),  # near copy, more correct
    _prompt("b", "leak", "Please answer: " + BENCH_Q.replace("1000", "1,000"), 1),
    _prompt("b", "fresh", FRESH, 3, "x"),
]
FINAL = [
    _prompt("a", "edit", EDIT_NEW, 1) if row[1] == "edit" else row for row in BATCH_1 if row[1] != "gone"
] + BATCH_2


def _write_prompts(rt: Runtime, rows: list[tuple]) -> None:
    rt.tables.write(rt.spark.createDataFrame(rows, PROMPTS_SCHEMA), "silver.prompts")


def _results(rt: Runtime) -> dict[str, list[dict[str, Any]]]:
    return {name: read_back(rt, name) for name in (*RESULTS, FINGERPRINTS)}


def test_incremental_dedup_matches_full_rebuild(runtime_factory, tmp_path: Path) -> None:  # noqa: ANN001
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "q1", "question": BENCH_Q, "answer": "128"}) + "\n")
    benches = [{"name": "demo", "path": str(bench), "question_field": "question", "answer_field": "answer"}]

    rt = runtime_factory(decontaminate__benchmarks=benches)
    _write_prompts(rt, BATCH_1)
    first = dedup(rt).details
    assert (first["fingerprint_mode"], first["fingerprinted"], first["fingerprints_reused"]) == ("full", 6, 0)
    assert first["refingerprint_reason"] == f"no {FINGERPRINTS} table"

    _write_prompts(rt, FINAL)
    second = dedup(rt).details
    # (c) Only batch 2 and the edited prompt went through MinHash; the removed prompt's row is gone.
    assert second["fingerprint_mode"] == "incremental" and second["refingerprint_reason"] is None
    assert (second["fingerprinted"], second["fingerprints_reused"], second["fingerprints_dropped"]) == (6, 4, 1)

    # (a) New prompts meet the old ones: exact, near, and a better new copy that displaces an old one.
    incremental = _results(rt)
    status = {(r["source"], r["prompt_id"]): r for r in incremental["silver.prompt_status"]}
    assert {k: (r["dedup_status"], r["duplicate_of"]) for k, r in status.items()} == {
        ("a", "base"): ("kept", None),
        ("a", "other"): ("kept", None),
        ("a", "third"): ("near_duplicate", "b/third-better"),
        ("a", "leak"): ("contaminated", None),
        ("a", "edit"): ("kept", None),
        ("b", "base-copy"): ("duplicate_prompt", "a/base"),
        ("b", "other-near"): ("near_duplicate", "a/other"),
        ("b", "third-better"): ("kept", None),
        ("b", "leak"): ("contaminated", None),
        ("b", "fresh"): ("kept", None),
    }
    assert status[("b", "leak")]["contaminated_by"] == "demo/q1"
    assert {(r["source"], r["prompt_id"]) for r in incremental[FINGERPRINTS]} == set(status)

    # (b) A --full run on a fresh lake with the same final inputs writes the same rows.
    full_rt = runtime_factory(storage__root=str(tmp_path / "full-lake"), decontaminate__benchmarks=benches)
    full_rt.full_rebuild = True
    _write_prompts(full_rt, FINAL)
    full = dedup(full_rt).details
    assert (full["fingerprint_mode"], full["refingerprint_reason"], full["fingerprinted"]) == ("full", "--full", 10)
    rebuilt = _results(full_rt)
    for name in (*RESULTS, FINGERPRINTS):
        assert incremental[name] == rebuilt[name], name

    # (d) Another shingle size changes every fingerprint: all prompts again, on the incremental lake.
    # Only the fingerprint step runs (a whole stage run costs classic Spark ~a minute here).
    changed = runtime_factory(decontaminate__benchmarks=benches, dedup__ngram=4)
    third: dict[str, Any] = {}
    scratch = Scratch(changed, "test-dedup")
    try:
        probe = benchmark_probe(changed, benchmark_rows(changed))
        update_fingerprints(changed, read_prompts(changed), probe, scratch, third)
    finally:
        scratch.drop()
    assert third["fingerprint_mode"] == "full" and third["fingerprinted"] == 10
    assert third["refingerprint_reason"].startswith("fingerprint config changed")
    configs = {r["fingerprint_config"] for r in read_back(changed, FINGERPRINTS)}
    assert configs == {third["fingerprint_config"]} != {second["fingerprint_config"]}


def test_fingerprint_config_tracks_what_fingerprints_depend_on() -> None:
    params, decon = DedupParams(), DecontaminateParams()

    def config(params: DedupParams = params, seed: int = 1, questions: tuple[str, ...] = (BENCH_Q,)) -> str:
        probe = NgramProbe.build(list(questions), decon, params.max_chars) if questions else None
        return fingerprint_config(params, seed, probe)

    base = config()
    assert base == config()
    changed = [
        config(seed=2),
        config(DedupParams(ngram=4)),
        config(DedupParams(threshold=0.7)),  # other LSH bands x rows
        config(DedupParams(max_shingles=100)),
        config(questions=(BENCH_Q, "What is the sum of the first ten odd numbers squared and halved")),
        config(questions=()),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    # Settings applied after fingerprinting reuse the stored fingerprints.
    assert config(DedupParams(max_bucket_size=8, verify_jaccard=False, exact=False, batch_rows=10)) == base
