"""Console-script entry points, one per stage: the Databricks wheel tasks' ``entry_point``s.

``sftmix-ingest --conf conf/databricks.yaml --run-id 123`` does what
``spark-submit jobs/ingest.py --conf ...`` and ``sftmix ingest --conf ...`` do:
the same stage function from ``pipeline.STAGES``, under ``stage_main``. The
stage is looked up when the task starts, so this module names every planned
stage even while one is still being built, and a missing one fails with its
name rather than at import.
"""

from __future__ import annotations

import sys

from sftmix.jobs.runtime.context import stage_main

# The flow order of CONTRIBUTING.md; databricks resources/*.job.yml has one task per name.
PLANNED_STAGES = ("ingest", "annotate", "select", "dedup", "mix", "export")


def run_stage_entry(stage: str, argv: list[str] | None = None) -> int:
    from sftmix.jobs.pipeline import STAGES

    if stage not in STAGES:
        print(f"sftmix-{stage}: this build has no {stage} stage (stages: {', '.join(STAGES)})", file=sys.stderr)
        return 2
    stage_main(stage, STAGES[stage], argv)
    return 0


def ingest() -> int:
    return run_stage_entry("ingest")


def annotate() -> int:
    return run_stage_entry("annotate")


def select() -> int:
    return run_stage_entry("select")


def dedup() -> int:
    return run_stage_entry("dedup")


def mix() -> int:
    return run_stage_entry("mix")


def export() -> int:
    return run_stage_entry("export")
