"""Stage ``export``: gold.sft_mix / gold.cold_start -> sharded JSONL and Parquet, card, manifest.

Layout under ``export.path`` (default ``<storage.root>/export``), per dataset:

    sft_mix/README.md            dataset card: strata, lengths, thresholds, inputs, files
    sft_mix/manifest.json        rows per stratum, every file with rows, bytes and sha256
    sft_mix/jsonl/train-00000-of-00040.jsonl
    sft_mix/parquet/train-00000-of-00040.parquet

The engine writes the shards (``jobs/export_shards.py``: scan tasks scatter
rows into per-shard part files, then one task per shard sorts and writes its
files); the driver only sees per-file figures and a few aggregates. Files
go to a staging directory first and replace the previous export in one rename
per dataset, so a failed export leaves the last good one in place. The path
must be visible to the driver and every executor (a local disk on the embedded
engine; a mounted volume such as ``/Volumes/...`` or ``/dbfs/...`` on a
cluster); object-store URLs are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sftmix.jobs.export_shards import (
    PART_SCHEMA,
    RESULT_SCHEMA,
    SHARD_TASK_SCHEMA,
    ShardSpec,
    gather_shards,
    scatter_parts,
)
from sftmix.jobs.mix import mix_versions
from sftmix.jobs.runtime.context import Runtime, StageResult, stage_main
from sftmix.transforms.dataset_card import CardFacts, render_card
from sftmix.transforms.export_format import ExportParams, first_bucket_count, next_bucket_count, shard_names

log = logging.getLogger("sftmix")

INPUT_TABLES = ("silver.candidates", "silver.selected", "silver.prompt_status", "silver.decisions")
LENGTH_COLUMNS = {
    "sft_mix": ("prompt_chars", "reasoning_chars", "answer_chars", "assistant_chars"),
    "cold_start": ("reasoning_chars", "answer_chars"),
}


class ExportError(RuntimeError):
    """The export cannot be written or does not add up."""


def export_root(rt: Runtime) -> str:
    path = rt.config.export.path or f"{rt.tables.storage.root.rstrip('/')}/export"
    if path.startswith("file://"):
        path = path[len("file://") :]
    if "://" in path:
        raise ExportError(
            f"export.path {path!r}: shards are written with local file I/O; use a local or mounted path"
        )
    return os.path.abspath(path)


def prepare_rows(df: DataFrame, params: ExportParams, seed: int) -> DataFrame:
    """The exported columns plus the hash key that places and orders each row."""
    copy_index = F.col("copy_index") if "copy_index" in df.columns else F.lit(0)
    messages = F.col("messages")
    if not params.include_system:
        messages = F.filter(messages, lambda m: m["role"] != "system")
    missing = [c for c in params.extra_columns if c not in df.columns]
    if missing:
        raise ExportError(
            f"export.extra_columns: no column {missing[0]!r} in the table (has: {', '.join(df.columns)})"
        )
    columns = [messages.alias("messages"), *[F.col(c) for c in params.extra_columns]]
    # The writer sorts by these inside each shard; they are written only when listed in extra_columns.
    if "candidate_id" not in params.extra_columns:
        columns.append(F.col("candidate_id"))
    if "copy_index" not in params.extra_columns:
        columns.append(copy_index.cast("int").alias("copy_index"))
    key = F.xxhash64(F.lit(seed), F.col("candidate_id"), copy_index.cast("int"))
    return df.select(*columns, key.alias("_key"))


def bucket_sizes(rows: DataFrame, total: int, shard_rows: int) -> tuple[int, dict[int, int]]:
    """The smallest bucket count from the first guess up whose largest bucket fits ``shard_rows``."""
    buckets = first_bucket_count(total, shard_rows)
    for _ in range(200):
        sizes = {
            int(r["b"]): int(r["n"])
            for r in rows.groupBy(F.pmod(F.col("_key"), F.lit(buckets)).alias("b"))
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        }
        if not sizes or max(sizes.values()) <= shard_rows:
            return buckets, sizes
        buckets = next_bucket_count(buckets)
    raise ExportError(f"no bucket count fits {shard_rows} rows per shard")  # unreachable for shard_rows >= 1


def write_dataset(
    rt: Runtime, rows: DataFrame, staging: str, params: ExportParams, total: int
) -> tuple[list[dict], int]:
    """Shard files (file, format, rows, bytes, sha256) and the bucket count that placed the rows."""
    buckets, sizes = bucket_sizes(rows, total, params.shard_rows)
    names = shard_names(sizes)
    columns = ("messages", *params.extra_columns)
    spec = ShardSpec(
        staging,
        params.split,
        len(names),
        tuple(params.formats),
        params.jsonl_compression,
        params.parquet_compression,
        columns,
    )
    try:
        parts = (
            rows.withColumn("_bucket", F.pmod(F.col("_key"), F.lit(buckets)))
            .mapInArrow(functools.partial(scatter_parts, spec=spec), PART_SCHEMA)
            .collect()
        )
        by_shard: dict[int, list[str]] = {}
        for part in parts:
            by_shard.setdefault(names[int(part["bucket"])], []).append(part["part"])
        tasks = rt.spark.createDataFrame(sorted(by_shard.items()), SHARD_TASK_SCHEMA)
        # Sail runs all partitions of a stage at once: as many partitions as shards held 41 shards in
        # memory together (10.7 GB RSS at 800k rows); a few partitions write their shards one by one.
        writers = params.parallel_shards or os.cpu_count() or 1
        files = (
            tasks.repartition(max(1, min(len(by_shard), writers)))
            .mapInArrow(functools.partial(gather_shards, spec=spec), RESULT_SCHEMA)
            .collect()
        )
    finally:
        shutil.rmtree(spec.parts_dir, ignore_errors=True)
    result = sorted((r.asDict() for r in files), key=lambda f: f["file"])
    for fmt in params.formats:
        written = sum(f["rows"] for f in result if f["format"] == fmt)
        if written != total or sum(p["rows"] for p in parts) != total:
            raise ExportError(f"{fmt} shards hold {written} rows, the table has {total}")
    return [{k: f[k] for k in ("file", "format", "rows", "bytes", "sha256")} for f in result], buckets


def stratum_stats(df: DataFrame, columns: tuple[str, ...]) -> tuple[dict[tuple[str, str], int], list[dict]]:
    """Rows per (kind, domain) and length figures per stratum and column, in one aggregate."""
    present = [c for c in columns if c in df.columns]
    aggs = [F.count(F.lit(1)).alias("n")]
    for c in present:
        # One percentile per call: Sail 0.7.2 rejects percentile_approx with a list of percentages.
        value = F.col(c).cast("double")
        aggs += [
            F.avg(value).alias(f"{c}__mean"),
            F.percentile_approx(value, 0.5, 1000).alias(f"{c}__p50"),
            F.percentile_approx(value, 0.9, 1000).alias(f"{c}__p90"),
            F.max(c).alias(f"{c}__max"),
        ]
    counts, stats = {}, []
    for r in df.groupBy("kind", "domain").agg(*aggs).collect():
        counts[(r["kind"], r["domain"])] = int(r["n"])
        for c in present:
            stats.append(
                {
                    "kind": r["kind"],
                    "domain": r["domain"],
                    "column": c,
                    "mean": float(r[f"{c}__mean"] or 0.0),
                    "p50": _int(r[f"{c}__p50"]),
                    "p90": _int(r[f"{c}__p90"]),
                    "max": _int(r[f"{c}__max"]),
                }
            )
    stats.sort(key=lambda s: (str(s["kind"]), str(s["domain"]), present.index(s["column"])))
    return counts, stats


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)


def strata_rows(rt: Runtime, counts: dict[tuple[str, str], int], dataset: str) -> list[dict[str, Any]]:
    """Rows per stratum, with the plan's asked / available / upsampled for the mix."""
    plan: dict[tuple[str, str], dict[str, Any]] = {}
    if rt.tables.exists("ops.mix_plan"):
        for r in rt.tables.read("ops.mix_plan").where(F.col("dataset") == dataset).collect():
            plan[(r["kind"], r["domain"])] = {
                "asked": r["asked"],
                "available": r["available"],
                "upsampled": r["upsampled"],
            }
    if dataset != "sft_mix":
        plan = {}  # the cold-start plan is keyed by the kinds it pools, not by each row's kind
    keys = sorted(
        set(counts) | {k for k, v in plan.items() if v["asked"]}, key=lambda k: (str(k[0]), str(k[1]))
    )
    return [{"kind": k[0], "domain": k[1], "rows": counts.get(k, 0), **plan.get(k, {})} for k in keys]


def table_facts(rt: Runtime, name: str) -> dict[str, Any]:
    """Delta version and row count of a table on path storage, read from its log by the deltalake
    package (no Spark job); empty on Parquet or catalog storage."""
    if rt.tables.table_format != "delta" or rt.tables.storage.use_catalog:
        return {}
    location = rt.tables.location(name)
    if "://" in location and not location.startswith("file://"):
        return {}
    try:
        from deltalake import DeltaTable

        table = DeltaTable(location)
        actions = table.get_add_actions(flatten=True)
        records = actions.column("num_records").to_pylist() if "num_records" in actions.schema.names else []
        rows = int(sum(r or 0 for r in records)) if records and None not in records else None
        return {"version": int(table.version()), "rows": rows}
    except Exception:  # noqa: BLE001 - a table another stage has not written yet, or no stats
        return {}


def input_tables(rt: Runtime, dataset: str) -> dict[str, dict[str, Any]]:
    return {
        name: table_facts(rt, name) for name in (*INPUT_TABLES, f"gold.{dataset}") if rt.tables.exists(name)
    }


def reject_reasons(rt: Runtime) -> dict[str, int]:
    if not rt.tables.exists("silver.decisions"):
        return {}
    exploded = rt.tables.read("silver.decisions").select(F.explode("reject_reasons").alias("reason"))
    return {
        r["reason"]: int(r["n"])
        for r in exploded.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()
    }


def thresholds(rt: Runtime) -> dict[str, Any]:
    cfg = rt.config
    sections = {
        name: dataclasses.asdict(getattr(cfg, name))
        for name in ("annotate", "verify", "select", "dedup", "decontaminate", "mix", "cold_start", "export")
    }
    sections["sources"] = [
        {
            "name": s.name,
            "kind": s.kind,
            "domain": s.domain,
            "language": s.language,
            "require_verification": s.require_verification,
        }
        for s in cfg.sources
    ]
    return sections


def chat_format(rt: Runtime, dataset: str) -> str:
    mix = rt.config.mix
    system = "kept" if rt.config.export.include_system else "dropped"
    if dataset == "cold_start":
        target = f"the assistant turn is the cold-start template `{rt.config.cold_start.template!r}`"
    else:
        target = (
            f"the assistant turn is `{mix.cot_template!r}` when the CoT is kept (reasoning rows; "
            f"non-reasoning domains per `mix.cot`: {json.dumps(mix.cot, sort_keys=True)}; none for prompts "
            f"of at most {mix.trivial_prompt_chars} characters), else `{mix.answer_template!r}`"
        )
    return (
        'Each row is `{"messages": [{"role": ..., "content": ...}, ...]}`: the prompt turns (system turns '
        f"{system}), then one assistant turn; {target}."
    )


def exported_versions(rt: Runtime, df: DataFrame) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The ops.mix_versions rows of the gold.sft_mix version being exported and of the one before it.

    The version is read from the table's own ``mix_version`` column (one value), so an export of a
    table written before versions were recorded names none.
    """
    if "mix_version" not in df.columns:
        return None, None
    first = df.select("mix_version").limit(1).collect()
    if not first or first[0]["mix_version"] is None:
        return None, None
    number = int(first[0]["mix_version"])
    versions = mix_versions(rt)
    found = [v for v in versions if v.mix_version == number]
    if not found:
        return None, None
    current = found[-1]
    previous = next((v for v in reversed(versions) if v.mix_version == current.previous_version), None)
    keep = ("mix_version", "run_id", "table_version", "stable", "rows", "kept_rows", "written_at")

    def facts(v: Any) -> dict[str, Any]:
        return {k: getattr(v, k) for k in keep}

    return facts(current), facts(previous) if previous else None


def export_dataset(rt: Runtime, dataset: str, staging: str, seed: int) -> dict[str, Any]:
    params = rt.config.export
    table = f"gold.{dataset}"
    if not rt.tables.exists(table):
        raise ExportError(f"export needs {table}: run the mix stage first")
    df = rt.tables.read(table)
    counts, lengths = stratum_stats(df, LENGTH_COLUMNS[dataset])
    total = sum(counts.values())
    rows = prepare_rows(df, params, seed)
    out = os.path.join(staging, dataset)
    files, buckets = write_dataset(rt, rows, out, params, total) if total else ([], 0)
    strata = strata_rows(rt, counts, dataset)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    inputs = input_tables(rt, dataset)
    version, previous = exported_versions(rt, df) if dataset == "sft_mix" else (None, None)
    facts = CardFacts(
        name=params.name,
        dataset=dataset,
        split=params.split,
        run_id=rt.run_id,
        created_at=created,
        engine=rt.engine.name,
        config_file=rt.config.config_file,
        config_hash=rt.config.config_hash,
        seed=seed,
        rows=total,
        chat_format=chat_format(rt, dataset),
        strata=strata,
        lengths=lengths,
        files=files,
        thresholds=thresholds(rt),
        reasons=reject_reasons(rt) if dataset == "sft_mix" else {},
        inputs=inputs,
        formats=list(params.formats),
        mix_version=version,
        previous_version=previous,
    )
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(render_card(facts))
    manifest = {
        "name": params.name,
        "dataset": dataset,
        "split": params.split,
        "rows": total,
        "run_id": rt.run_id,
        "created_at": created,
        "engine": rt.engine.name,
        "config_file": rt.config.config_file,
        "config_hash": rt.config.config_hash,
        "seed": seed,
        "shard_rows": params.shard_rows,
        # shard = the rank of pmod(xxhash64(seed, candidate_id, copy_index), buckets) among non-empty buckets
        "buckets": buckets,
        "strata": strata,
        "input_tables": inputs,
        "mix_version": version,
        "previous_mix_version": previous,
        "files": files,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return manifest


def replace_dir(source: str, target: str) -> None:
    """Move ``source`` to ``target``; a previous ``target`` goes only after the new one is in place."""
    old = None
    if os.path.exists(target):
        old = f"{os.path.dirname(target)}/.old-{os.path.basename(target)}-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    os.rename(source, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export(rt: Runtime) -> StageResult:
    params = rt.config.export
    root = export_root(rt)
    seed = params.seed if params.seed is not None else rt.config.seed
    # A killed export leaves its staging (or a replaced export) behind; one export writes a path at a time.
    for entry in os.listdir(root) if os.path.isdir(root) else []:
        if entry.startswith((".staging-", ".old-")):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    staging = os.path.join(root, f".staging-{uuid.uuid4().hex[:12]}")
    os.makedirs(staging, exist_ok=True)
    manifests = {}
    try:
        for dataset in params.datasets:
            manifests[dataset] = export_dataset(rt, dataset, staging, seed)
        for dataset in params.datasets:
            replace_dir(os.path.join(staging, dataset), os.path.join(root, dataset))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rows = sum(m["rows"] for m in manifests.values())
    for dataset, manifest in manifests.items():
        log.info(
            "export: %s: %d rows in %d files under %s",
            dataset,
            manifest["rows"],
            len(manifest["files"]),
            os.path.join(root, dataset),
        )
    return StageResult(
        rows_in=rows,
        rows_out=rows,
        details={
            "path": root,
            **{f"{d}_rows": m["rows"] for d, m in manifests.items()},
            **{f"{d}_files": len(m["files"]) for d, m in manifests.items()},
            "bytes": sum(f["bytes"] for m in manifests.values() for f in m["files"]),
        },
    )


def run(rt: Runtime) -> StageResult:
    return rt.run_stage("export", export)


if __name__ == "__main__":
    stage_main("export", export)
