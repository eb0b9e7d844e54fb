"""The demo's ``code_tests`` source through ingest -> annotate: sandbox verdicts match the ground truth
(both engines), ``code_verify.mode: external`` runs nothing, a missing bwrap stops the stage, and the
``tests`` field mapping and the ``code_verify`` config section are validated (issue 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from sftmix.jobs.annotate import annotate
from sftmix.jobs.demo.code_tests import SOURCE, prompts_for
from sftmix.jobs.demo.generator import DemoParams, generate_demo_data
from sftmix.jobs.ingest import ingest
from sftmix.jobs.runtime.config import ConfigError, load_config
from sftmix.transforms.raw_records import RecordError, SourceShape, grouped_candidates
from sftmix.transforms.sandbox import SandboxUnavailable, sandbox_problem

from .conftest import REPO

needs_sandbox = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox: {sandbox_problem()}")
# The smallest demo: 6 code_tests prompts x 4 candidates, one planted timeout.
PARAMS = DemoParams(reasoning_prompts=60, candidates_per_prompt=4, non_reasoning_records=10, seed=13)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("code-tests-demo")
    generate_demo_data(out, PARAMS)
    return out


def demo_conf(demo: Path, where: Path, **code_verify: Any) -> Path:
    """conf/local.yaml reading only the code_tests source of the demo (the sandbox runs only there)."""
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    local["extends"] = str(REPO / "conf" / "base.yaml")
    local["sources"] = [s for s in local["sources"] if s["name"] == SOURCE]
    local["judgments"] = []
    for source in local["sources"]:
        source["paths"] = [str(demo / p.removeprefix("../demo/")) for p in source["paths"]]
    local["code_verify"] = {**local["code_verify"], **code_verify}
    path = where / "conf.yaml"
    path.write_text(yaml.safe_dump(local))
    return path


def expected(demo: Path) -> dict[tuple[str, int], dict[str, Any]]:
    rows = pq.read_table(demo / "ground_truth" / "code_tests.parquet").to_pylist()
    return {(r["prompt_id"], r["sample_index"]): r for r in rows}


def candidates(rt: Any) -> dict[tuple[str, int], dict[str, Any]]:
    columns = ("prompt_id", "sample_index", "code_status", "tests_passed", "tests_total", "verdict", "verifier",
               "code_failure", "reject_reasons", "spans")
    rows = rt.tables.read("silver.candidates").where(f"source = '{SOURCE}'").select(*columns).collect()
    return {(r["prompt_id"], r["sample_index"]): r.asDict(recursive=True) for r in rows}


def test_demo_plants_both_styles_and_every_outcome(demo: Path) -> None:
    truth = expected(demo)
    assert len(truth) == prompts_for(PARAMS.reasoning_prompts) * PARAMS.candidates_per_prompt
    assert {r["style"] for r in truth.values()} == {"stdio", "asserts"}
    assert {r["code_status"] for r in truth.values()} >= {"pass", "fail", "timeout"}
    assert sum(r["code_status"] == "timeout" for r in truth.values()) == 1  # few: each costs a time limit


@needs_sandbox
def test_sandbox_verdicts_match_ground_truth(runtime_factory, demo: Path, tmp_path: Path) -> None:
    rt = runtime_factory(demo_conf(demo, tmp_path))
    ingest(rt)
    result = annotate(rt)
    truth, got = expected(demo), candidates(rt)
    assert set(got) == set(truth)
    for key, want in truth.items():
        row = got[key]
        assert (row["code_status"], row["tests_passed"], row["tests_total"], row["verdict"], row["verifier"]) == (
            want["code_status"], want["tests_passed"], want["tests_total"], want["verdict"], "sandbox"
        ), (key, want["family"], want["variant"], row["code_failure"])
        if want["verdict"] == "incorrect":
            # The span says what the tests said, not a math answer comparison.
            assert "incorrect" in row["reject_reasons"]
            detail = next(s["detail"] for s in row["spans"] if s["reason"] == "incorrect")
            assert detail.startswith(f"answer: {want['code_status']}, {want['tests_passed']}/{want['tests_total']}")
            assert detail.endswith("(sandbox)")
        else:
            assert row["code_failure"] is None and "incorrect" not in row["reject_reasons"]
    counts: dict[str, int] = {}
    for want in truth.values():
        counts[want["code_status"]] = counts.get(want["code_status"], 0) + 1
    assert result.details["code_verify"] == {"mode": "sandbox", "sources": [SOURCE],
                                             "code_status": dict(sorted(counts.items()))}


def test_external_mode_runs_nothing(runtime_factory, demo: Path, tmp_path: Path) -> None:
    # A bwrap that does not exist: external mode must not even look for it.
    rt = runtime_factory(demo_conf(demo, tmp_path, mode="external", bwrap="/nonexistent/bwrap"))
    ingest(rt)
    result = annotate(rt)
    rows = candidates(rt).values()
    assert rows and {(r["code_status"], r["verifier"], r["verdict"]) for r in rows} == {(None, "none", "unverifiable")}
    # The source requires verification: without the sandbox its candidates are `unverified`, never selected.
    assert all(r["reject_reasons"] == ["unverified"] for r in rows)
    assert result.details["code_verify"] == {"mode": "external", "sources": [SOURCE], "code_status": {}}


def test_missing_bwrap_stops_the_stage(runtime_factory, demo: Path, tmp_path: Path) -> None:
    rt = runtime_factory(demo_conf(demo, tmp_path, bwrap=str(tmp_path / "no-such-bwrap")))
    ingest(rt)
    with pytest.raises(SandboxUnavailable, match=r"not installed at .*no-such-bwrap.*code_verify.mode: external"):
        annotate(rt)
    assert not rt.tables.exists("silver.candidates")


def test_tests_field_is_stored_as_json_text() -> None:
    shape = SourceShape(SOURCE, "grouped", "reasoning", "code", "en",
                        (("prompt_id", "id"), ("prompt", "q"), ("tests", "t"), ("completions", "g")))
    cases = [{"input": "1\n", "output": "2\n"}]
    rows = grouped_candidates({"id": 1, "q": "Add one.", "t": cases, "g": ["a", "b"]}, shape)
    assert [r["tests"] for r in rows] == ['[{"input":"1\\n","output":"2\\n"}]'] * 2
    as_text = grouped_candidates({"id": 1, "q": "Add one.", "t": '{"test_list": []}', "g": ["a"]}, shape)
    assert as_text[0]["tests"] == '{"test_list": []}'  # JSON text already: kept as it is
    assert grouped_candidates({"id": 1, "q": "Add one.", "g": ["a"]}, shape)[0]["tests"] is None
    with pytest.raises(RecordError, match="tests") as error:
        grouped_candidates({"id": 1, "q": "Add one.", "t": 3, "g": ["a"]}, shape)
    assert error.value.code == "wrong_type"


def test_code_verify_config_is_strict(tmp_path: Path) -> None:
    assert load_config(REPO / "conf" / "databricks.yaml").code_verify.mode == "external"
    assert load_config(REPO / "conf" / "local.yaml").code_verify.test_timeout_s == 2.0
    for bad, message in (
        ({"modee": "sandbox"}, "unknown key 'code_verify.modee'"),
        ({"mode": "docker"}, "sandbox or external"),
        ({"pass_fraction": 1.5}, "pass_fraction"),
        ({"test_timeout_s": "fast"}, "code_verify.test_timeout_s must be float"),
        ({"sources": ["nope"]}, "no source named 'nope'"),
    ):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({"extends": str(REPO / "conf" / "local.yaml"), "code_verify": bad}))
        with pytest.raises(ConfigError, match=message):
            load_config(path)
