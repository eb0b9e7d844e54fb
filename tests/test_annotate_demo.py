"""Annotate against the demo data's ground truth: precision and recall per reason, on both engines.

The demo generator plants each defect on purpose and records it per candidate
(``ground_truth/candidates.parquet``); ingest lands the dumps, annotate
decides, and every planted defect must come back as its reason (and nothing
else may). Verification is another stage's test: only annotate's transforms
run here.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftmix.jobs.ingest import ingest
from sftmix.transforms.annotate import annotate_candidates, decide_annotate
from sftmix.transforms.raw_records import candidate_id

from .conftest import REPO

generator = pytest.importorskip("sftmix.jobs.demo.generator")

SCORED = ("mixed_language", "code_block", "long_paragraph", "repetition", "truncated")
# Below these the stage is broken; measured on this data: 1.0 for each (see README, annotate).
MIN_PRECISION = {
    "mixed_language": 0.95,
    "code_block": 0.9,
    "long_paragraph": 0.9,
    "repetition": 0.9,
    "truncated": 0.9,
}
MIN_RECALL = {
    "mixed_language": 0.95,
    "code_block": 0.9,
    "long_paragraph": 0.9,
    "repetition": 0.9,
    "truncated": 0.9,
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("annotate-demo")
    params = generator.DemoParams(
        reasoning_prompts=150, candidates_per_prompt=4, non_reasoning_records=60, compress=False, seed=3
    )
    generator.generate_demo_data(out, params)
    return out


def demo_conf(demo: Path, where: Path) -> Path:
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    local["extends"] = str(REPO / "conf" / "base.yaml")
    for source in local["sources"]:
        source["paths"] = [str(demo / p.removeprefix("../demo/")) for p in source["paths"]]
        source["max_bad_fraction"] = 0.9  # a small demo plants the same few bad records as a big one
    path = where / "demo.yaml"
    path.write_text(yaml.safe_dump(local))
    return path


def score(
    predicted: dict[str, set[str]], truth: dict[str, set[str]], reason: str
) -> tuple[float, float, int]:
    tp = sum(1 for k, t in truth.items() if reason in t and reason in predicted[k])
    fp = sum(1 for k, t in truth.items() if reason not in t and reason in predicted[k])
    fn = sum(1 for k, t in truth.items() if reason in t and reason not in predicted[k])
    return tp / max(1, tp + fp), tp / max(1, tp + fn), tp + fn


def test_annotate_recovers_planted_defects(runtime_factory, demo_dir: Path, tmp_path: Path) -> None:
    rt = runtime_factory(conf=demo_conf(demo_dir, tmp_path))
    ingest(rt)
    params = rt.config.annotate
    decided = (
        rt.tables.read("bronze.generations")
        .transform(annotate_candidates, params)
        .transform(decide_annotate, params)
    )
    rows = decided.select("candidate_id", "source", "prompt_id", "reject_reasons").collect()
    predicted = {r.candidate_id: set(r.reject_reasons) for r in rows}
    by_prompt = {(r.source, r.prompt_id): r.candidate_id for r in rows}
    truth: dict[str, set[str]] = {}
    for record in pq.read_table(demo_dir / "ground_truth" / "candidates.parquet").to_pylist():
        key = candidate_id(record["source"], record["prompt_id"], str(record["sample_index"]))
        if key not in predicted:  # one candidate per prompt, keyed by file and line at ingest (chat)
            key = by_prompt.get((record["source"], record["prompt_id"]), key)
        if key in predicted:
            truth[key] = set(record["defects"])
    assert len(truth) >= 0.95 * len(predicted) - 30  # the planted bad records are quarantined, not scored
    figures = {reason: score(predicted, truth, reason) for reason in SCORED}
    for reason, (precision, recall, positives) in figures.items():
        assert positives >= 5, figures
        assert precision >= MIN_PRECISION[reason], (reason, figures)
        assert recall >= MIN_RECALL[reason], (reason, figures)
