"""``sftmix whatif key=value ...``: re-decide annotate's reasons with other thresholds, from stored signals.

Reads only the signal and decision columns of ``silver.candidates`` (never a
text column: no reasoning, no answer, no completion) and reruns
``decide_annotate`` with the changed ``annotate.*`` keys; no model runs.
Prints, per stratum (kind, domain): candidates kept now and after, newly
dropped and restored, prompts with at least one kept candidate (what select
can draw from), and the mix quota of that stratum, so one can see whether
the quotas would still be met.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sftmix.jobs.runtime.config import Config, build
from sftmix.jobs.runtime.context import Runtime
from sftmix.transforms.annotate import AnnotateParams, decide_annotate, decision_columns

STRATUM = ("kind", "domain")


def whatif_config(config: Config, changes: dict[str, Any]) -> Config:
    """``config`` with dotted ``annotate.*`` changes applied, validated like a config file."""
    wrong = sorted(k for k in changes if not k.startswith("annotate."))
    if wrong:
        raise SystemExit(f"whatif moves annotate thresholds only (annotate.*), got {', '.join(wrong)}")
    raw = dataclasses.asdict(config.annotate)
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split(".")[1:]
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    annotate = build(AnnotateParams, raw, key="annotate", file="whatif arguments")
    return dataclasses.replace(config, annotate=annotate)


def compare(stored: DataFrame, config: Config) -> DataFrame:
    """Per stratum: kept before and after, newly dropped, restored, prompts left to select from."""
    # One pass, no join: the size before is kept in a column the decision does not touch.
    joined = stored.withColumn("_before", F.size("reject_reasons")).transform(decide_annotate, config.annotate)
    joined = joined.withColumn("_after", F.size("reject_reasons"))
    kept_before, kept_after = F.col("_before") == 0, F.col("_after") == 0
    prompt = F.concat_ws("\x1f", "source", "prompt_id")
    return (
        joined.groupBy(*STRATUM)
        .agg(
            F.count(F.lit(1)).alias("candidates"),
            F.sum(kept_before.cast("long")).alias("kept_now"),
            F.sum(kept_after.cast("long")).alias("kept_after"),
            F.sum((kept_before & ~kept_after).cast("long")).alias("newly_dropped"),
            F.sum((~kept_before & kept_after).cast("long")).alias("restored"),
            F.countDistinct(F.when(kept_after, prompt)).alias("prompts_after"),
        )
        .orderBy(*STRATUM)
    )


def run_whatif(rt: Runtime, changes: dict[str, Any]) -> list[dict[str, Any]]:
    config = whatif_config(rt.config, changes)
    stored = rt.tables.read("silver.candidates").select(*decision_columns())
    rows = [r.asDict() for r in compare(stored, config).collect()]
    asked, _ = config.mix.asked()
    for row in rows:
        quota = asked.get((row["kind"], row["domain"]))
        row["mix_quota"] = quota
        row["quota_met"] = None if quota is None else row["prompts_after"] >= quota
    return rows


def print_whatif(rows: list[dict[str, Any]], changes: dict[str, Any]) -> None:
    print("what if " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    header = ("kind", "domain", "candidates", "kept_now", "kept_after", "newly_dropped", "restored",
              "prompts_after", "mix_quota", "quota_met")
    table = [header] + [tuple("" if r[h] is None else str(r[h]) for h in header) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
