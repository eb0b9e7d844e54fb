"""``sftmix diff [--from V] [--to V]``: rows added to and removed from ``gold.sft_mix`` between two versions.

A version is a mix version number (``ops.mix_versions.mix_version``) or the
run id that wrote it; by default the previous version against the latest.
Both versions are read from ``ops.mix_history`` (narrow rows; the same on
Delta and Parquet), compared on the row key (candidate_id, copy_index), and
every changed row gets a reason:

- removed: ``displaced_by_dedup`` (its prompt is now a duplicate or a near
  duplicate: another prompt of the cluster won), ``rejected`` (a reason in
  ``silver.decisions`` now: a candidate-level one, ``not_selected``,
  ``contaminated``; ``detail`` lists them), ``quota`` (still eligible, its
  stratum holds fewer rows now, or the row is a copy of an upsampled
  candidate that keeps fewer copies: ``detail`` ``fewer_copies``), ``redrawn`` (still eligible, quota not
  smaller: a from-scratch draw picked other rows), ``gone`` (no longer in
  ``silver.candidates``);
- added: ``replacement`` (takes the place of a removed row of its stratum)
  or ``quota`` (its stratum holds more rows now); in each stratum the first
  added rows in hash order count as replacements.

Reasons are looked up in the current silver tables, which describe the latest
mix: for an older ``--to`` they say why a row is out *now*. The rows go to
``ops.mix_diff`` (replaced by each diff) for SQL; the per-stratum, per-reason
counts are printed, and in every stratum added - removed equals the change of
its row count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sftmix.jobs.mix import MixVersion, mix_versions, version_rows
from sftmix.jobs.runtime.context import Runtime
from sftmix.transforms.mix_plan import Stratum

log = logging.getLogger("sftmix")

KEY = ["candidate_id", "copy_index"]
DEDUP_DISPLACED = ("duplicate_prompt", "near_duplicate")


class DiffError(RuntimeError):
    """The versions asked for do not exist."""


@dataclass
class MixDiff:
    """Two versions and the changed rows' counts: (change, kind, domain, reason) -> rows."""

    from_version: MixVersion
    to_version: MixVersion
    from_rows: dict[Stratum, int]
    to_rows: dict[Stratum, int]
    counts: dict[tuple[str, str, str, str], int] = field(default_factory=dict)

    def changed(self, change: str, stratum: Stratum | None = None) -> int:
        return sum(
            n for (c, k, d, _), n in self.counts.items() if c == change and (stratum is None or (k, d) == stratum)
        )


def resolve(versions: list[MixVersion], ref: str | None, default: MixVersion) -> MixVersion:
    """A version by number or by run id (the last write of that run)."""
    if ref is None:
        return default
    if ref.strip().lstrip("-").isdigit():
        found = [v for v in versions if v.mix_version == int(ref)]
    else:
        found = [v for v in versions if v.run_id == ref]
    if not found:
        known = ", ".join(f"{v.mix_version} ({v.run_id})" for v in versions)
        raise DiffError(f"no mix version {ref!r}; recorded: {known}")
    return found[-1]


def pick_versions(rt: Runtime, from_ref: str | None, to_ref: str | None) -> tuple[MixVersion, MixVersion]:
    versions = mix_versions(rt)
    if not versions:
        raise DiffError("no mix versions recorded (ops.mix_versions): run the mix stage first")
    to = resolve(versions, to_ref, versions[-1])
    earlier = [v for v in versions if v.mix_version < to.mix_version]
    if from_ref is None and not earlier:
        raise DiffError(f"mix version {to.mix_version} has no previous version to compare with")
    frm = resolve(versions, from_ref, earlier[-1] if earlier else to)
    return frm, to


def stratum_counts(rows: DataFrame) -> dict[Stratum, int]:
    return {
        (str(r["kind"]), str(r["domain"])): int(r["n"])
        for r in rows.groupBy("kind", "domain").agg(F.count(F.lit(1)).alias("n")).collect()
    }


def _in_strata(strata: list[Stratum]) -> Column:
    cond = F.lit(False)
    for kind, domain in strata:
        cond = cond | ((F.col("kind") == kind) & (F.col("domain") == domain))
    return cond


def _per_stratum(values: dict[Stratum, int]) -> Column:
    expr = F.lit(0)
    for (kind, domain), n in values.items():
        expr = F.when((F.col("kind") == kind) & (F.col("domain") == domain), F.lit(n)).otherwise(expr)
    return expr


def removed_reasons(rt: Runtime, removed: DataFrame, new: DataFrame, shrank: list[Stratum]) -> DataFrame:
    """Removed rows with ``reason`` and ``detail``, looked up in silver.decisions and the newer version."""
    # A copy removed while the candidate stays in the newer version: upsampling spread over more rows.
    staying = new.select("candidate_id").distinct().withColumn("_stays", F.lit(True))
    removed = removed.join(staying, "candidate_id", "left")
    if rt.tables.exists("silver.decisions"):
        decisions = rt.tables.read("silver.decisions").select(
            "candidate_id", F.lit(True).alias("_known"), "reject_reasons", "dedup_status"
        )
        rows = removed.join(decisions, "candidate_id", "left")
    else:
        rows = removed.select(
            "*",
            F.lit(None).cast("boolean").alias("_known"),
            F.lit(None).cast("array<string>").alias("reject_reasons"),
            F.lit(None).cast("string").alias("dedup_status"),
        )
    # not_sampled only says the draw passed the row over: it is no reason of its own.
    reasons = F.coalesce("reject_reasons", F.array().cast("array<string>"))
    other = F.array_sort(F.filter(reasons, lambda r: r != F.lit("not_sampled")))
    displaced = F.col("dedup_status").isin(*DEDUP_DISPLACED)
    reason = (
        F.when(F.col("_known").isNull(), F.lit("gone"))
        .when(displaced, F.lit("displaced_by_dedup"))
        .when(F.size(other) > 0, F.lit("rejected"))
        .when(_in_strata(shrank) | F.col("_stays").isNotNull(), F.lit("quota"))
        .otherwise(F.lit("redrawn"))
    )
    detail = (
        F.when(F.col("_known").isNull(), F.lit(None).cast("string"))
        .when(displaced, F.col("dedup_status"))
        .when(F.size(other) > 0, F.array_join(other, ","))
        .when(F.col("_stays").isNotNull(), F.lit("fewer_copies"))
    )
    columns = [c for c in removed.columns if c != "_stays"]
    return rows.select(*columns, reason.alias("reason"), detail.alias("detail"))


def added_reasons(added: DataFrame, removed_counts: dict[Stratum, int]) -> DataFrame:
    """Added rows: the first (hash order) as many as were removed from the stratum replace them."""
    order = Window.partitionBy("kind", "domain").orderBy("sample_key", "candidate_id", "copy_index")
    rank = F.row_number().over(order)
    reason = F.when(rank <= _per_stratum(removed_counts), F.lit("replacement")).otherwise(F.lit("quota"))
    return added.select("*", reason.alias("reason"), F.lit(None).cast("string").alias("detail"))


def run_diff(rt: Runtime, from_ref: str | None = None, to_ref: str | None = None) -> MixDiff:
    frm, to = pick_versions(rt, from_ref, to_ref)
    old, new = version_rows(rt, frm), version_rows(rt, to)
    from_rows, to_rows = stratum_counts(old), stratum_counts(new)
    removed = old.join(new.select(*KEY), KEY, "left_anti")
    added = new.join(old.select(*KEY), KEY, "left_anti")
    removed_counts = stratum_counts(removed)
    shrank = [s for s, n in from_rows.items() if to_rows.get(s, 0) < n]
    if to.mix_version != mix_versions(rt)[-1].mix_version:
        log.info("diff: reasons come from the current silver tables, which describe the latest mix")
    changes = (
        removed_reasons(rt, removed, new, shrank)
        .withColumn("change", F.lit("removed"))
        .unionByName(added_reasons(added, removed_counts).withColumn("change", F.lit("added")))
        .select(
            F.lit(frm.mix_version).cast("long").alias("from_version"),
            F.lit(to.mix_version).cast("long").alias("to_version"),
            F.lit(frm.run_id).alias("from_run_id"),
            F.lit(to.run_id).alias("to_run_id"),
            "change",
            "kind",
            "domain",
            "reason",
            "detail",
            "candidate_id",
            F.col("copy_index").cast("int").alias("copy_index"),
            "source",
            "prompt_id",
        )
    )
    rt.tables.write(changes, "ops.mix_diff")
    counts = {
        (r["change"], str(r["kind"]), str(r["domain"]), r["reason"]): int(r["n"])
        for r in rt.tables.read("ops.mix_diff")
        .groupBy("change", "kind", "domain", "reason")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    return MixDiff(frm, to, from_rows, to_rows, counts)


def format_diff(diff: MixDiff) -> str:
    frm, to = diff.from_version, diff.to_version

    def label(v: MixVersion) -> str:
        delta = f", Delta version {v.table_version}" if v.table_version is not None else ""
        return f"version {v.mix_version} (run {v.run_id}{delta}, {v.rows:,} rows)"

    lines = [f"gold.sft_mix: {label(frm)} -> {label(to)}", ""]
    header = ("kind", "domain", "from", "to", "added", "removed")
    table = [header]
    strata = sorted(set(diff.from_rows) | set(diff.to_rows))
    for s in strata:
        table.append(
            (
                s[0],
                s[1],
                f"{diff.from_rows.get(s, 0):,}",
                f"{diff.to_rows.get(s, 0):,}",
                f"{diff.changed('added', s):,}",
                f"{diff.changed('removed', s):,}",
            )
        )
    table.append(
        (
            "total",
            "",
            f"{sum(diff.from_rows.values()):,}",
            f"{sum(diff.to_rows.values()):,}",
            f"{diff.changed('added'):,}",
            f"{diff.changed('removed'):,}",
        )
    )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines += [
        "  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in table
    ]
    lines += ["", "per reason:"]
    for (change, kind, domain, reason), n in sorted(diff.counts.items()):
        lines.append(f"  {change:<8} {kind}/{domain}: {reason} {n:,}")
    if not diff.counts:
        lines.append("  (no rows changed)")
    lines += ["", "rows: SELECT * FROM ops.mix_diff"]
    return "\n".join(lines)
