"""The pipeline: stages in flow order, run one after another on one runtime."""

from __future__ import annotations

from collections.abc import Callable

from sftmix.jobs import annotate, dedup, ingest
from sftmix.jobs import export as export_stage
from sftmix.jobs import mix as mix_stage
from sftmix.jobs.runtime.context import Runtime, StageResult

# Stage name -> body(rt) -> StageResult, in flow order.
STAGES: dict[str, Callable[[Runtime], StageResult]] = {
    "ingest": ingest.ingest,
    "annotate": annotate.annotate,
    "dedup": dedup.dedup,
    "mix": mix_stage.mix,
    "export": export_stage.export,
}


def run_pipeline(rt: Runtime, stages: list[str], from_stage: str | None = None) -> dict[str, StageResult]:
    unknown = [s for s in stages + ([from_stage] if from_stage else []) if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGES)}")
    ordered = [s for s in STAGES if s in stages]
    if from_stage:
        ordered = ordered[ordered.index(from_stage):] if from_stage in ordered else []
    return {stage: rt.run_stage(stage, STAGES[stage]) for stage in ordered}
