"""The mix stage: exact strata, the draw identical to a pure-Python reference (so equal on both engines),
chat rendering, and silver.decisions whose counts add up."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import xxhash
from pyspark.sql import types as T

from sftmix.jobs.mix import find_cutoffs, mix, read_prompt_status
from sftmix.transforms.decisions import build_decisions
from sftmix.transforms.mix import MixParams, draw_mix, mix_pool, render_sft, with_sample_key
from sftmix.transforms.mix_plan import MixShortfallError, plan_mix
from sftmix.transforms.paragraphs import paragraph_lengths

MESSAGE = T.StructType([T.StructField("role", T.StringType()), T.StructField("content", T.StringType())])
CANDIDATE_SCHEMA = T.StructType(
    [
        T.StructField("candidate_id", T.StringType()),
        T.StructField("prompt_id", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("domain", T.StringType()),
        T.StructField("system", T.StringType()),
        T.StructField("prompt", T.StringType()),
        T.StructField("messages", T.ArrayType(MESSAGE)),
        T.StructField("reasoning", T.StringType()),
        T.StructField("answer", T.StringType()),
        T.StructField("reasoning_chars", T.LongType()),
        T.StructField("answer_chars", T.LongType()),
        T.StructField("paragraph_chars", T.ArrayType(T.IntegerType())),
        T.StructField("verdict", T.StringType()),
        T.StructField("reject_reasons", T.ArrayType(T.StringType())),
    ]
)
SELECTED_SCHEMA = T.StructType([*CANDIDATE_SCHEMA.fields, T.StructField("select_rank", T.IntegerType())])
STATUS_SCHEMA = T.StructType(
    [T.StructField(n, T.StringType()) for n in ("source", "prompt_id", "dedup_status", "duplicate_of")]
)
PROMPTS = {
    ("reasoning", "math"): 30,
    ("reasoning", "code"): 16,
    ("reasoning", "stem"): 5,
    ("reasoning", "logic"): 3,
    ("non_reasoning", "writing"): 10,
    ("non_reasoning", "factual_qa"): 8,
    ("non_reasoning", "self_cognition"): 4,
    ("non_reasoning", "translation"): 6,
}
DROPPED = {
    ("src_math", "math-0"): "duplicate_prompt",
    ("src_math", "math-1"): "near_duplicate",
    ("src_code", "code-0"): "contaminated",
}
SEED = 1234


def defaults_conf(tmp_path) -> str:
    """A config of defaults only: these tests do not depend on other stages' sections of base.yaml."""
    path = tmp_path / "defaults.yaml"
    path.write_text(f"seed: {SEED}\n")
    return str(path)


def spark_xxhash64(seed: int, *values: str | int) -> int:
    """Spark's ``xxhash64(lit(seed), ...)``: XXH64 chained over the values, seed 42, as a signed long."""
    h = xxhash.xxh64_intdigest(struct.pack("<i", seed), seed=42)
    for value in values:
        data = struct.pack("<i", value) if isinstance(value, int) else value.encode()
        h = xxhash.xxh64_intdigest(data, seed=h)
    return h - (1 << 64) if h >= 1 << 63 else h


def reasoning_text(n_paragraphs: int, width: int, tag: str) -> str:
    step = ("We check the next case carefully and keep every quantity exact. " * 40)[: width - len(tag) - 8]
    return "\n\n".join(f"Step {i} {tag}: {step}" for i in range(n_paragraphs))


def candidate(kind: str, domain: str, p: int, i: int) -> dict[str, Any]:
    source, prompt_id = f"src_{domain}", f"{domain}-{p}"
    reasons = ["truncated"] if kind == "reasoning" and i == 1 and p % 3 == 0 else []
    if (kind, domain, p) == ("non_reasoning", "writing", 0):
        reasons = ["wrong_language", "long_paragraph"]
    prompt = (
        "Who are you?" if domain == "self_cognition" and p % 2 == 0 else f"Task {p} in {domain}: explain it."
    )
    if kind == "reasoning":
        # Readable (short paragraphs) except every fourth prompt's second candidate: one wall of text.
        reasoning = (
            reasoning_text(1, 900, f"{p}.{i}")
            if (p % 4 == 3 and i == 1)
            else reasoning_text(6, 120, f"{p}.{i}")
        )
        answer = f"Summing up the steps for task {p}, the result is \\boxed{{{p}}}."
    else:
        reasoning = f"Plan for {p}: outline, then write." if domain in ("writing", "translation") else None
        answer = f"Answer {p} for {domain}."
    system = "You are a helpful assistant." if p % 2 else None
    messages = None if p % 5 == 0 else ([("system", system)] if system else []) + [("user", prompt)]
    return {
        "candidate_id": f"{source}:{prompt_id}:{i}",
        "prompt_id": prompt_id,
        "source": source,
        "kind": kind,
        "domain": domain,
        "system": system,
        "prompt": prompt,
        "messages": messages,
        "reasoning": reasoning,
        "answer": answer,
        "reasoning_chars": len(reasoning or ""),
        "answer_chars": len(answer),
        "paragraph_chars": paragraph_lengths(reasoning),
        "verdict": "correct",
        "reject_reasons": reasons,
    }


def upstream_rows() -> tuple[list[dict], list[dict], list[tuple]]:
    """(candidates, selected, prompt_status) of a small pipeline run with every kind of outcome."""
    candidates, selected = [], []
    for (kind, domain), prompts in PROMPTS.items():
        for p in range(prompts):
            for i in range(2 if kind == "reasoning" else 1):
                row = candidate(kind, domain, p, i)
                candidates.append(row)
                # select keeps clean candidates, only the first of odd prompts (so some are not_selected)
                if not row["reject_reasons"] and (i == 0 or p % 2 == 0):
                    selected.append({**row, "select_rank": i + 1})
    status = [
        (c["source"], c["prompt_id"], DROPPED.get((c["source"], c["prompt_id"]), "kept"), None)
        for c in candidates
        if c["candidate_id"].endswith(":0")
    ]
    return candidates, selected, status


def _tuples(rows: list[dict], schema: T.StructType) -> list[tuple]:
    return [tuple(r[f.name] for f in schema.fields) for r in rows]


def write_upstream(rt, with_status: bool = True) -> tuple[list[dict], list[dict]]:
    candidates, selected, status = upstream_rows()
    spark = rt.spark
    rt.tables.write(
        spark.createDataFrame(_tuples(candidates, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA), "silver.candidates"
    )
    rt.tables.write(
        spark.createDataFrame(_tuples(selected, SELECTED_SCHEMA), SELECTED_SCHEMA), "silver.selected"
    )
    if with_status:
        rt.tables.write(spark.createDataFrame(status, STATUS_SCHEMA), "silver.prompt_status")
    return candidates, selected


def expected_draw(selected: list[dict], taken: dict[tuple[str, str], int], with_status: bool) -> set[str]:
    """The mix computed in plain Python: eligible rows per stratum in (xxhash64, id) order, first `taken`."""
    pool: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for row in selected:
        if with_status and (row["source"], row["prompt_id"]) in DROPPED:
            continue
        key = (spark_xxhash64(SEED, row["candidate_id"]), row["candidate_id"])
        pool.setdefault((row["kind"], row["domain"]), []).append(key)
    return {cid for stratum, rows in pool.items() for _, cid in sorted(rows)[: taken.get(stratum, 0)]}


MIX_OVERRIDES = {
    "seed": SEED,
    "mix__total": 60,
    # 45 reasoning rows: math 22, code 11, stem 6, logic 6 (4 eligible: 2 short); 15 non-reasoning: 6, 5, 1, 3
    "mix__strata": {
        "reasoning": {"share": 0.75, "domains": {"math": 10, "code": 5, "stem": 3, "logic": 3}},
        "non_reasoning": {
            "share": 0.25,
            "domains": {"writing": 4, "factual_qa": 3, "self_cognition": 1, "translation": 2},
        },
    },
    "cold_start__size": 12,
    "cold_start__min_reasoning_chars": 300,
    "cold_start__max_reasoning_chars": 2000,
    "cold_start__min_answer_chars": 30,
}


def test_mix_job_draws_exact_strata_and_the_counts_add_up(runtime_factory, tmp_path) -> None:
    rt = runtime_factory(defaults_conf(tmp_path), **MIX_OVERRIDES)
    candidates, selected = write_upstream(rt)
    result = mix(rt)

    plan = {
        (r["kind"], r["domain"]): r
        for r in (x.asDict() for x in rt.tables.read("ops.mix_plan").collect())
        if r["dataset"] == "sft_mix"
    }
    taken = {s: r["taken"] for s, r in plan.items()}
    assert sum(taken.values()) == 60 == result.rows_out
    # logic holds 4 eligible rows for 6 asked: the 2 missing went to other reasoning strata, not across kinds.
    logic = plan[("reasoning", "logic")]
    assert (logic["asked"], logic["available"], logic["taken"], logic["short"]) == (6, 4, 4, 2)
    assert sum(r["taken"] for s, r in plan.items() if s[0] == "reasoning") == 45
    assert {s[1]: r["taken"] for s, r in plan.items() if s[0] == "non_reasoning"} == {
        "writing": 6,
        "factual_qa": 5,
        "self_cognition": 1,
        "translation": 3,
    }

    sft = [r.asDict(recursive=True) for r in rt.tables.read("gold.sft_mix").collect()]
    per_stratum: dict[tuple[str, str], int] = {}
    for row in sft:
        per_stratum[(row["kind"], row["domain"])] = per_stratum.get((row["kind"], row["domain"]), 0) + 1
    assert per_stratum == {s: n for s, n in taken.items() if n}
    # The exact rows a pure-Python reference picks: the same on Sail and on classic Spark.
    assert {r["candidate_id"] for r in sft} == expected_draw(selected, taken, with_status=True)

    decisions = {r["candidate_id"]: r.asDict() for r in rt.tables.read("silver.decisions").collect()}
    assert len(decisions) == len(candidates) == rt.tables.read("silver.decisions").count()
    assert {c["candidate_id"] for c in candidates} == set(decisions)
    in_mix = {cid for cid, d in decisions.items() if d["in_mix"]}
    assert in_mix == {r["candidate_id"] for r in sft} and len(in_mix) == len(sft)
    assert {cid for cid, d in decisions.items() if not d["reject_reasons"]} == in_mix
    by_reason: dict[str, int] = {}
    for d in decisions.values():
        for reason in d["reject_reasons"]:
            by_reason[reason] = by_reason.get(reason, 0) + 1
    assert by_reason == result.rejected
    assert decisions["src_math:math-0:0"]["reject_reasons"] == ["duplicate_prompt"]
    assert decisions["src_math:math-0:1"]["reject_reasons"] == ["truncated", "duplicate_prompt"]
    assert decisions["src_code:code-0:0"]["reject_reasons"] == ["contaminated"]
    assert decisions["src_math:math-1:1"]["reject_reasons"] == ["not_selected", "near_duplicate"]
    assert decisions["src_writing:writing-0:0"]["reject_reasons"] == ["wrong_language", "long_paragraph"]
    assert set(by_reason) == {
        "truncated",
        "wrong_language",
        "long_paragraph",
        "not_selected",
        "duplicate_prompt",
        "near_duplicate",
        "contaminated",
        "not_sampled",
    }

    cold = rt.tables.read("gold.cold_start").count()
    assert cold == 12 == sum(1 for d in decisions.values() if d["in_cold_start"])


def test_without_prompt_status_every_prompt_counts_as_kept(runtime_factory, tmp_path, caplog) -> None:
    rt = runtime_factory(defaults_conf(tmp_path), **MIX_OVERRIDES)
    candidates, selected, _ = upstream_rows()
    assert read_prompt_status(rt) is None and "silver.prompt_status is missing" in caplog.text
    frame = rt.spark.createDataFrame(_tuples(selected, SELECTED_SCHEMA), SELECTED_SCHEMA)
    pool = {r["candidate_id"] for r in mix_pool(frame, None).select("candidate_id").collect()}
    assert pool == {r["candidate_id"] for r in selected if not r["reject_reasons"]}
    cands = rt.spark.createDataFrame(_tuples(candidates, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA)
    drawn = frame.where("candidate_id LIKE '%math-0:0' OR candidate_id LIKE '%code-0:0'").select(
        "candidate_id"
    )
    decisions = {
        r["candidate_id"]: r["reject_reasons"]
        for r in build_decisions(cands, frame, None, drawn, drawn.limit(0)).collect()
    }
    assert decisions["src_math:math-0:0"] == [] and decisions["src_code:code-0:0"] == []
    assert decisions["src_math:math-0:1"] == ["truncated"] and decisions["src_math:math-1:0"] == [
        "not_sampled"
    ]


def test_fail_policy_names_every_short_stratum_and_writes_nothing(runtime_factory, tmp_path) -> None:
    rt = runtime_factory(
        defaults_conf(tmp_path), **{**MIX_OVERRIDES, "mix__total": 400, "mix__shortfall": "fail"}
    )
    write_upstream(rt)
    with pytest.raises(MixShortfallError) as error:
        mix(rt)
    # 400 asked of 94 eligible rows: all 8 strata are short, and the one error names each of them.
    assert "8 short strata" in str(error.value)
    for stratum in (
        "math",
        "code",
        "stem",
        "logic",
        "writing",
        "factual_qa",
        "self_cognition",
        "translation",
    ):
        assert f"/{stratum}: asked" in str(error.value)
    assert not rt.tables.exists("gold.sft_mix") and not rt.tables.exists("silver.decisions")


def test_upsampling_repeats_rows_in_hash_order_up_to_the_factor(runtime_factory, tmp_path) -> None:
    rt = runtime_factory(defaults_conf(tmp_path))
    _, selected, _ = upstream_rows()
    rows = [r for r in selected if r["domain"] in ("stem", "logic")]
    pool = with_sample_key(rt.spark.createDataFrame(_tuples(rows, SELECTED_SCHEMA), SELECTED_SCHEMA), SEED)
    asked = {("reasoning", "stem"): 10, ("reasoning", "logic"): 10}
    available = {("reasoning", "stem"): 7, ("reasoning", "logic"): 4}
    assert sum(p.taken for p in plan_mix(asked, {}, available, "redistribute", allow_short_total=True)) == 11
    plans = plan_mix(asked, {}, available, "redistribute", upsample=True, max_upsample_factor=3.0)
    drawn = draw_mix(pool, plans, find_cutoffs(rt, pool, plans)).select(
        "candidate_id", "domain", "copy_index"
    )
    out = [r.asDict() for r in drawn.collect()]
    assert len(out) == 20 and len({(r["candidate_id"], r["copy_index"]) for r in out}) == 20
    logic = sorted(
        (spark_xxhash64(SEED, r["candidate_id"]), r["candidate_id"]) for r in rows if r["domain"] == "logic"
    )
    copies: dict[str, int] = {}
    for r in out:
        if r["domain"] == "logic":
            copies[r["candidate_id"]] = copies.get(r["candidate_id"], 0) + 1
    # 10 asked of 4 distinct rows: every row twice, the first two in hash order a third time.
    assert sorted(copies.values()) == [2, 2, 3, 3] and len(logic) == 4
    assert {cid for _, cid in logic[:2]} == {cid for cid, n in copies.items() if n == 3}
    stem = [r for r in out if r["domain"] == "stem"]
    assert len(stem) == 10 and len({r["candidate_id"] for r in stem}) == 7


def test_render_keeps_or_drops_the_cot_per_domain(runtime_factory, tmp_path) -> None:
    rt = runtime_factory(defaults_conf(tmp_path))
    rows = [
        candidate("reasoning", "math", 1, 0),
        candidate("non_reasoning", "writing", 1, 0),
        candidate("non_reasoning", "translation", 1, 0),
        candidate("non_reasoning", "writing", 5, 0),
    ]
    rows[3] = {**rows[3], "prompt": "hello", "messages": None, "system": None}
    frame = rt.spark.createDataFrame(_tuples(rows, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA)
    frame = frame.selectExpr("*", "0 AS copy_index", "0L AS sample_key")
    params = MixParams(total=1)
    out = {r["candidate_id"]: r.asDict(recursive=True) for r in frame.transform(render_sft, params).collect()}

    math = out["src_math:math-1:0"]
    assert [m["role"] for m in math["messages"]] == ["system", "user", "assistant"]
    assert (
        math["messages"][-1]["content"] == f"<think>\n{rows[0]['reasoning']}\n</think>\n\n{rows[0]['answer']}"
    )
    assert math["cot_kept"] and math["assistant_chars"] == len(math["messages"][-1]["content"])
    writing = out["src_writing:writing-1:0"]
    assert writing["cot_kept"] and writing["messages"][-1]["content"].startswith("<think>\nPlan for 1")
    translation = out["src_translation:translation-1:0"]  # config: translation drops its CoT
    assert (
        not translation["cot_kept"] and translation["messages"][-1]["content"] == "Answer 1 for translation."
    )
    trivial = out["src_writing:writing-5:0"]  # "hello" is trivial: no CoT whatever the domain says
    assert not trivial["cot_kept"]
    assert trivial["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Answer 5 for writing."},
    ]
