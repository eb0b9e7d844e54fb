"""Answer verification signals and verdict decisions (being built: issue 4)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame


@dataclass(frozen=True)
class VerifyParams:
    """Parameters of verification; fields arrive with the stage."""


def verify_candidates(df: DataFrame, params: VerifyParams) -> DataFrame:
    return df


def decide_verification(df: DataFrame, params: VerifyParams, requiring_sources: list[str]) -> DataFrame:
    return df
