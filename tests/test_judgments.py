"""Judgment files (issue 4): sandbox results and judge replies in their own files, joined by candidate id.

A sandbox dump keyed by (task id, sample index) and a DeepSeek-V3 judge's OpenAI-batch output keyed by
custom_id land in bronze.judgments (bad lines in bronze.quarantine with file and line); annotate resolves
them (silver.judgments: applied / superseded / unmatched) and verification reads the merged values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sftmix.jobs.annotate import annotate
from sftmix.jobs.ingest import IngestError, ingest
from sftmix.jobs.runtime.config import ConfigError, load_config
from sftmix.transforms.judgments import JudgmentShape, judgment_row, parse_judge_reply, template_pattern
from sftmix.transforms.raw_records import RecordError, candidate_id

from .conftest import REPO, read_back

THINK = "<think>\nLet me write the function and check it against the examples.\n</think>\n\nDone: see above."


# ---- parsing, no engine ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"analysis": "ok", "correctness": true}', ("correct", None, "ok")),
        ('```json\n{"analysis": "The year is wrong.", "correctness": false}\n```', ("incorrect", None,
                                                                                    "The year is wrong.")),
        ('Let me check.\n```json\n{"correctness": "Correct", "score": 8}\n```\nDone.', ("correct", 8.0, None)),
        ('My verdict: {"analysis": "fine", "score": "7.5"} end', (None, 7.5, "fine")),
        ("9", (None, 9.0, None)),
        ("```\n6\n```", (None, 6.0, None)),
        ("The answer is helpful. Rating: [[8]]", (None, 8.0, None)),
        ('{"correct": 0}', ("incorrect", None, None)),
    ],
)
def test_judge_replies_parse(reply: str, expected: tuple[Any, ...]) -> None:
    assert parse_judge_reply(reply) == expected


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("I cannot judge this.", "invalid_judge_reply"),
        ('{"analysis": "no verdict here"}', "invalid_judge_reply"),
        ('{"correctness": "partially"}', "invalid_verdict"),
        ('{"correctness": [true]}', "wrong_type"),
        ('{"score": "high"}', "wrong_type"),
        ('```json\n{"correctness": tru', "invalid_judge_reply"),  # cut by the judge's length limit
    ],
)
def test_bad_judge_replies_are_record_errors(reply: str, code: str) -> None:
    with pytest.raises(RecordError) as error:
        parse_judge_reply(reply)
    assert error.value.code == code


def test_keys_map_to_the_ids_ingest_gives() -> None:
    by_fields = JudgmentShape("sandbox", "fields", (("prompt_id", "task"), ("sample_index", "i"),
                                                    ("tests_passed", "r.p"), ("tests_total", "r.t")), "code")
    row = judgment_row({"task": 17, "i": 2, "r": {"p": 3, "t": 4}}, by_fields)
    assert row["candidate_id"] == candidate_id("code", "17", "2")
    assert (row["source"], row["prompt_id"], row["sample_index"], row["tests_passed"], row["tests_total"]) == (
        "code", "17", 2, 3, 4)

    batch = JudgmentShape("judge", "custom_id", (), None, "{source}/{prompt_id}-{sample_index}")
    reply = {"custom_id": "chat/a-b/c-3", "error": None,
             "response": {"body": {"model": "deepseek-v3", "choices": [{"message": {"content": "8"}}]}}}
    row = judgment_row(reply, batch)
    assert row["candidate_id"] == candidate_id("chat", "a-b/c", "3")
    assert (row["judge_score"], row["judge_model"], row["verdict"]) == (8.0, "deepseek-v3", None)

    direct = JudgmentShape("ids", "candidate_id", (("candidate_id", "cid"), ("verdict", "ok")))
    assert judgment_row({"cid": "abc", "ok": "PASS"}, direct)["verdict"] == "correct"
    assert template_pattern("{candidate_id}").match("0123abcd").group("candidate_id") == "0123abcd"


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ({"task": 1, "i": 0, "r": {"p": 5, "t": 4}}, "invalid_value"),
        ({"task": 1, "i": 0, "r": {"p": 1}}, "missing_field"),
        ({"task": 1, "r": {"p": 1, "t": 2}}, "missing_field"),
        ({"task": 1, "i": "0", "r": {"p": 1, "t": 2}}, "wrong_type"),
        ({"task": 1, "i": 0}, "missing_field"),  # no value at all
        ([1, 2], "not_an_object"),
    ],
)
def test_bad_judgment_records(record: Any, code: str) -> None:
    shape = JudgmentShape("sandbox", "fields", (("prompt_id", "task"), ("sample_index", "i"),
                                                ("tests_passed", "r.p"), ("tests_total", "r.t")), "code")
    with pytest.raises(RecordError) as error:
        judgment_row(record, shape)
    assert error.value.code == code


@pytest.mark.parametrize(
    ("judgment", "message"),
    [
        ({"name": "j", "paths": [], "fields": {"verdict": "v", "score": "s"}}, "unknown logical field 'score'"),
        ({"name": "code", "paths": [], "fields": {"verdict": "v"}}, "already used"),
        ({"name": "j", "paths": [], "key": "fields", "fields": {"verdict": "v"}}, "needs `source:`"),
        ({"name": "j", "paths": [], "key": "fields", "source": "nope", "fields": {"verdict": "v"}},
         "not a configured source"),
        ({"name": "j", "paths": [], "key": "custom_id", "custom_id_template": "{prompt_id}", "source": "code"},
         "needs both"),
        ({"name": "j", "paths": [], "fields": {"tests_passed": "p"}}, "go together"),
        ({"name": "j", "paths": [], "fields": {}}, "at least one"),
    ],
)
def test_judgment_config_is_validated(tmp_path: Path, judgment: dict, message: str) -> None:
    conf = tmp_path / "conf.yaml"
    source = {"name": "code", "format": "flat", "paths": [], "domain": "code"}
    conf.write_text(yaml.safe_dump({"extends": str(REPO / "conf" / "base.yaml"), "sources": [source],
                                    "judgments": [judgment]}))
    with pytest.raises(ConfigError, match=message):
        load_config(conf)


# ---- ingest + annotate on both engines ------------------------------------------------------------------

def _jsonl(path: Path, lines: list[bytes | dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines))


def _judge_line(custom_id: str, content: str | None, error: dict | None = None) -> dict:
    body = None if content is None else {"model": "deepseek-v3", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    return {"id": "batch_req_1", "custom_id": custom_id, "error": error,
            "response": None if body is None else {"status_code": 200, "body": body}}


def write_case(root: Path) -> Path:
    """Two sources without verdicts of their own (but some judge scores), a sandbox dump and a judge dump."""
    _jsonl(root / "raw" / "code" / "part-0.jsonl", [
        {"task_id": f"t{t}", "i": i, "prompt": f"Write f{t}.", "completion": THINK} for t in range(3) for i in range(2)
    ])
    own_scores = {("c0", 0): 1.0, ("c0", 1): 2.0, ("c1", 0): 5.0, ("c1", 1): 3.0}
    _jsonl(root / "raw" / "chat" / "part-0.jsonl", [
        {"pid": p, "i": i, "prompt": f"Tell me about {p}.", "completion": "It is a city.", "own": score}
        for (p, i), score in own_scores.items()
    ])

    def sandbox(task: str, i: int, passed: Any, total: int, status: str) -> dict:
        return {"task_id": task, "sample": i, "result": {"passed": passed, "total": total, "status": status}}

    _jsonl(root / "judgments" / "sandbox" / "results-0.jsonl", [
        sandbox("t0", 0, 5, 5, "passed"),
        sandbox("t0", 1, 2, 5, "failed"),
        sandbox("t1", 0, 0, 4, "failed"),  # a timeout, rerun below: superseded
        b'{"task_id": "t1", "sample": 1, "result": {"pas',  # invalid_json
        sandbox("t1", 0, 4, 4, "passed"),
        sandbox("t9", 0, 3, 3, "passed"),  # no such candidate: unmatched
        sandbox("t2", 0, 6, 5, "passed"),  # invalid_value
        sandbox("t2", 1, "3", 3, "passed"),  # wrong_type
    ])
    _jsonl(root / "judgments" / "judge" / "batch-0.output.jsonl", [
        _judge_line("chat/c0/0", '```json\n{"analysis": "Accurate and clear.", "correctness": true, "score": 9}\n```'),
        _judge_line("chat/c0/1", 'Judgment follows. {"analysis": "Wrong city.", "correctness": false}'),
        _judge_line("chat/c1/0", "7"),
        _judge_line("chat/c1/1", None, {"code": "server_error", "message": "Upstream worker crashed."}),
        _judge_line("bogus", "8"),  # invalid_custom_id
        _judge_line("chat/c1/0", "I cannot judge this."),  # invalid_judge_reply: does not supersede line 3
        _judge_line("code/t1/1", '{"analysis": "Handles the edge cases.", "correctness": "yes"}'),
        _judge_line("code/t0/0", '{"analysis": "Off by one.", "correctness": false}'),  # sandbox comes first
    ])
    config = {
        "extends": str(REPO / "conf" / "base.yaml"),
        "sources": [
            {"name": "code", "format": "flat", "paths": [str(root / "raw" / "code" / "*.jsonl")], "domain": "code",
             "require_verification": True,
             "fields": {"prompt_id": "task_id", "prompt": "prompt", "completion": "completion", "sample_index": "i"}},
            {"name": "chat", "format": "flat", "paths": [str(root / "raw" / "chat" / "*.jsonl")],
             "domain": "writing", "kind": "non_reasoning",
             "fields": {"prompt_id": "pid", "prompt": "prompt", "completion": "completion", "sample_index": "i",
                        "judge_score": "own"}},
        ],
        "judgments": [
            {"name": "sandbox", "paths": [str(root / "judgments" / "sandbox" / "*.jsonl")], "key": "fields",
             "source": "code", "max_bad_fraction": 0.5,
             "fields": {"prompt_id": "task_id", "sample_index": "sample", "tests_passed": "result.passed",
                        "tests_total": "result.total", "verdict": "result.status"}},
            {"name": "v3_judge", "paths": [str(root / "judgments" / "judge" / "*.output.jsonl")], "key": "custom_id",
             "custom_id_template": "{source}/{prompt_id}/{sample_index}", "max_bad_fraction": 0.5},
        ],
    }
    path = root / "conf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_judgment_files_land_and_decide_verdicts(runtime_factory, tmp_path: Path) -> None:
    rt = runtime_factory(write_case(tmp_path))
    landed = ingest(rt)
    assert (landed.rows_in, landed.rows_out) == (10, 10)  # generations only
    assert landed.details["judgments"] == {"files": 2, "records": 16, "landed": 10, "quarantined": 6}

    sandbox_file = str(tmp_path / "judgments" / "sandbox" / "results-0.jsonl")
    judge_file = str(tmp_path / "judgments" / "judge" / "batch-0.output.jsonl")
    quarantine = {(r["source"], r["file"], r["line"]): r["error"] for r in read_back(rt, "bronze.quarantine")}
    assert quarantine == {
        ("sandbox", sandbox_file, 4): "invalid_json",
        ("sandbox", sandbox_file, 7): "invalid_value",
        ("sandbox", sandbox_file, 8): "wrong_type",
        ("v3_judge", judge_file, 4): "batch_error",
        ("v3_judge", judge_file, 5): "invalid_custom_id",
        ("v3_judge", judge_file, 6): "invalid_judge_reply",
    }
    bronze = {(r["judgment"], r["line"]): r for r in read_back(rt, "bronze.judgments")}
    assert len(bronze) == 10
    assert bronze["sandbox", 1]["candidate_id"] == candidate_id("code", "t0", "0")
    assert (bronze["v3_judge", 1]["judge_analysis"], bronze["v3_judge", 1]["judge_model"]) == (
        "Accurate and clear.", "deepseek-v3")
    files = {r["file"]: (r["source"], r["records"], r["candidates"], r["quarantined"])
             for r in read_back(rt, "bronze.ingested_files")}
    assert files[sandbox_file] == ("sandbox", 8, 5, 3) and files[judge_file] == ("v3_judge", 8, 5, 3)

    again = ingest(rt)
    assert again.details == {"new_files": 0, "skipped_files": 4}

    result = annotate(rt)
    assert result.details["judgments"] == {
        "rows": 10, "applied": 8, "superseded": 1, "unmatched": 1, "judged_candidates": 7,
        "by_judgment": {"sandbox": {"applied": 3, "superseded": 1, "unmatched": 1},
                        "v3_judge": {"applied": 5, "superseded": 0, "unmatched": 0}},
    }
    status = {(r["judgment"], r["line"]): r["status"] for r in read_back(rt, "silver.judgments")}
    assert status == {("sandbox", 1): "applied", ("sandbox", 2): "applied", ("sandbox", 3): "superseded",
                      ("sandbox", 5): "applied", ("sandbox", 6): "unmatched", **{
                          ("v3_judge", line): "applied" for line in (1, 2, 3, 7, 8)}}

    columns = ("external_verdict", "tests_passed", "tests_total", "judge_score", "verdict", "verifier", "judged_by")
    got = {(r["source"], r["prompt_id"], r["sample_index"]): tuple(r[c] for c in columns) + (
        "unverified" in r["reject_reasons"], "incorrect" in r["reject_reasons"])
        for r in read_back(rt, "silver.candidates")}
    both = ["sandbox", "v3_judge"]
    assert got == {
        # the sandbox is listed first: its verdict wins over the judge's for t0/0
        ("code", "t0", 0): ("correct", 5, 5, None, "correct", "external", both, False, False),
        ("code", "t0", 1): ("incorrect", 2, 5, None, "incorrect", "external", ["sandbox"], False, True),
        ("code", "t1", 0): ("correct", 4, 4, None, "correct", "external", ["sandbox"], False, False),
        ("code", "t1", 1): ("correct", None, None, None, "correct", "external", ["v3_judge"], False, False),
        ("code", "t2", 0): (None, None, None, None, "unverifiable", "none", [], True, False),
        ("code", "t2", 1): (None, None, None, None, "unverifiable", "none", [], True, False),
        # judge values override the generation's own judge_score; without one the own score stays
        ("chat", "c0", 0): ("correct", None, None, 9.0, "correct", "external", ["v3_judge"], False, False),
        ("chat", "c0", 1): ("incorrect", None, None, 2.0, "incorrect", "external", ["v3_judge"], False, True),
        ("chat", "c1", 0): (None, None, None, 7.0, "unverifiable", "none", ["v3_judge"], False, False),
        ("chat", "c1", 1): (None, None, None, 3.0, "unverifiable", "none", [], False, False),
    }


def test_judge_scores_decide_with_a_threshold_and_no_judgments_change_nothing(runtime_factory, tmp_path: Path) -> None:
    conf = write_case(tmp_path)
    rt = runtime_factory(conf, verify__judge_min_score=8.0)
    ingest(rt)
    annotate(rt)
    chat = {(r["prompt_id"], r["sample_index"]): (r["verdict"], r["verifier"])
            for r in read_back(rt, "silver.candidates") if r["source"] == "chat"}
    assert chat == {("c0", 0): ("correct", "external"), ("c0", 1): ("incorrect", "external"),
                    ("c1", 0): ("incorrect", "judge"), ("c1", 1): ("incorrect", "judge")}

    plain = runtime_factory(conf, judgments=[], storage__root=str(tmp_path / "plain-lake"))
    ingest(plain)
    result = annotate(plain)
    assert "judgments" not in result.details and not plain.tables.exists("silver.judgments")
    rows = read_back(plain, "silver.candidates")
    assert all(r["judged_by"] == [] and r["external_verdict"] is None for r in rows)
    assert {r["judge_score"] for r in rows if r["source"] == "chat"} == {1.0, 2.0, 5.0, 3.0}


def test_parquet_judgments_by_candidate_id_and_broken_files_refuse_to_land(runtime_factory, tmp_path: Path) -> None:
    conf = write_case(tmp_path)
    ids = [candidate_id("code", "t2", "0"), candidate_id("code", "t2", "1"), "no-such-id"]
    table = pa.table({"cid": ids, "ok": [True, None, False], "score": [0.9, 0.2, None]})
    (tmp_path / "judgments" / "ids").mkdir(parents=True)
    pq.write_table(table, tmp_path / "judgments" / "ids" / "part-0.parquet")
    extra = {"name": "by_id", "paths": [str(tmp_path / "judgments" / "ids" / "*.parquet")], "format": "parquet",
             "fields": {"candidate_id": "cid", "verdict": "ok", "judge_score": "score"}}
    config = yaml.safe_load(conf.read_text())
    rt = runtime_factory(conf, judgments=[extra])
    ingest(rt)
    rows = {r["line"]: (r["candidate_id"], r["verdict"], r["judge_score"]) for r in read_back(rt, "bronze.judgments")}
    assert rows == {0: (ids[0], "correct", 0.9), 1: (ids[1], None, 0.2), 2: (ids[2], "incorrect", None)}

    broken = dict(config["judgments"][0], max_bad_fraction=0.2)  # the sandbox file has 3 bad of 8
    strict = runtime_factory(conf, judgments=[broken], storage__root=str(tmp_path / "strict-lake"))
    with pytest.raises(IngestError, match=r"source 'sandbox': 3 of 8 records quarantined.*line 4: invalid_json"):
        ingest(strict)
    assert not strict.tables.exists("bronze.generations") and not strict.tables.exists("bronze.judgments")
