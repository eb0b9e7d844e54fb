"""The pipeline: stages in flow order, run one after another on one runtime."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sftmix.jobs import annotate, dedup, ingest, select_candidates
from sftmix.jobs import export as export_stage
from sftmix.jobs import mix as mix_stage
from sftmix.jobs.runtime.context import Runtime, StageResult

log = logging.getLogger("sftmix")

# Stage name -> body(rt) -> StageResult, in flow order.
STAGES: dict[str, Callable[[Runtime], StageResult]] = {
    "ingest": ingest.ingest,
    "annotate": annotate.annotate,
    "select": select_candidates.select,
    "dedup": dedup.dedup,
    "mix": mix_stage.mix,
    "export": export_stage.export,
}


class StageSelectionError(ValueError):
    """``--stages`` / ``--from`` name a stage that does not exist or select nothing."""


def plan_stages(stages: list[str] | None = None, from_stage: str | None = None) -> list[str]:
    """The stages to run, in flow order: a subset (``--stages``), cut at ``--from``."""
    named = list(stages or []) + ([from_stage] if from_stage else [])
    unknown = [s for s in named if s not in STAGES]
    if unknown:
        raise StageSelectionError(f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGES)}")
    ordered = [s for s in STAGES if not stages or s in stages]
    if from_stage:
        if from_stage not in ordered:
            raise StageSelectionError(f"--from {from_stage} is not among the selected stages {ordered}")
        ordered = ordered[ordered.index(from_stage):]
    return ordered


def run_pipeline(
    rt: Runtime, stages: list[str] | None = None, from_stage: str | None = None
) -> dict[str, StageResult]:
    """Run the selected stages under one run id; ``ops.runs`` brackets the run, each stage logs a line.

    Ingest skips files it already has; annotate, select and dedup merge only the
    rows of new input (``rt.full_rebuild``: all of it), each merge step idempotent;
    mix and export replace what they write (a Delta overwrite is one atomic
    commit). So rerunning a stage, or resuming with ``from_stage`` after a
    failure, leaves the tables as one clean run would.
    """
    ordered = plan_stages(stages, from_stage)
    results = rt.run_stages([(name, STAGES[name]) for name in ordered])
    log.info("%s", format_summary(results, rt))
    return results


def format_summary(results: dict[str, StageResult], rt: Runtime) -> str:
    lines = [f"run {rt.run_id}: {len(results)} stage(s)", f"  {'stage':<10} {'rows in':>12} {'rows out':>12}"]
    lines += [f"  {name:<10} {r.rows_in:>12,} {r.rows_out:>12,}" for name, r in results.items()]
    return "\n".join(lines)
