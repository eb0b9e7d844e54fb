"""Selection: policies, hash tie-breaks equal on both engines, silver.prompts reasons, RL pool, the stage."""

from __future__ import annotations

import dataclasses

from pyspark.sql import types as T

from sftmix.jobs.select_candidates import select
from sftmix.transforms.selection import (
    SelectParams,
    SelectPolicy,
    rank_candidates,
    rl_prompt_pool,
    selected_candidates,
)

from .conftest import read_back

MESSAGE = T.StructType([T.StructField("role", T.StringType()), T.StructField("content", T.StringType())])
SCHEMA = T.StructType(
    [
        T.StructField("candidate_id", T.StringType()),
        T.StructField("prompt_id", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("domain", T.StringType()),
        T.StructField("language", T.StringType()),
        T.StructField("system", T.StringType()),
        T.StructField("prompt", T.StringType()),
        T.StructField("messages", T.ArrayType(MESSAGE)),
        T.StructField("reference_answer", T.StringType()),
        T.StructField("completion", T.StringType()),
        T.StructField("judge_score", T.DoubleType()),
        T.StructField("verdict", T.StringType()),
        T.StructField("reject_reasons", T.ArrayType(T.StringType())),
    ]
)

# (candidate_id, prompt_id, source, kind, reference, completion, judge score, verdict, reject reasons)
CANDIDATES = [
    # p1: three correct (two tie on length: the hash decides), one incorrect -> pass rate 3/4
    ("a1", "p1", "math", "reasoning", "4", "xxxx", None, "correct", []),
    ("a2", "p1", "math", "reasoning", "4", "xx", None, "correct", []),
    ("a3", "p1", "math", "reasoning", "4", "yy", None, "correct", []),
    ("a4", "p1", "math", "reasoning", "4", "z", None, "incorrect", ["incorrect"]),
    # p2: every candidate incorrect
    ("b1", "p2", "math", "reasoning", "7", "x", None, "incorrect", ["incorrect"]),
    ("b2", "p2", "math", "reasoning", "7", "y", None, "incorrect", ["incorrect"]),
    # p3: the correct one is filtered (mixed language), the clean one is incorrect
    ("c1", "p3", "math", "reasoning", "1", "x", None, "correct", ["mixed_language"]),
    ("c2", "p3", "math", "reasoning", "1", "y", None, "incorrect", ["incorrect"]),
    # p4: every candidate filtered
    ("d1", "p4", "math", "reasoning", "2", "x", None, "correct", ["truncated"]),
    # p5: clean but not verified (a source that requires verification)
    ("e1", "p5", "math", "reasoning", "3", "x", None, "error", ["unverified"]),
    ("e2", "p5", "math", "reasoning", "3", "x", None, "incorrect", ["incorrect", "repetition"]),
    # q1: non-reasoning, no reference: top 1 by judge score, then length
    ("f1", "q1", "chat", "non_reasoning", None, "short", 0.5, "unverifiable", []),
    ("f2", "q1", "chat", "non_reasoning", None, "a longer answer", 0.5, "unverifiable", []),
    ("f3", "q1", "chat", "non_reasoning", None, "longest answer of all", None, "unverifiable", []),
    # p6: all correct -> pass rate 1, not an RL prompt
    ("g1", "p6", "math", "reasoning", "9", "x", None, "correct", []),
    ("g2", "p6", "math", "reasoning", "9", "y", None, "correct", []),
]


def candidates_frame(spark, rows=CANDIDATES):  # noqa: ANN001, ANN201
    full = [
        (
            cid,
            pid,
            src,
            kind,
            "math" if src == "math" else "chat",
            "en",
            None,
            f"prompt {pid}",
            [{"role": "user", "content": f"prompt {pid}"}],
            ref,
            completion,
            judge,
            verdict,
            reasons,
        )
        for cid, pid, src, kind, ref, completion, judge, verdict, reasons in rows
    ]
    return spark.createDataFrame(full, SCHEMA)


def test_select_stage_policies_ranks_and_prompt_figures(runtime_factory) -> None:
    """The stage end to end: silver.candidates in; silver.selected, silver.prompts, gold.rl_prompts out."""
    rt = runtime_factory()
    params = rt.config.select
    rt.tables.write(candidates_frame(rt.spark), "silver.candidates")
    result = select(rt)
    assert (result.rows_in, result.rows_out) == (16, 6)
    assert result.rejected == {"not_selected": 2}  # f1 and f3: eligible, not the top 1
    assert result.details["no_selection_reasons"] == {
        "all_incorrect": 1,
        "correct_filtered": 1,
        "all_filtered": 1,
        "unverified": 1,
    }

    selected_rows = read_back(rt, "silver.selected")
    assert set(selected_rows[0]) == set(SCHEMA.fieldNames()) | {"select_rank"}
    selected = {r["candidate_id"]: r["select_rank"] for r in selected_rows}
    # all_correct keeps every eligible candidate, ranked by completion length, then xxhash64(1234, id):
    # a2/a3 and g1/g2 tie on length, and the hash orders them the same on Sail and classic Spark.
    assert selected == {"a3": 1, "a2": 2, "a1": 3, "f2": 1, "g2": 1, "g1": 2}

    prompts = {r["prompt_id"]: r for r in read_back(rt, "silver.prompts")}
    figures = {
        pid: (r["n_candidates"], r["n_clean"], r["n_verified"], r["n_correct"], r["n_selected"])
        for pid, r in prompts.items()
    }
    assert figures == {
        "p1": (4, 4, 4, 3, 3),
        "p2": (2, 2, 2, 0, 0),
        "p3": (2, 1, 2, 1, 0),
        "p4": (1, 0, 1, 1, 0),
        "p5": (2, 1, 1, 0, 0),
        "q1": (3, 3, 0, 0, 1),
        "p6": (2, 2, 2, 2, 2),
    }
    assert {pid: r["no_selection_reason"] for pid, r in prompts.items() if r["no_selection_reason"]} == {
        "p2": "all_incorrect",
        "p3": "correct_filtered",
        "p4": "all_filtered",
        "p5": "unverified",
    }
    assert prompts["p1"]["pass_rate"] == 0.75 and prompts["q1"]["pass_rate"] is None
    assert prompts["p1"]["messages"][0]["content"] == "prompt p1" and prompts["p1"]["reference_answer"] == "4"

    # 0 < pass rate < 1 and a reference; p5 has one verdict only. Dedup's statuses restrict the pool.
    assert [r["prompt_id"] for r in read_back(rt, "gold.rl_prompts")] == ["p1", "p3"]
    status = rt.spark.createDataFrame(
        [("math", "p1", "near_duplicate"), ("math", "p3", "kept")],
        "source string, prompt_id string, dedup_status string",
    )
    pool = rl_prompt_pool(rt.tables.read("silver.prompts"), params, status)
    assert [r["prompt_id"] for r in pool.collect()] == ["p3"]


def test_prompt_texts_are_the_first_candidates(runtime_factory) -> None:
    """Candidates of a prompt that disagree on its texts: silver.prompts takes the first by id, once."""
    from pyspark.sql import functions as F

    rt = runtime_factory()
    # Rows in reverse id order, each with its own prompt and reference answer.
    frame = candidates_frame(rt.spark, list(reversed(CANDIDATES))).withColumns(
        {
            "prompt": F.concat("prompt", F.lit(" / "), "candidate_id"),
            "reference_answer": F.concat(
                F.coalesce("reference_answer", F.lit("")), F.lit(" / "), "candidate_id"
            ),
        }
    )
    rt.tables.write(frame, "silver.candidates")
    select(rt)
    prompts = read_back(rt, "silver.prompts")
    assert sorted((r["prompt_id"], r["prompt"], r["reference_answer"]) for r in prompts) == [
        ("p1", "prompt p1 / a1", "4 / a1"),
        ("p2", "prompt p2 / b1", "7 / b1"),
        ("p3", "prompt p3 / c1", "1 / c1"),
        ("p4", "prompt p4 / d1", "2 / d1"),
        ("p5", "prompt p5 / e1", "3 / e1"),
        ("p6", "prompt p6 / g1", "9 / g1"),
        ("q1", "prompt q1 / f1", " / f1"),
    ]


def test_top_k_and_source_override(runtime_factory) -> None:
    rt = runtime_factory()
    params = dataclasses.replace(
        rt.config.select,
        kinds={"reasoning": SelectPolicy("top_k", k=2, order_by=["length(completion) desc"])},
        sources={"chat": SelectPolicy("all_correct", max_per_prompt=2, order_by=["judge_score desc"])},
    )
    frame = candidates_frame(rt.spark)
    selected = {
        r["candidate_id"] for r in selected_candidates(rank_candidates(frame, params, seed=1234)).collect()
    }
    assert {"a1"} < selected and len(selected & {"a1", "a2", "a3"}) == 2  # top 2 by length: a1, then a tie
    assert len(selected & {"f1", "f2", "f3"}) == 2 and "f3" not in selected  # judge scores first, nulls last


def test_params_validate() -> None:
    import pytest

    with pytest.raises(ValueError):
        SelectParams(rl_min_pass_rate=0.5, rl_max_pass_rate=0.5)
    with pytest.raises(ValueError):
        SelectPolicy("top_k", k=0)
