"""``sftmix maintain``: compact small files and vacuum unreferenced ones in every Delta table.

Stages rewrite whole tables (overwrite) or append small batches (ingest, the
ops logs), so files pile up: old versions' files after overwrites, many small
files after appends. Sail has no ``OPTIMIZE``/``VACUUM`` (DESIGN.md), so on path
storage the ``deltalake`` package does both; on catalog tables (Databricks,
delta-spark) the engine's SQL does. Parquet tables (classic local Spark) have
no log to compact against and are skipped.

Vacuum removes the files that time travel to versions older than
``retain_hours`` needs; the default keeps a week, as Delta does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sftmix.jobs.runtime.context import Runtime
from sftmix.jobs.runtime.tables import TABLES

log = logging.getLogger("sftmix")


@dataclass
class Maintained:
    table: str
    files_before: int | None
    files_after: int | None
    compacted: int  # files removed by compaction
    vacuumed: int  # unreferenced files deleted
    note: str = ""


def maintain(rt: Runtime, retain_hours: float = 168.0) -> list[Maintained]:
    done = []
    for name in TABLES:
        if not rt.tables.exists(name):
            continue
        if rt.tables.table_format != "delta":
            done.append(Maintained(name, None, None, 0, 0, "parquet: nothing to compact or vacuum"))
        elif rt.tables.storage.use_catalog or "://" in rt.tables.location(name).removeprefix("file://"):
            done.append(_maintain_sql(rt, name, retain_hours))
        else:
            path = rt.tables.location(name).removeprefix("file://")
            done.append(_maintain_path(path, name, retain_hours, rt.tables.storage.target_file_bytes))
        item = done[-1]
        log.info(
            "maintain %s: %s files -> %s (compacted %d, vacuumed %d)%s",
            name, item.files_before, item.files_after, item.compacted, item.vacuumed,
            f" [{item.note}]" if item.note else "",
        )
    return done


def _maintain_path(path: str, name: str, retain_hours: float, target_bytes: int) -> Maintained:
    from deltalake import DeltaTable

    table = DeltaTable(path)
    before = len(table.file_uris())
    # Compacted files keep the stages' file size: readers hold a file's row group in memory.
    metrics = table.optimize.compact(target_size=target_bytes)
    # The retention check guards readers of old snapshots; the caller chose retain_hours knowingly.
    deleted = table.vacuum(retention_hours=int(retain_hours), enforce_retention_duration=False, dry_run=False)
    after = len(DeltaTable(path).file_uris())
    return Maintained(name, before, after, int(metrics.get("numFilesRemoved", 0)), len(deleted))


def _maintain_sql(rt: Runtime, name: str, retain_hours: float) -> Maintained:
    target = rt.tables.qualified(name) if rt.tables.storage.use_catalog else f"delta.`{rt.tables.location(name)}`"
    rt.spark.sql(f"OPTIMIZE {target}")
    rt.spark.sql(f"VACUUM {target} RETAIN {int(retain_hours)} HOURS")
    return Maintained(name, None, None, 0, 0, "OPTIMIZE + VACUUM in SQL")
