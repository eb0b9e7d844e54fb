"""The demo-data generator: determinism, layout, counts, and that the ground truth is true.

Pure Python, no Spark. The checks re-derive every recorded fact from the
files themselves (parse the line, measure the paragraph, recompute the
Jaccard) rather than trusting the generator's own helpers.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import random
import re
import statistics
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
import zstandard

from sftmix.jobs.demo import foreign
from sftmix.jobs.demo.code_tests import prompts_for
from sftmix.jobs.demo.generator import DemoParams, add_arguments, generate_demo_data, run
from sftmix.jobs.demo.text import reasoning_pools
from sftmix.jobs.demo.words import vocabulary

PARAMS = DemoParams(reasoning_prompts=400, candidates_per_prompt=4, non_reasoning_records=300, seed=11,
                    shard_records=300)
SMALL = DemoParams(reasoning_prompts=120, candidates_per_prompt=3, non_reasoning_records=60, seed=5,
                   shard_records=100)
MIB = 1024 * 1024
JSONL_SOURCES = ("math_grouped", "code_flat", "stem_logic_batch")
VOLATILE = ("seconds", "mb_per_s")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_a")
    generate_demo_data(out, PARAMS)
    return out


@pytest.fixture(scope="module")
def truth(demo: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: pq.read_table(demo / "ground_truth" / f"{name}.parquet").to_pylist()
            for name in ("candidates", "prompts", "bad_records")}


@pytest.fixture(scope="module")
def summary(demo: Path) -> dict[str, Any]:
    return orjson.loads((demo / "summary.json").read_bytes())


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def read_lines(path: Path) -> list[bytes]:
    # Split on \n only: U+2028 inside strings is not a line break.
    data = read_bytes(path)
    assert data == b"" or data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def data_files(root: Path, source: str) -> list[Path]:
    paths = (root / "raw" / source).iterdir()
    return sorted(p for p in paths if "99999" not in p.name and "empty" not in p.name)


# ---- shape checks, written independently of the generator -------------------------------------

def _typed(obj: dict[str, Any], key: str, types: tuple[type, ...]) -> str | None:
    if key not in obj:
        return "missing_field"
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, types):
        return "wrong_type"
    return None


def check_grouped(obj: dict[str, Any]) -> str | None:
    for key, types in (("uuid", (int, str)), ("problem", (str,)), ("answer", (str, int, float)),
                       ("generations", (list,)), ("finish_reasons", (list,)), ("source_dataset", (str,))):
        if (error := _typed(obj, key, types)) is not None:
            return error
    if not all(isinstance(g, str) for g in obj["generations"]):
        return "wrong_type"
    return None


def check_flat(obj: dict[str, Any]) -> str | None:
    for key, types in (("task_id", (str,)), ("sample_index", (int,)), ("messages", (list,)),
                       ("completion", (str,)), ("finish_reason", (str,))):
        if (error := _typed(obj, key, types)) is not None:
            return error
    return None


def check_sandbox(obj: dict[str, Any]) -> str | None:
    for key, types in (("task_id", (str,)), ("sample_index", (int,)), ("status", (str,)),
                       ("tests_passed", (int,)), ("tests_total", (int,))):
        if (error := _typed(obj, key, types)) is not None:
            return error
    return None


def check_request(obj: dict[str, Any]) -> str | None:
    if (error := _typed(obj, "custom_id", (str,)) or _typed(obj, "body", (dict,))) is not None:
        return error
    return _typed(obj["body"], "messages", (list,)) or _typed(obj["body"], "n", (int,))


def classify(line: bytes, check: Any) -> str | None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "invalid_json"
    error = check(obj)
    if error is None and len(line) > MIB:
        return "record_too_large"
    return error


Parts = tuple[str, ...]  # the reasoning: two parts when there are two think blocks


def split_completion(text: str) -> tuple[Parts, str, str]:
    """(reasoning parts, answer, form) of a grouped/flat completion."""
    if not text.startswith("<think>\n"):
        reasoning, answer = text.split("\n</think>", 1)
        return (reasoning,), answer.removeprefix("\n\n"), "no_open"
    body = text[len("<think>\n"):]
    if "\n</think>" not in body:
        return (body,), "", "open"
    first, rest = body.split("\n</think>", 1)
    rest = rest.removeprefix("\n\n")
    if rest.startswith("<think>\n"):
        second, answer = rest[len("<think>\n"):].split("\n</think>", 1)
        return (first, second), answer.removeprefix("\n\n"), "double"
    return (first,), rest, "ok"


def split_message(message: dict[str, Any]) -> tuple[Parts, str, str]:
    content, reasoning = message["content"], message["reasoning_content"]
    if content.startswith("<think>\n"):
        second, answer = content[len("<think>\n"):].split("\n</think>", 1)
        return (reasoning, second), answer.removeprefix("\n\n"), "double"
    if content.startswith("</think>"):
        return (reasoning,), content[len("</think>"):].removeprefix("\n\n"), "no_open"
    return (reasoning,), content, "ok"


@pytest.fixture(scope="module")
def parsed(demo: Path) -> dict[tuple[str, str, int], tuple[Parts, str, str, str]]:
    """(source, prompt_id, sample_index) -> (reasoning parts, answer, form, finish_reason); good lines."""
    out: dict[tuple[str, str, int], tuple[Parts, str, str, str]] = {}
    for path in data_files(demo, "math_grouped"):
        for line in read_lines(path):
            if classify(line, check_grouped) is None:
                obj = orjson.loads(line)
                pairs = zip(obj["generations"], obj["finish_reasons"], strict=True)
                for i, (text, finish) in enumerate(pairs):
                    out["math_grouped", str(obj["uuid"]), i] = (*split_completion(text), finish)
    for path in data_files(demo, "code_flat"):
        for line in read_lines(path):
            if classify(line, check_flat) is None:
                obj = orjson.loads(line)
                out["code_flat", obj["task_id"], obj["sample_index"]] = (*split_completion(obj["completion"]),
                                                                          obj["finish_reason"])
    for path in data_files(demo, "code_tests"):
        for line in read_lines(path):
            obj = orjson.loads(line)
            for i, text in enumerate(obj["generations"]):
                out["code_tests", obj["question_id"], i] = (*split_completion(text), "stop")
    for path in data_files(demo, "stem_logic_batch"):
        if path.name.endswith(".output.jsonl"):
            for line in read_lines(path):
                obj = orjson.loads(line)
                if obj["response"] is not None and not obj["custom_id"].startswith("orphan-"):
                    for choice in obj["response"]["body"]["choices"]:
                        key = ("stem_logic_batch", obj["custom_id"], choice["index"])
                        reasoning, answer, form = split_message(choice["message"])
                        form = "open" if choice["finish_reason"] == "length" else form
                        out[key] = (reasoning, answer, form, choice["finish_reason"])
    return out


# ---- determinism and layout -----------------------------------------------------------------

def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "summary.json"}


def _stable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = generate_demo_data(tmp_path / "first", SMALL)
    second = generate_demo_data(tmp_path / "second", SMALL)
    assert _files(tmp_path / "first") == _files(tmp_path / "second")
    assert _stable(first) == _stable(second)
    assert len(_files(tmp_path / "first")) >= 12  # several shards of every source


def test_different_seed_gives_different_data(demo: Path, tmp_path: Path) -> None:
    generate_demo_data(tmp_path / "other", dataclasses.replace(PARAMS, seed=12))
    ours, theirs = _files(demo), _files(tmp_path / "other")
    for name in ("raw/math_grouped/part-00000.jsonl.gz", "raw/code_flat/part-00000.jsonl.zst",
                 "raw/stem_logic_batch/batch-00000.output.jsonl", "raw/chat_parquet/part-00000.parquet",
                 "ground_truth/candidates.parquet", "benchmarks/demo_bench.jsonl"):
        assert ours[name] != theirs[name], name


def test_id_offset_gives_a_later_batch_new_ids(tmp_path: Path) -> None:
    """A next week's batch (``id_offset``, another seed) shares no prompt or candidate id with the first."""
    first, later = tmp_path / "first", tmp_path / "later"
    generate_demo_data(first, SMALL)
    generate_demo_data(later, dataclasses.replace(SMALL, seed=SMALL.seed + 1, id_offset=500_000))
    ids = {}
    for name, root in (("first", first), ("later", later)):
        prompts = pq.read_table(root / "ground_truth" / "prompts.parquet").to_pylist()
        candidates = pq.read_table(root / "ground_truth" / "candidates.parquet").to_pylist()
        keys = {(c["source"], c["prompt_id"], c["sample_index"]) for c in candidates}
        ids[name] = ({(p["source"], p["prompt_id"]) for p in prompts}, keys)
        assert len(ids[name][0]) == len(prompts) and len(ids[name][1]) == len(candidates)
    assert not ids["first"][0] & ids["later"][0]
    assert not ids["first"][1] & ids["later"][1]
    later_ids = {prompt_id for _, prompt_id in ids["later"][0]}
    assert {"chat-0500000", "code-0500000", "ct-500000"} <= later_ids
    math_ids = [i for source, i in ids["later"][0] if source == "math_grouped"]
    assert all(len(i) == 36 or int(i) >= 1_500_000 for i in math_ids)  # a uuid or an offset number


def test_layout_and_empty_files(demo: Path) -> None:
    raw = demo / "raw"
    assert (raw / "math_grouped" / "part-00000.jsonl.gz").exists()
    assert (raw / "code_flat" / "part-00000.jsonl.zst").exists()
    assert (raw / "stem_logic_batch" / "batch-00000.input.jsonl").exists()
    assert (raw / "stem_logic_batch" / "batch-00000.output.jsonl").exists()
    assert (raw / "chat_parquet" / "part-00000.parquet").exists()
    for empty in ("math_grouped/part-99999.jsonl.gz", "code_flat/empty.jsonl.zst",
                  "stem_logic_batch/batch-99999.input.jsonl", "stem_logic_batch/batch-99999.output.jsonl"):
        assert (raw / empty).exists() and read_bytes(raw / empty) == b"", empty
    assert (raw / "math_grouped" / "part-99999.jsonl.gz").stat().st_size > 0  # a real, empty gzip stream
    assert len(data_files(demo, "code_flat")) == 2  # 480 lines at 300 per shard
    bench = [orjson.loads(line) for line in read_lines(demo / "benchmarks" / "demo_bench.jsonl")]
    assert 40 <= len(bench) <= 60 and all(set(b) == {"id", "question", "answer"} for b in bench)


def test_chat_parquet_schema(demo: Path) -> None:
    table = pq.read_table(demo / "raw" / "chat_parquet")
    assert table.schema.names == ["prompt_id", "domain", "instruction", "response", "target_language"]
    rows = table.to_pylist()
    assert {r["domain"] for r in rows} == {"writing", "factual_qa", "self_cognition", "translation"}
    assert all("DemoR1" in r["response"] for r in rows if r["domain"] == "self_cognition" and r["response"]
               and r["response"].isascii())
    languages = {r["target_language"] for r in rows if r["domain"] == "translation"}
    assert len(languages) >= 5 and "en" not in languages
    assert any(r["response"] and r["response"].startswith("<think>\n") for r in rows)


# ---- counts and bad records -----------------------------------------------------------------

def test_summary_counts_match_files(demo: Path, summary: dict[str, Any], truth: dict[str, list]) -> None:
    per_source: dict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in truth["candidates"]:
        per_source[row["source"]]["candidates"] += 1
    for row in truth["bad_records"]:
        per_source[row["source"]][row["error"]] += 1
    for source, stats in summary["sources"].items():
        assert stats["candidates"] == per_source[source]["candidates"], source
        assert stats["bad_records"] == {k: v for k, v in per_source[source].items() if k != "candidates"}
    for source in ("math_grouped", "code_flat"):
        lines = sum(len(read_lines(p)) for p in data_files(demo, source))
        assert summary["sources"][source]["records"] == lines
    inputs = [p for p in data_files(demo, "stem_logic_batch") if p.name.endswith(".input.jsonl")]
    outputs = [p for p in data_files(demo, "stem_logic_batch") if p.name.endswith(".output.jsonl")]
    assert summary["sources"]["stem_logic_batch"]["records"] == sum(len(read_lines(p)) for p in inputs)
    assert summary["sources"]["stem_logic_batch"]["responses"] == sum(len(read_lines(p)) for p in outputs)
    assert summary["sources"]["chat_parquet"]["records"] == PARAMS.non_reasoning_records
    assert summary["ground_truth"]["candidates"] == len(truth["candidates"])
    counts = {"math": 240, "code": 120, "stem": 20, "logic": 20}
    assert summary["sources"]["math_grouped"]["records"] == counts["math"]
    assert summary["sources"]["code_flat"]["records"] == counts["code"] * PARAMS.candidates_per_prompt


def test_every_bad_record_is_bad_and_every_other_line_is_good(demo: Path, truth: dict[str, list]) -> None:
    bad = {(r["file"], r["line"]): r["error"] for r in truth["bad_records"]}
    checks = {"math_grouped": check_grouped, "code_flat": check_flat}
    for source, check in checks.items():
        for path in data_files(demo, source):
            relative = str(path.relative_to(demo))
            for number, line in enumerate(read_lines(path), start=1):
                assert classify(line, check) == bad.get((relative, number)), (relative, number)
    codes = {r["error"] for r in truth["bad_records"] if r["source"] in checks}
    assert codes == {"invalid_json", "invalid_utf8", "missing_field", "wrong_type", "record_too_large"}
    chat_bad = [r for r in truth["bad_records"] if r["source"] == "chat_parquet"]
    assert chat_bad and all(r["error"] == "missing_field" for r in chat_bad)
    for row in chat_bad:
        assert pq.read_table(demo / row["file"]).column("response")[row["line"]].as_py() is None


def test_batch_bad_records(demo: Path, truth: dict[str, list]) -> None:
    rows = [r for r in truth["bad_records"] if r["source"] == "stem_logic_batch"]
    bad = {(r["file"], r["line"]): r["error"] for r in rows}
    requests: dict[str, tuple[str, int]] = {}
    responded: set[str] = set()
    # Sorted names put each shard's input before its output; responses never cross shards.
    for path in data_files(demo, "stem_logic_batch"):
        relative = str(path.relative_to(demo))
        lines = read_lines(path)
        if path.name.endswith(".input.jsonl"):
            for number, line in enumerate(lines, start=1):
                error = classify(line, check_request)
                if error is None:
                    requests[orjson.loads(line)["custom_id"]] = (relative, number)
                else:
                    assert bad.pop((relative, number)) == error
            continue
        order = [orjson.loads(line) for line in lines]
        for number, obj in enumerate(order, start=1):
            if obj["custom_id"] not in requests:
                assert bad.pop((relative, number)) == "response_without_request"
                continue
            responded.add(obj["custom_id"])
            if obj["error"] is not None:
                assert obj["response"] is None and bad.pop((relative, number)) == "batch_error"
            else:
                assert len(obj["response"]["body"]["choices"]) == PARAMS.candidates_per_prompt
        ids = [o["custom_id"] for o in order]
        assert ids != sorted(ids)  # responses come back shuffled
    for custom_id, where in requests.items():
        if custom_id not in responded:
            assert bad.pop(where) == "request_without_response"
    assert bad == {}
    codes = {r["error"] for r in truth["bad_records"] if r["source"] == "stem_logic_batch"}
    assert codes == {"request_without_response", "response_without_request", "batch_error", "invalid_json",
                     "invalid_utf8", "missing_field", "wrong_type", "record_too_large"}


# ---- candidates: ground truth against the text ----------------------------------------------

def paragraphs(parts: Parts) -> list[str]:
    return [p for part in parts for p in part.split("\n\n")]


def test_candidates_match_their_text(truth: dict[str, list], parsed: dict) -> None:
    reasoning_rows = [r for r in truth["candidates"] if r["kind"] == "reasoning"]
    assert len(reasoning_rows) == len(parsed)
    for row in reasoning_rows:
        reasoning, answer, form, finish = parsed[row["source"], row["prompt_id"], row["sample_index"]]
        defects = set(row["defects"])
        assert row["reasoning_chars"] == sum(map(len, reasoning))
        assert ("truncated" in defects) == (finish == "length") == (form == "open")
        assert ("malformed_think" in defects) == (form in ("double", "no_open"))
        if "empty_answer" in defects or "truncated" in defects:
            assert answer == "" and row["is_correct"] is None
        longest = max(map(len, paragraphs(reasoning)))
        if "long_paragraph" in defects:
            assert 3000 <= longest <= 8000
        elif "repetition" not in defects:
            assert longest < 1200
        if not defects - {"incorrect"}:
            text = reasoning[0]
            assert text.replace("\u2028", " ").isascii() and "```" not in text
            if row["source"] != "code_tests":  # its no-code answers are checked in test_code_tests_source
                assert {"math": "\\boxed{", "code": "```python", "stem": "The answer is (",
                        "logic": "Answer: "}[row["domain"]] in answer


def test_code_tests_source(demo: Path, truth: dict[str, list], parsed: dict) -> None:
    """Both test styles, every planted outcome, and answers whose program matches the planted variant."""
    expected = pq.read_table(demo / "ground_truth" / "code_tests.parquet").to_pylist()
    records = [orjson.loads(line) for path in data_files(demo, "code_tests") for line in read_lines(path)]
    assert len(records) == prompts_for(PARAMS.reasoning_prompts) == 6  # at least 6: both styles, each family
    styles = set()
    for record in records:
        tests = orjson.loads(record["tests"]) if isinstance(record["tests"], str) else record["tests"]
        if isinstance(tests, list):
            assert all(set(case) == {"input", "output"} for case in tests) and len(tests) == 3
            styles.add("stdio")
        else:
            assert len(tests["test_list"]) == 3 and all(t.startswith("assert ") for t in tests["test_list"])
            styles.add("asserts")
    assert styles == {"stdio", "asserts"}
    assert len(expected) == len(records) * PARAMS.candidates_per_prompt
    assert sum(r["variant"] == "timeout" for r in expected) == 1  # candidate 5 only, below 65 candidates
    assert {r["code_status"] for r in expected} >= {"pass", "fail", "timeout", "runtime_error"}
    correct = {(r["prompt_id"], r["sample_index"]): r["is_correct"] for r in truth["candidates"]
               if r["source"] == "code_tests"}
    for r in expected:
        assert (r["verdict"] == "correct") == (r["code_status"] == "pass") == correct[r["prompt_id"], r["sample_index"]]
        assert r["tests_total"] == 3 and 0 <= r["tests_passed"] <= 3
        assert r["tests_passed"] == {"pass": 3, "fail": 2 if r["variant"] == "edge_case" else 0}.get(r["code_status"], 0)
        answer = parsed["code_tests", r["prompt_id"], r["sample_index"]][1]
        assert ("```python" in answer) == (r["variant"] != "no_code")


def test_defect_rates_within_tolerance(truth: dict[str, list]) -> None:
    rows = [r for r in truth["candidates"] if r["kind"] == "reasoning"]
    non_code = [r for r in rows if r["domain"] != "code"]
    expected = {"truncated": 0.03, "mixed_language": 0.05, "long_paragraph": 0.03, "repetition": 0.02,
                "malformed_think": 0.01, "empty_answer": 0.01}
    for code, rate in expected.items():
        observed = sum(code in r["defects"] for r in rows) / len(rows)
        assert rate * 0.4 <= observed <= rate * 1.8, (code, observed)
    observed = sum("code_block" in r["defects"] for r in non_code) / len(non_code)
    assert 0.012 <= observed <= 0.054
    verifiable = [r for r in rows if r["is_correct"] is not None]
    incorrect = sum(not r["is_correct"] for r in verifiable) / len(verifiable)
    assert 0.2 <= incorrect <= 0.4
    assert all(("incorrect" in r["defects"]) == (r["is_correct"] is False) for r in rows)


def test_pass_rates_spread(truth: dict[str, list]) -> None:
    per_prompt: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in truth["candidates"]:
        if r["is_correct"] is not None:
            per_prompt[r["source"], r["prompt_id"]].append(r["is_correct"])
    rates = [sum(v) / len(v) for v in per_prompt.values() if len(v) == 4]
    assert sum(r == 1.0 for r in rates) / len(rates) > 0.1
    assert sum(r == 0.0 for r in rates) / len(rates) > 0.03
    assert sum(0 < r < 1 for r in rates) / len(rates) > 0.3


def test_reasoning_length_distribution(truth: dict[str, list]) -> None:
    lengths = [r["reasoning_chars"] for r in truth["candidates"] if r["kind"] == "reasoning"]
    assert statistics.mean(lengths) >= 6000
    assert max(lengths) > 25_000 and statistics.median(lengths) < 6000
    assert sum(1000 <= n <= 40_000 for n in lengths) / len(lengths) > 0.9


def test_mixed_language_is_real_foreign_text(truth: dict[str, list], parsed: dict) -> None:
    mixed = [r for r in truth["candidates"] if r["kind"] == "reasoning" and "mixed_language" in r["defects"]]
    assert len({r["foreign_language"] for r in mixed}) >= 6
    for row in mixed:
        parts = parsed[row["source"], row["prompt_id"], row["sample_index"]][0]
        assert 0.05 <= row["foreign_share"] <= 0.30
        sentences = foreign.SENTENCES[row["foreign_language"]]
        found = sum(part.count(s) * len(s) for part in parts for s in sentences) / sum(map(len, parts))
        # Whole foreign paragraphs also count the spaces between their sentences.
        assert row["foreign_share"] * 0.9 <= found <= row["foreign_share"] + 1e-9
    clean = [r for r in truth["candidates"]
             if r["kind"] == "reasoning" and "mixed_language" not in r["defects"]]
    assert all(r["foreign_share"] == 0.0 and r["foreign_language"] is None for r in clean)


def test_repetition_is_a_loop_at_the_end(truth: dict[str, list], parsed: dict) -> None:
    rows = [r for r in truth["candidates"] if "repetition" in r["defects"]]
    assert rows
    for row in rows:
        parts = paragraphs(parsed[row["source"], row["prompt_id"], row["sample_index"]][0])
        tail = parts[-21:-1] if "truncated" in row["defects"] else parts[-20:]
        assert len(set(tail)) == 1


def test_non_reasoning_records(truth: dict[str, list]) -> None:
    rows = [r for r in truth["candidates"] if r["kind"] == "non_reasoning"]
    assert len(rows) == PARAMS.non_reasoning_records - sum(
        r["source"] == "chat_parquet" for r in truth["bad_records"])
    wrong = [r for r in rows if "wrong_language" in r["defects"]]
    assert wrong and all(r["foreign_language"] != r["target_language"] for r in wrong)
    assert all(r["is_correct"] is None and r["sample_index"] == 0 for r in rows)
    assert any(r["reasoning_chars"] > 0 for r in rows) and any(r["reasoning_chars"] == 0 for r in rows)


# ---- prompts: duplicates, contamination, diversity ------------------------------------------

def shingles(text: str) -> set[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text.lower())
    return {tuple(tokens[i:i + 5]) for i in range(len(tokens) - 4)}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def test_duplicates_are_what_they_claim(truth: dict[str, list]) -> None:
    by_ref = {f"{p['source']}/{p['prompt_id']}": p for p in truth["prompts"]}
    near = [p for p in truth["prompts"] if p["near_dup_of"]]
    exact = [p for p in truth["prompts"] if p["exact_dup_of"] and p["kind"] == "reasoning"]
    assert near and exact
    for p in near:
        original = by_ref[p["near_dup_of"]]["prompt"]
        assert 0.8 <= p["near_dup_jaccard"] <= 0.95
        assert jaccard(p["prompt"], original) == pytest.approx(p["near_dup_jaccard"])
    for p in exact:
        original = by_ref[p["exact_dup_of"]]["prompt"]
        assert normalized(p["prompt"]) == normalized(original)
        assert p["contaminated_by"] or p["prompt"] != original


def test_contaminated_prompts_contain_a_benchmark_question(demo: Path, truth: dict[str, list]) -> None:
    bench = {b["id"]: b for b in map(orjson.loads, read_lines(demo / "benchmarks" / "demo_bench.jsonl"))}
    leaked = [p for p in truth["prompts"] if p["contaminated_by"]]
    assert leaked
    for p in leaked:
        assert normalized(bench[p["contaminated_by"]]["question"]) in normalized(p["prompt"])
        # The file may hold a numeric answer as a JSON number (27 -> 27.0); the value is the benchmark's.
        reference, expected = p["reference_answer"], bench[p["contaminated_by"]]["answer"]
        assert reference == expected or float(reference) == float(expected)


def test_unrelated_prompts_share_almost_no_5grams(truth: dict[str, list]) -> None:
    originals = [p["prompt"] for p in truth["prompts"] if p["source"] == "math_grouped"
                 and not (p["exact_dup_of"] or p["near_dup_of"] or p["contaminated_by"])]
    rng = random.Random(0)
    scores = [jaccard(*rng.sample(originals, 2)) for _ in range(300)]
    assert statistics.mean(scores) < 0.01 and max(scores) < 0.15
    lengths = [len(p) for p in originals]
    assert min(lengths) >= 150 and max(lengths) <= 600
    assert len(vocabulary()) >= 1500


def test_math_reference_answers_vary(demo: Path, truth: dict[str, list]) -> None:
    refs = [p["reference_answer"] for p in truth["prompts"] if p["source"] == "math_grouped"]
    for marker in ("\\frac", "\\sqrt", "\\pi", "^\\circ", "\\%", "\\{", "\\text{"):
        assert any(marker in r for r in refs), marker
    answers = [orjson.loads(line)["answer"] for line in read_lines(data_files(demo, "math_grouped")[0])
               if classify(line, check_grouped) is None]
    assert any(isinstance(a, int) for a in answers) and any(isinstance(a, float) for a in answers)
    uuids = [orjson.loads(line)["uuid"] for line in read_lines(data_files(demo, "math_grouped")[0])
             if classify(line, check_grouped) is None]
    assert any(isinstance(u, int) for u in uuids) and any(isinstance(u, str) for u in uuids)


def test_line_separator_inside_json_strings(demo: Path) -> None:
    for source in JSONL_SOURCES:
        lines = [line for p in data_files(demo, source) for line in read_lines(p)]
        carriers = [line for line in lines if "\u2028".encode() in line]
        assert any(classify(line, lambda o: None) is None for line in carriers), source


# ---- scale and CLI --------------------------------------------------------------------------

def _traced_run(out: Path, prompts: int) -> tuple[int, int]:
    """(tracemalloc peak, bytes written) of one uncompressed run."""
    params = DemoParams(reasoning_prompts=prompts, non_reasoning_records=0, shard_records=2000,
                        compress=False)
    tracemalloc.start()
    try:
        result = generate_demo_data(out, params)
        return tracemalloc.get_traced_memory()[1], result["bytes_uncompressed"]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded(tmp_path: Path) -> None:
    reasoning_pools()  # built once per process; not part of a run's footprint
    small_peak, small_bytes = _traced_run(tmp_path / "small", 100)
    peak, written = _traced_run(tmp_path / "large", 600)
    # Nothing is held per record: the peak is buffers plus the largest single record (~4-5 MB here,
    # ~5 MB at 4,000 candidates too) while the output grows with the data.
    assert written > 2.5 * small_bytes
    assert peak < small_peak + 2 * MIB, (small_peak, peak)
    assert peak < written / 3, (peak, written)


def test_cli_writes_plain_jsonl_shards(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).out == "demo"
    out = tmp_path / "cli"
    args = parser.parse_args(["--out", str(out), "--reasoning-prompts", "30", "--non-reasoning", "10",
                              "--shard-records", "7", "--seed", "3", "--no-compress"])
    assert run(args) == 0
    names = sorted(p.name for p in (out / "raw" / "math_grouped").iterdir())
    assert names[0] == "part-00000.jsonl" and "part-99999.jsonl" in names and len(names) >= 4
    assert (out / "raw" / "code_flat" / "empty.jsonl").read_bytes() == b""
    assert orjson.loads((out / "summary.json").read_bytes())["params"]["compress"] is False


def test_sandbox_judgments_hold_the_code_test_counts(demo: Path, truth: dict[str, list]) -> None:
    """The code records carry no test counts; the sandbox files do, and the ground truth says what each line is."""
    for path in data_files(demo, "code_flat"):
        for line in read_lines(path):
            if classify(line, check_flat) is None:
                assert "tests_passed" not in orjson.loads(line)
    rows = [r for r in pq.read_table(demo / "ground_truth" / "judgments.parquet").to_pylist()
            if r["judgment"] == "code_sandbox"]
    expected = {(r["file"], r["line"]): r for r in rows}
    sandbox = sorted((demo / "judgments" / "code_sandbox").iterdir())
    assert [p.name for p in sandbox] == ["run1-00000.jsonl", "run1-00001.jsonl", "run2-00000.jsonl"]
    seen = 0
    for path in sandbox:
        for number, line in enumerate(read_lines(path), start=1):
            row = expected[str(path.relative_to(demo)), number]
            seen += 1
            assert classify(line, check_sandbox) == row["error"]
            if row["error"] is None:
                obj = orjson.loads(line)
                assert (obj["task_id"], obj["sample_index"], obj["tests_passed"], obj["tests_total"]) == (
                    row["prompt_id"], row["sample_index"], row["tests_passed"], row["tests_total"])
                if row["status"] != "unmatched":  # a timed-out run is the one a rerun supersedes
                    assert (obj["status"] == "timeout") == (row["status"] == "superseded")
    assert seen == len(rows)
    # The last good line of each candidate (file, line order) is the one annotate applies: it matches the truth.
    code = {(r["prompt_id"], r["sample_index"]): r for r in truth["candidates"] if r["source"] == "code_flat"}
    final = {}
    for row in sorted((r for r in rows if r["error"] is None), key=lambda r: (r["file"], r["line"])):
        final[row["prompt_id"], row["sample_index"]] = row
    applied = {k: r for k, r in final.items() if r["status"] == "applied"}
    assert set(applied) == set(code)
    for key, row in applied.items():
        assert (row["tests_passed"] == row["tests_total"]) == bool(code[key]["is_correct"]), key
    unmatched = {k for k, r in final.items() if r["status"] == "unmatched"}
    code_bad = [r for r in truth["bad_records"] if r["source"] == "code_flat"]
    assert len(unmatched) == len(code_bad) > 0
    statuses = {r["status"] for r in rows if r["error"] is None}
    assert statuses == {"applied", "superseded", "unmatched"}
    assert {r["error"] for r in rows if r["error"]} == {"invalid_json", "wrong_type"}


def test_chat_judge_replies_name_their_candidate_and_score_it(demo: Path, truth: dict[str, list]) -> None:
    """Each chat row that is not a bad record has one judge reply, keyed by its candidate id, scored by its defects."""
    from sftmix.transforms.raw_records import candidate_id

    expected = {}
    bad = {(r["file"], r["line"]) for r in truth["bad_records"] if r["source"] == "chat_parquet"}
    defects = {r["prompt_id"]: r["defects"] for r in truth["candidates"] if r["source"] == "chat_parquet"}
    for path in sorted((demo / "raw" / "chat_parquet").iterdir()):
        for index, prompt_id in enumerate(pq.read_table(path).column("prompt_id").to_pylist()):
            if (str(path.relative_to(demo)), index) not in bad:
                expected[candidate_id("chat_parquet", prompt_id, f"{path.name}:{index}")] = defects[prompt_id]
    rows = {(r["file"], r["line"]): r for r in pq.read_table(demo / "ground_truth" / "judgments.parquet").to_pylist()
            if r["judgment"] == "chat_judge"}
    seen = set()
    for path in sorted((demo / "judgments" / "chat_judge").iterdir()):
        for number, line in enumerate(read_lines(path), start=1):
            obj = orjson.loads(line)
            content = obj["response"]["body"]["choices"][0]["message"]["content"]
            reply = orjson.loads(content[content.index("{"): content.rindex("}") + 1])
            cid = obj["custom_id"]
            assert cid in expected and cid not in seen
            seen.add(cid)
            assert (reply["score"] >= 7) == (not expected[cid])
            assert rows[str(path.relative_to(demo)), number]["judge_score"] == reply["score"]
    assert seen == set(expected) and len(rows) == len(expected) == PARAMS.non_reasoning_records - len(bad)
