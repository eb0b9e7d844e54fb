"""Ingest: every input shape lands, every bad record is quarantined with its reason, counts add up."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from deltalake import DeltaTable

from sftmix.jobs import raw_files
from sftmix.jobs.ingest import IngestError, ingest, source_shape
from sftmix.jobs.runtime.config import load_config
from sftmix.transforms import process_pool
from sftmix.transforms.raw_records import candidate_id

from .conftest import REPO, read_back

THINK = "<think>\nLet x = 2. Then x + 2 = 4.\n</think>\n\nThe answer is \\boxed{4}."


def _jsonl(lines: list[bytes | dict]) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def write_raw_files(root: Path) -> dict[str, int]:
    """Small dumps in every shape, with one bad record of each kind; returns expected error counts."""
    grouped = root / "grouped"
    grouped.mkdir(parents=True)
    good = {"uuid": 1, "problem": "What is 2+2?", "answer": 4, "generations": [THINK, THINK + " x"],
            "finish_reasons": ["stop", "length"]}
    lines: list[bytes | dict] = [
        good,
        {**good, "uuid": "b-2", "problem": "Sep\u2028arated line?"},  # U+2028 inside a string is not a line break
        b'{"uuid": 3, "problem": "cut',  # invalid_json (truncated)
        b'{"uuid": 4, "problem": "x", "answer": "1", "generations": []} trailing',  # invalid_json (garbage)
        b'{"uuid": 5, "problem": "\xff\xfe", "answer": "1", "generations": ["a"]}',  # invalid_utf8
        {"uuid": 6, "answer": "1", "generations": ["a"]},  # missing_field problem
        {"uuid": 7, "problem": "p", "answer": "1", "generations": "not a list"},  # wrong_type
        {"uuid": 8, "problem": 123, "answer": "1", "generations": ["a"]},  # wrong_type
        b"",  # blank lines are not records
        {"uuid": 9, "problem": "big", "answer": "1", "generations": ["y" * 3000]},  # record_too_large (cap 2000)
        [1, 2, 3],  # not_an_object
    ]
    (grouped / "part-0.jsonl.gz").write_bytes(gzip.compress(_jsonl(lines), mtime=0))
    (grouped / "empty.jsonl.gz").write_bytes(gzip.compress(b"", mtime=0))

    flat = root / "flat"
    flat.mkdir()
    flat_lines: list[bytes | dict] = [
        {"task_id": 10, "sample_index": i, "messages": [{"role": "system", "content": "be brief"},
                                                        {"role": "user", "content": "Write f."}],
         "completion": THINK, "finish_reason": "stop", "tests_passed": 3, "tests_total": 4}
        for i in range(3)
    ] + [{"task_id": 11, "sample_index": "3", "messages": [{"role": "user", "content": "g"}], "completion": "c"}]
    (flat / "part-0.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(_jsonl(flat_lines)))

    batch = root / "batch"
    batch.mkdir()
    requests = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "n": 2, "messages": [{"role": "user", "content": f"Question {i}?"}],
                  "metadata": {"domain": "stem", "reference_answer": "C"}}}
        for i in range(4)
    ]
    choice = {"message": {"role": "assistant", "content": "The answer is (C).", "reasoning_content": "think"},
              "finish_reason": "stop"}
    responses = [
        {"custom_id": "r0", "response": {"status_code": 200, "body": {
            "model": "m", "choices": [{**choice, "index": 0}, {**choice, "index": 1}]}}, "error": None},
        {"custom_id": "r1", "response": {"status_code": 200, "body": {
            "model": "m", "choices": [{**choice, "index": 0}]}}, "error": None},
        {"custom_id": "r2", "response": None, "error": {"code": "server_error", "message": "boom"}},  # batch_error
        {"custom_id": "zz", "response": {"status_code": 200, "body": {"choices": [choice]}}, "error": None},
    ]  # r3 never answered: request_without_response; zz: response_without_request
    (batch / "b-0.input.jsonl").write_bytes(_jsonl(requests))  # type: ignore[arg-type]
    (batch / "b-0.output.jsonl").write_bytes(_jsonl(responses))  # type: ignore[arg-type]

    chat = root / "chat"
    chat.mkdir()
    table = pa.table({
        "prompt_id": ["c1", "c2", "c3"],
        "domain": ["writing", "translation", "writing"],
        "instruction": ["Write a haiku.", "Translate 'cat' to French.", "Write a limerick."],
        "response": ["Autumn moon...", "chat", None],  # a null response: missing_field
    })
    pq.write_table(table, chat / "part-0.parquet")
    return {"invalid_json": 2, "invalid_utf8": 1, "missing_field": 2, "wrong_type": 3, "record_too_large": 1,
            "not_an_object": 1, "batch_error": 1, "request_without_response": 1, "response_without_request": 1}


def write_config(root: Path, max_bad_fraction: float = 0.9) -> Path:
    config = {
        "extends": str(REPO / "conf" / "base.yaml"),
        "ingest": {"max_record_bytes": 2000},
        "sources": [
            {"name": "g", "format": "grouped", "paths": [str(root / "grouped" / "*.jsonl.gz")], "domain": "math",
             "max_bad_fraction": max_bad_fraction,
             "fields": {"prompt_id": "uuid", "prompt": "problem", "reference_answer": "answer",
                        "completions": "generations", "finish_reasons": "finish_reasons"}},
            {"name": "f", "format": "flat", "paths": [str(root / "flat" / "*")], "domain": "code",
             "max_bad_fraction": max_bad_fraction,
             "fields": {"prompt_id": "task_id", "messages": "messages", "sample_index": "sample_index",
                        "tests_passed": "tests_passed", "tests_total": "tests_total"}},
            {"name": "b", "format": "openai_batch", "paths": [str(root / "batch" / "*.jsonl")],
             "max_bad_fraction": max_bad_fraction,
             "fields": {"domain": "metadata.domain", "reference_answer": "metadata.reference_answer"}},
            {"name": "c", "format": "flat", "kind": "non_reasoning", "paths": [str(root / "chat" / "*.parquet")],
             "max_bad_fraction": max_bad_fraction,
             "fields": {"prompt": "instruction", "completion": "response", "domain": "domain"}},
        ],
    }
    path = root / "conf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_every_shape_lands_and_every_bad_record_is_quarantined(runtime_factory, tmp_path: Path) -> None:
    expected_errors = write_raw_files(tmp_path / "raw")
    rt = runtime_factory(write_config(tmp_path / "raw"))
    result = ingest(rt)

    generations = read_back(rt, "bronze.generations")
    quarantine = read_back(rt, "bronze.quarantine")
    errors: dict[str, int] = {}
    for row in quarantine:
        errors[row["error"]] = errors.get(row["error"], 0) + 1
    assert errors == expected_errors

    by_source: dict[str, int] = {}
    for row in generations:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    # grouped: 2 good records x 2 generations; flat: 3 good lines; batch: 2 + 1 choices; parquet: 2 rows
    assert by_source == {"g": 4, "f": 3, "b": 3, "c": 2}

    # Counts add up: every record is in exactly one table (a grouped record counts once).
    records = len({(r["file"], r["line"]) for r in generations}) + len(quarantine)
    # grouped 10 lines, flat 4, batch 4 response lines + 1 unanswered request, parquet 3 rows
    assert result.rows_in == records == 10 + 4 + 5 + 3
    assert result.rows_out == len(generations) == 12

    first = next(r for r in generations if r["source"] == "g" and r["prompt_id"] == "1" and r["sample_index"] == 0)
    assert first["candidate_id"] == candidate_id("g", "1", "0")
    assert first["reference_answer"] == "4"  # a JSON number kept as text
    assert first["completion"] == THINK and first["line"] == 1 and first["kind"] == "reasoning"
    assert any(r["prompt"] == "Sep\u2028arated line?" for r in generations)
    code = next(r for r in generations if r["source"] == "f")
    assert code["system"] == "be brief" and code["prompt"] == "Write f." and code["tests_total"] == 4
    assert code["messages"][1] == {"role": "user", "content": "Write f."}
    batch = sorted((r["prompt_id"], r["sample_index"]) for r in generations if r["source"] == "b")
    assert batch == [("r0", 0), ("r0", 1), ("r1", 0)]
    assert {r["domain"] for r in generations if r["source"] == "b"} == {"stem"}
    wrong_index = next(r for r in quarantine if r["source"] == "f")
    assert wrong_index["error"] == "wrong_type" and "sample_index" in wrong_index["error_message"]
    assert wrong_index["line"] == 4 and wrong_index["file"].endswith("part-0.jsonl.zst")
    big = next(r for r in quarantine if r["error"] == "record_too_large")
    assert big["line"] == 10 and len(big["raw"]) <= 4096
    missing = {(Path(r["file"]).name, r["line"]) for r in quarantine if r["error"] == "missing_field"}
    assert missing == {("part-0.jsonl.gz", 6), ("part-0.parquet", 2)}


def test_reingest_adds_nothing_and_new_files_append(runtime_factory, tmp_path: Path) -> None:
    write_raw_files(tmp_path / "raw")
    conf = write_config(tmp_path / "raw")
    rt = runtime_factory(conf)
    ingest(rt)
    before = len(read_back(rt, "bronze.generations"))
    again = ingest(rt)
    assert again.rows_in == 0 and len(read_back(rt, "bronze.generations")) == before

    extra = {"uuid": 99, "problem": "New?", "answer": "1", "generations": [THINK]}
    (tmp_path / "raw" / "grouped" / "part-1.jsonl.gz").write_bytes(gzip.compress(_jsonl([extra]), mtime=0))
    ingest(rt)
    rows = read_back(rt, "bronze.generations")
    assert len(rows) == before + 1
    assert len({r["candidate_id"] for r in rows}) == len(rows)
    files = read_back(rt, "bronze.ingested_files")
    assert len(files) == 6  # 2 grouped + 1 flat + 1 batch pair + 1 parquet + the new one


def test_a_wrong_field_mapping_fails_loudly(runtime_factory, tmp_path: Path) -> None:
    write_raw_files(tmp_path / "raw")
    conf = write_config(tmp_path / "raw", max_bad_fraction=0.05)
    rt = runtime_factory(conf)
    with pytest.raises(IngestError, match=r"source 'g'.*part-0.jsonl.gz.*line 3: invalid_json"):
        ingest(rt)
    assert not rt.tables.exists("bronze.generations")
    # Data files the pool workers had written for the table are gone too (Sail; none elsewhere).
    assert not list(Path(rt.tables.location("bronze.generations")).glob("**/*.parquet"))


def test_local_tables_read_back_with_deltalake(runtime_factory, tmp_path: Path) -> None:
    write_raw_files(tmp_path / "raw")
    rt = runtime_factory(write_config(tmp_path / "raw"))
    if rt.tables.table_format != "delta":
        pytest.skip("classic local Spark writes Parquet (no Delta jars offline)")
    ingest(rt)
    engine_rows = read_back(rt, "bronze.generations")
    delta_rows = DeltaTable(rt.tables.location("bronze.generations")).to_pyarrow_table().to_pylist()
    key = sorted
    assert key(r["candidate_id"] for r in delta_rows) == key(r["candidate_id"] for r in engine_rows)
    by_id = {r["candidate_id"]: r for r in delta_rows}
    for row in engine_rows:
        assert by_id[row["candidate_id"]]["completion"] == row["completion"]
        assert by_id[row["candidate_id"]]["line"] == row["line"]


def test_pool_staging_lands_the_same_rows_as_engine_staging(runtime_factory, tmp_path: Path) -> None:
    """With a process pool and a local Delta lake (Sail), workers write bronze.generations' data files
    themselves and the driver commits them; without a pool the engine writes the table."""
    write_raw_files(tmp_path / "raw")
    conf = write_config(tmp_path / "raw")
    landed = {}
    for pool in (0, 2):
        rt = runtime_factory(conf, storage__root=str(tmp_path / f"lake-{pool}"))
        process_pool.configure(pool)
        result = ingest(rt)
        tables = {
            name: [{k: v for k, v in r.items() if k != "ingest_run_id"} for r in read_back(rt, name)]
            for name in ("bronze.generations", "bronze.quarantine", "bronze.ingested_files")
        }
        landed[pool] = (result.rows_in, result.rows_out, tables)
        written_by_pool = list(Path(rt.tables.location("bronze.generations")).glob(f"part-{rt.run_id}-*.parquet"))
        assert bool(written_by_pool) == (pool > 0 and rt.tables.accepts_files("bronze.generations"))
    assert landed[0][:2] == landed[2][:2] == (22, 12)
    assert landed[0][2] == landed[2][2]


def test_a_work_item_that_fails_leaves_no_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool worker that fails part-way through a file removes the data files it wrote for it."""
    write_raw_files(tmp_path / "raw")
    config = load_config(write_config(tmp_path / "raw"))
    source = next(s for s in config.sources if s.name == "g")
    limits = raw_files.ReadLimits(config.ingest.max_record_bytes, config.ingest.quarantine_raw_chars, 1)
    item = {"source": "g", "file": str(tmp_path / "raw" / "grouped" / "part-0.jsonl.gz"), "request_file": None}
    table_dir = tmp_path / "table"
    table_dir.mkdir()
    landing = raw_files.Landing(str(tmp_path), str(table_dir), "run", target_file_bytes=1)  # a file per batch
    task = (item, source_shape(source), limits, landing)

    files = raw_files.land_file(task)
    assert len(files) > 1 and sorted(p.name for p in table_dir.iterdir()) == sorted(n for n, _, _ in files)
    assert sum(rows for _, _, rows in files) == sum(pq.read_table(table_dir / n).num_rows for n, _, _ in files)
    for child in table_dir.iterdir():
        child.unlink()

    real = raw_files.read_item

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        batches = real(*args, **kwargs)
        yield next(batches)
        yield next(batches)
        raise OSError("disk gone")

    monkeypatch.setattr(raw_files, "read_item", failing)
    with pytest.raises(OSError, match="disk gone"):
        raw_files.land_file(task)
    assert list(table_dir.iterdir()) == []
