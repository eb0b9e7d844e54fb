"""Export: shards read back with pyarrow hold every row once, in the chat schema, no shard over its size,
with the sha256 of the manifest; the bytes equal a pure-Python reference (so both engines agree)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq
import yaml
from pyspark.sql import functions as F

from sftmix.jobs.export import export
from sftmix.jobs.export_shards import write_jsonl
from sftmix.transforms.export_format import jsonl_bytes
from sftmix.transforms.mix import MixParams, render_sft, with_sample_key

from .test_mix import SELECTED_SCHEMA, _tuples, defaults_conf, spark_xxhash64, upstream_rows

SEED = 4321
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def write_gold(rt) -> int:
    _, selected, _ = upstream_rows()
    frame = with_sample_key(
        rt.spark.createDataFrame(_tuples(selected, SELECTED_SCHEMA), SELECTED_SCHEMA), SEED
    )
    # Two rows repeated by upsampling: (candidate_id, copy_index) is the row key.
    copies = frame.where("candidate_id LIKE 'src_logic:%:0'").withColumn("copy_index", F.lit(1))
    sft = (
        frame.withColumn("copy_index", F.lit(0)).unionByName(copies).transform(render_sft, MixParams(total=1))
    )
    rt.tables.write(sft, "gold.sft_mix")
    cold = sft.where("kind = 'reasoning' AND copy_index = 0").limit(7).drop("copy_index")
    rt.tables.write(cold, "gold.cold_start")
    return len(selected) + 3


def expected_shards(rows: list[dict], buckets: int, seed: int) -> list[bytes]:
    """The JSONL shards computed in plain Python from the table's rows."""
    placed: dict[int, list[tuple]] = {}
    for row in rows:
        key = spark_xxhash64(seed, row["candidate_id"], row["copy_index"])
        placed.setdefault(key % buckets, []).append((key, row["candidate_id"], row["copy_index"], row))
    shards = []
    for bucket in sorted(placed):
        ordered = [r for *_, r in sorted(placed[bucket], key=lambda t: t[:3])]
        shards.append(
            jsonl_bytes(
                [
                    {
                        "messages": [m for m in r["messages"] if m["role"] != "system"],
                        "candidate_id": r["candidate_id"],
                        "domain": r["domain"],
                    }
                    for r in ordered
                ]
            )
        )
    return shards


def test_export_writes_shards_card_and_manifest(runtime_factory, tmp_path) -> None:
    out = tmp_path / "export"
    rt = runtime_factory(
        defaults_conf(tmp_path),
        seed=SEED,
        export__path=str(out),
        export__shard_rows=10,
        export__include_system=False,
        export__extra_columns=["candidate_id", "domain"],
    )
    total = write_gold(rt)
    result = export(rt)
    assert result.rows_out == total + 7

    manifest = json.loads((out / "sft_mix" / "manifest.json").read_text())
    assert manifest["rows"] == total and manifest["shard_rows"] == 10
    files = manifest["files"]
    for fmt in ("jsonl", "parquet"):
        shards = [f for f in files if f["format"] == fmt]
        assert sum(f["rows"] for f in shards) == total and max(f["rows"] for f in shards) <= 10
        assert [f["file"] for f in shards] == [
            f"{fmt}/train-{i:05d}-of-{len(shards):05d}.{fmt}" for i in range(len(shards))
        ]
    for entry in files:
        data = (out / "sft_mix" / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]

    # Read back with pyarrow: plain (not large) list/struct/string types, every row exactly once.
    parquet = pq.read_table(out / "sft_mix" / "parquet")
    assert parquet.schema.field("messages").type == MESSAGES
    assert parquet.column_names == ["messages", "candidate_id", "domain"]
    jsonl = pa.concat_tables(
        [pajson.read_json(out / "sft_mix" / f["file"]) for f in files if f["format"] == "jsonl"]
    )
    ids = sorted(jsonl.column("candidate_id").to_pylist())
    assert ids == sorted(parquet.column("candidate_id").to_pylist()) and len(ids) == total
    assert ids == sorted(
        r["candidate_id"] for r in rt.tables.read("gold.sft_mix").select("candidate_id").collect()
    )
    assert {tuple(m["role"] for m in r["messages"]) for r in jsonl.to_pylist()} == {("user", "assistant")}

    # The exact bytes a pure-Python reference writes: the same on Sail and classic Spark.
    table_rows = [r.asDict(recursive=True) for r in rt.tables.read("gold.sft_mix").collect()]
    reference = expected_shards(table_rows, manifest["buckets"], SEED)
    written = [(out / "sft_mix" / f["file"]).read_bytes() for f in files if f["format"] == "jsonl"]
    assert written == reference

    card = (out / "sft_mix" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "parquet/train-*"}]
    assert "| reasoning | logic |" in card and "## Configuration: filters, thresholds, mix" in card
    assert all(f["sha256"] in card for f in files)

    cold = json.loads((out / "cold_start" / "manifest.json").read_text())
    assert cold["rows"] == 7 and sum(f["rows"] for f in cold["files"] if f["format"] == "parquet") == 7
    assert not list(out.glob(".staging-*")) and not list((out / "sft_mix").glob("_parts"))


def test_jsonl_compression_is_deterministic(tmp_path: Path) -> None:
    rows = pa.table({"messages": pa.array([[{"role": "user", "content": "a\u2028b"}]], type=MESSAGES)})
    plain = jsonl_bytes(rows.to_pylist())
    assert plain == b'{"messages":[{"role":"user","content":"a\\u2028b"}]}\n'
    for compression, opener in (("gzip", gzip.decompress), ("zstd", None)):
        first, second = tmp_path / f"a.{compression}", tmp_path / f"b.{compression}"
        write_jsonl(rows, str(first), compression)
        write_jsonl(rows, str(second), compression)
        assert first.read_bytes() == second.read_bytes()
        if opener:
            assert opener(first.read_bytes()) == plain
