"""Connected components of an undirected edge list, with the DataFrame API only.

Large-star / small-star (Kiveris et al., "Connected Components in MapReduce
and Beyond", 2014), as text-dedup runs it, without RDDs or GraphFrames: each
round turns the edge list into stars around smaller and smaller node ids;
when a full round leaves the edge set unchanged, every edge points from a
node to the least id of its component. O(log n) rounds in practice.

The loop cuts the plan every round through ``materialize`` (a function the
job passes in: write to a scratch table, read it back). Sail has no
``checkpoint``, and a lazily chained loop doubled its plan each round
(DESIGN.md: 10.2 s by round 8). This module does no I/O itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger("sftmix")

Materialize = Callable[[DataFrame], DataFrame]


class NoConvergence(RuntimeError):
    """The edge set still changed after ``max_rounds`` rounds."""


@dataclass(frozen=True)
class ComponentsResult:
    labels: DataFrame  # node, component (least node id of its component); nodes of the edges only
    rounds: int


def _undirected(edges: DataFrame) -> DataFrame:
    """Each edge once as (u, v) with u > v, self-loops dropped."""
    return (
        edges.select(F.greatest("a", "b").alias("u"), F.least("a", "b").alias("v"))
        .where(F.col("u") != F.col("v"))
        .distinct()
    )


def large_star(edges: DataFrame) -> DataFrame:
    """Connect every larger neighbour of u to the least node of u's neighbourhood (u included)."""
    both = edges.select("u", "v").unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    least = both.groupBy("u").agg(F.least(F.min("v"), F.first("u")).alias("m"))
    out = both.where(F.col("v") > F.col("u")).join(least, "u").select(F.col("v").alias("a"), F.col("m").alias("b"))
    return _undirected(out)


def small_star(edges: DataFrame) -> DataFrame:
    """Connect u and its smaller neighbours to the least of them."""
    least = edges.groupBy("u").agg(F.min("v").alias("m"))
    joined = edges.join(least, "u")
    out = joined.select(F.col("v").alias("a"), F.col("m").alias("b")).unionByName(
        joined.select(F.col("u").alias("a"), F.col("m").alias("b"))
    )
    return _undirected(out)


def _fingerprint(edges: DataFrame) -> tuple[int, int]:
    """(count, xor-free checksum) of an edge set: equal sets give equal pairs; cheap, one aggregate."""
    row = edges.agg(F.count("*").alias("n"), F.sum(F.xxhash64("u", "v") % 1_000_000_007).alias("s")).collect()[0]
    return int(row["n"]), int(row["s"] or 0)


def connected_components(edges: DataFrame, materialize: Materialize, max_rounds: int = 64) -> ComponentsResult:
    """Label every node of ``edges`` (columns ``a``, ``b``: bigint node ids) with its component's least id."""
    # The input is not materialized on its own (the caller's edges are already a table): round 1
    # reads it, and the loop stops when a round leaves its input unchanged (so >= 2 rounds).
    current = _undirected(edges)
    state = (-1, 0)
    for round_no in range(1, max_rounds + 1):
        current = materialize(small_star(large_star(current)))
        new_state = _fingerprint(current)
        log.debug("connected components: round %d, %d edges", round_no, new_state[0])
        if new_state == state:
            labels = current.select(F.col("u").alias("node"), F.col("v").alias("component")).unionByName(
                current.select(F.col("v").alias("node"), F.col("v").alias("component"))
            )
            return ComponentsResult(labels.groupBy("node").agg(F.min("component").alias("component")), round_no)
        state = new_state
    raise NoConvergence(f"connected components did not converge in {max_rounds} rounds")
