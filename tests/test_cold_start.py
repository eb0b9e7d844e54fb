"""Cold start: only clean, readable long CoTs with a summarising answer, one per prompt, stratified by
domain in hash order, rendered with the R1 template."""

from __future__ import annotations

from pyspark.sql import types as T

from sftmix.transforms.cold_start import (
    ColdStartParams,
    best_readable,
    cold_start_scores,
    pick_cold_start,
    readability,
    render_cold_start,
)
from sftmix.transforms.mix_plan import plan_mix
from sftmix.transforms.paragraphs import paragraph_lengths

from .test_mix import (
    CANDIDATE_SCHEMA,
    DROPPED,
    STATUS_SCHEMA,
    _tuples,
    candidate,
    defaults_conf,
    spark_xxhash64,
    upstream_rows,
)

PARAMS = ColdStartParams(size=8, min_reasoning_chars=300, max_reasoning_chars=2000, min_answer_chars=30)
SEED = 99


def test_readability_is_the_share_of_text_in_short_paragraphs(runtime_factory, tmp_path) -> None:
    rt = runtime_factory(defaults_conf(tmp_path))
    texts = ["a" * 100 + "\n\n" + "b" * 900, "line one\nline two\n\n  \n" + "c" * 50, "", None]
    assert [paragraph_lengths(t) for t in texts] == [[100, 900], [17, 50], [], []]
    rows = [(paragraph_lengths(t),) for t in texts[:3]] + [(None,)]
    schema = T.StructType([T.StructField("paragraph_chars", T.ArrayType(T.IntegerType()))])
    frame = rt.spark.createDataFrame(rows, schema)
    values = [r["r"] for r in frame.select(readability("paragraph_chars", 800).alias("r")).collect()]
    assert values == [0.1, 1.0, 0.0, 0.0]


def test_cold_start_picks_readable_clean_long_cots_per_domain(runtime_factory, tmp_path) -> None:
    rt = runtime_factory(defaults_conf(tmp_path))
    candidates, _, status = upstream_rows()
    odd = [
        {**candidate("reasoning", "math", 40, 0), "answer": "\\boxed{40}", "answer_chars": 10},  # no summary
        {
            **candidate("reasoning", "math", 41, 0),
            "reasoning": "x. " * 900,
            "reasoning_chars": 2700,
        },  # too long
        {**candidate("reasoning", "code", 42, 0), "reasoning": "short", "reasoning_chars": 5},  # too short
    ]
    frame = rt.spark.createDataFrame(_tuples(candidates + odd, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA)
    prompt_status = rt.spark.createDataFrame(status, STATUS_SCHEMA)
    scores = best_readable(cold_start_scores(frame, prompt_status, PARAMS, SEED), PARAMS)
    scored = {r["candidate_id"]: r.asDict() for r in scores.collect()}

    by_id = {c["candidate_id"]: c for c in candidates}
    eligible = [
        c
        for c in candidates
        if c["kind"] == "reasoning"
        and not c["reject_reasons"]
        and (c["source"], c["prompt_id"]) not in DROPPED
        and not (
            int(c["prompt_id"].split("-")[1]) % 4 == 3 and c["candidate_id"].endswith(":1")
        )  # wall of text
    ]
    # One per prompt: the more readable, then the smaller hash; every readable one here scores 1.0.
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for c in eligible:
        key = (spark_xxhash64(SEED, c["candidate_id"]), c["candidate_id"])
        best[(c["source"], c["prompt_id"])] = min(best.get((c["source"], c["prompt_id"]), key), key)
    assert set(scored) == {cid for _, cid in best.values()}
    assert all(s["readability"] == 1.0 for s in scored.values())

    available = {}
    for s in scored.values():
        available[("reasoning", s["domain"])] = available.get(("reasoning", s["domain"]), 0) + 1
    asked, weights = PARAMS.asked([d for _, d in available])
    plans = plan_mix(asked, weights, available, "redistribute", allow_short_total=True)
    assert {p.domain: p.taken for p in plans} == {"code": 2, "logic": 2, "math": 2, "stem": 2}

    chosen = pick_cold_start(scores, plans)
    rows = frame.join(
        chosen.select("candidate_id", "readability", "cold_start_rank", "sample_key"), "candidate_id"
    )
    out = {
        r["candidate_id"]: r.asDict(recursive=True)
        for r in rows.transform(render_cold_start, PARAMS).collect()
    }
    expected = set()
    for domain in ("math", "code", "stem", "logic"):
        keys = sorted(best[(s["source"], s["prompt_id"])] for s in scored.values() if s["domain"] == domain)
        expected |= {cid for _, cid in keys[:2]}
    assert set(out) == expected

    row = next(iter(out.values()))
    source = by_id[row["candidate_id"]]
    assert row["text"] == f"|special_token|{source['reasoning']}|special_token|{source['answer']}"
    assert row["messages"][-1] == {"role": "assistant", "content": row["text"]}
    assert row["messages"][-2] == {"role": "user", "content": source["prompt"]}
    assert not {o["candidate_id"] for o in odd} & set(scored)  # outside the band or no summary
