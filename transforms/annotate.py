"""Per-candidate text signals and the decisions made from them (being built: issue 3)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class AnnotateParams:
    """Thresholds and switches of the annotate stage; fields arrive with the stage."""


def annotate_candidates(df: DataFrame, params: AnnotateParams) -> DataFrame:
    """Placeholder until issue 3 lands: starts the reject_reasons array."""
    return df.withColumn("reject_reasons", F.array().cast("array<string>"))


def decide_annotate(df: DataFrame, params: AnnotateParams) -> DataFrame:
    return df
