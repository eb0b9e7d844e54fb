"""The stable mix (``mix.stable``), mix versions and ``sftmix diff``: on both engines, the rows equal a
pure-Python reference (previous rows first in hash order, then the others), the strata stay exact,
and the diff's added / removed rows per stratum and reason add up to the versions' row counts."""

from __future__ import annotations

from typing import Any

from sftmix.jobs.diff import MixDiff, format_diff, run_diff
from sftmix.jobs.export import export
from sftmix.jobs.mix import mix, mix_versions

from .test_mix import (
    CANDIDATE_SCHEMA,
    SELECTED_SCHEMA,
    STATUS_SCHEMA,
    _tuples,
    candidate,
    defaults_conf,
    spark_xxhash64,
)

SEED = 1234
STRATA = (("reasoning", "math"), ("non_reasoning", "writing"))


def overrides(stable: bool, reasoning_share: float = 0.5) -> dict[str, Any]:
    return {
        "seed": SEED,
        "mix__total": 120,
        "mix__stable": stable,
        "mix__strata": {
            "reasoning": {"share": reasoning_share, "domains": {"math": 1}},
            "non_reasoning": {"share": 1 - reasoning_share, "domains": {"writing": 1}},
        },
        "cold_start__size": 0,
    }


def pool(prompts: int) -> list[dict]:
    """One clean candidate per prompt, ``prompts`` prompts in each of the two strata."""
    return [{**candidate(k, d, p, 0), "reject_reasons": []} for k, d in STRATA for p in range(prompts)]


def write_silver(
    rt, rows: list[dict], rejected: dict[str, list[str]] | None = None, dropped: dict[str, str] | None = None
) -> None:
    """silver.candidates / selected / prompt_status; ``dropped`` maps a prompt_id to its dedup status."""
    rejected, dropped = rejected or {}, dropped or {}
    candidates = [{**r, "reject_reasons": rejected.get(r["candidate_id"], [])} for r in rows]
    selected = [{**r, "select_rank": 1} for r in candidates if not r["reject_reasons"]]
    status = [(r["source"], r["prompt_id"], dropped.get(r["prompt_id"], "kept"), None) for r in candidates]
    spark = rt.spark
    rt.tables.write(spark.createDataFrame(_tuples(candidates, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA), "silver.candidates")
    rt.tables.write(spark.createDataFrame(_tuples(selected, SELECTED_SCHEMA), SELECTED_SCHEMA), "silver.selected")
    rt.tables.write(spark.createDataFrame(status, STATUS_SCHEMA), "silver.prompt_status")


def hash_order(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda c: (spark_xxhash64(SEED, c), c))


def reference(eligible: list[dict], taken: dict[tuple[str, str], int], previous: set[str]) -> set[str]:
    """The draw in plain Python: per stratum, previous rows first, then the others, each in hash order."""
    chosen: set[str] = set()
    for stratum in STRATA:
        ids = [r["candidate_id"] for r in eligible if (r["kind"], r["domain"]) == stratum]
        ordered = [c for c in hash_order(ids) if c in previous] + [c for c in hash_order(ids) if c not in previous]
        chosen |= set(ordered[: taken[stratum]])
    return chosen


def mix_ids(rt) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in rt.tables.read("gold.sft_mix").select("kind", "domain", "candidate_id").collect():
        out.setdefault((r["kind"], r["domain"]), set()).add(r["candidate_id"])
    return out


def all_ids(by_stratum: dict[tuple[str, str], set[str]]) -> set[str]:
    return set().union(*by_stratum.values())


def plan_taken(rt) -> dict[tuple[str, str], int]:
    return {
        (r["kind"], r["domain"]): int(r["taken"])
        for r in rt.tables.read("ops.mix_plan").collect()
        if r["dataset"] == "sft_mix"
    }


def assert_diff_adds_up(diff: MixDiff) -> None:
    for stratum in set(diff.from_rows) | set(diff.to_rows):
        change = diff.to_rows.get(stratum, 0) - diff.from_rows.get(stratum, 0)
        assert diff.changed("added", stratum) - diff.changed("removed", stratum) == change
    assert diff.changed("added") - diff.changed("removed") == diff.to_version.rows - diff.from_version.rows


def test_stable_mix_keeps_the_previous_rows_when_new_rows_arrive(runtime_factory, tmp_path) -> None:
    conf = defaults_conf(tmp_path)
    rt = runtime_factory(conf, run_id="run-1", **overrides(stable=True))
    first = pool(100)
    write_silver(rt, first)
    mix(rt)  # no previous version: the from-scratch draw
    v1 = mix_ids(rt)
    assert all_ids(v1) == reference(first, {s: 60 for s in STRATA}, set())
    assert {r["mix_run_id"] for r in rt.tables.read("gold.sft_mix").select("mix_run_id").collect()} == {"run-1"}

    # 10% new rows, no duplicates of earlier prompts: every previous row stays.
    grown = pool(110)
    rt = runtime_factory(conf, run_id="run-2", **overrides(stable=True))
    write_silver(rt, grown)
    result = mix(rt)
    v2 = mix_ids(rt)
    assert {s: len(ids) for s, ids in v2.items()} == plan_taken(rt) == {s: 60 for s in STRATA}
    assert all_ids(v2) == reference(grown, {s: 60 for s in STRATA}, all_ids(v1))
    kept = len(all_ids(v1) & all_ids(v2)) / len(all_ids(v1))
    assert kept >= 0.99 and kept == 1.0
    assert result.details["kept_rows"] == 120 and result.details["mix_version"] == 2
    versions = mix_versions(rt)
    assert [(v.mix_version, v.run_id, v.previous_version, v.rows) for v in versions] == [
        (1, "run-1", None, 120),
        (2, "run-2", 1, 120),
    ]
    assert (versions[-1].table_version is None) == (rt.tables.table_format != "delta")
    diff = run_diff(rt)
    assert diff.counts == {} and diff.from_rows == diff.to_rows
    assert "version 1" in format_diff(diff)

    # The dataset card names the version it came from and the previous one.
    out = tmp_path / "export"
    rt = runtime_factory(conf, run_id="run-2", export__path=str(out), **overrides(stable=True))
    export(rt)
    card = (out / "sft_mix" / "README.md").read_text()
    assert "mix version 2 (run `run-2`" in card and "previous one is mix version 1 (run `run-1`" in card
    assert "sftmix diff --from 1 --to 2" in card

    # stable: false is today's draw over the grown pool, whatever the previous version held.
    rt = runtime_factory(conf, run_id="run-3", **overrides(stable=False))
    mix(rt)
    v3 = mix_ids(rt)
    assert all_ids(v3) == reference(grown, {s: 60 for s in STRATA}, set())
    diff = run_diff(rt)
    assert_diff_adds_up(diff)
    removed = {k: n for k, n in diff.counts.items() if k[0] == "removed"}
    assert {k[3] for k in removed} <= {"redrawn"} and sum(removed.values()) == len(all_ids(v2) - all_ids(v3))
    assert rt.tables.read("ops.mix_diff").count() == 2 * len(all_ids(v2) - all_ids(v3))


def test_rejected_and_displaced_rows_leave_and_new_rows_replace_them_in_hash_order(runtime_factory, tmp_path) -> None:
    conf = defaults_conf(tmp_path)
    rt = runtime_factory(conf, run_id="run-1", **overrides(stable=True))
    rows = pool(100)
    write_silver(rt, rows)
    mix(rt)
    v1 = mix_ids(rt)

    math = hash_order(sorted(v1[("reasoning", "math")]))
    rejected = {cid: ["truncated"] for cid in math[::12]}  # 5 rows spread over the hash order
    displaced = hash_order(sorted(v1[("non_reasoning", "writing")]))[7]
    dropped = {next(r["prompt_id"] for r in rows if r["candidate_id"] == displaced): "near_duplicate"}
    grown = pool(110)
    rt = runtime_factory(conf, run_id="run-2", **overrides(stable=True))
    write_silver(rt, grown, rejected, dropped)
    mix(rt)
    v2 = mix_ids(rt)

    eligible = [r for r in grown if r["candidate_id"] not in rejected and r["prompt_id"] not in dropped]
    assert all_ids(v2) == reference(eligible, {s: 60 for s in STRATA}, all_ids(v1))
    assert {s: len(ids) for s, ids in v2.items()} == {s: 60 for s in STRATA}
    assert all_ids(v1) - all_ids(v2) == set(rejected) | {displaced}
    # The replacements: the first rows in hash order that were not in the previous mix.
    for stratum, n in ((("reasoning", "math"), 5), (("non_reasoning", "writing"), 1)):
        others = [r["candidate_id"] for r in eligible if (r["kind"], r["domain"]) == stratum]
        fresh = [c for c in hash_order(others) if c not in all_ids(v1)]
        assert v2[stratum] - v1[stratum] == set(fresh[:n])

    diff = run_diff(rt, "1", "run-2")
    assert_diff_adds_up(diff)
    assert diff.counts == {
        ("removed", "reasoning", "math", "rejected"): 5,
        ("removed", "non_reasoning", "writing", "displaced_by_dedup"): 1,
        ("added", "reasoning", "math", "replacement"): 5,
        ("added", "non_reasoning", "writing", "replacement"): 1,
    }
    details = {
        r["candidate_id"]: r["detail"]
        for r in rt.tables.read("ops.mix_diff").where("change = 'removed'").collect()
    }
    assert details == {**{c: "truncated" for c in rejected}, displaced: "near_duplicate"}


def test_a_shrunk_quota_drops_the_previous_rows_last_in_hash_order_first(runtime_factory, tmp_path) -> None:
    conf = defaults_conf(tmp_path)
    rt = runtime_factory(conf, run_id="run-1", **overrides(stable=True))
    rows = pool(100)
    write_silver(rt, rows)
    mix(rt)
    v1 = mix_ids(rt)

    # math 60 -> 48, writing 60 -> 72
    rt = runtime_factory(conf, run_id="run-2", **overrides(stable=True, reasoning_share=0.4))
    mix(rt)
    v2 = mix_ids(rt)
    math, writing = ("reasoning", "math"), ("non_reasoning", "writing")
    assert {s: len(ids) for s, ids in v2.items()} == plan_taken(rt) == {math: 48, writing: 72}
    assert v2[math] == set(hash_order(sorted(v1[math]))[:48])
    assert v2[writing] >= v1[writing]
    others = [r["candidate_id"] for r in rows if r["domain"] == "writing" and r["candidate_id"] not in v1[writing]]
    assert v2[writing] - v1[writing] == set(hash_order(others)[:12])

    diff = run_diff(rt)
    assert_diff_adds_up(diff)
    assert diff.counts == {
        ("removed", "reasoning", "math", "quota"): 12,
        ("added", "non_reasoning", "writing", "quota"): 12,
    }


def test_upsampled_rows_keep_their_extra_copy_first(runtime_factory, tmp_path) -> None:
    """With upsampling, the rows that had the most copies keep them: the stable order is (previous copies
    descending, hash order)."""
    conf = defaults_conf(tmp_path)
    settings = {
        **overrides(stable=True, reasoning_share=1.0),
        "mix__total": 50,
        "mix__upsample": True,
        "mix__max_upsample_factor": 3.0,
    }
    rt = runtime_factory(conf, run_id="run-1", **settings)
    rows = [r for r in pool(22) if r["domain"] == "math"]
    write_silver(rt, rows[:20])
    mix(rt)

    def copies(rt) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in rt.tables.read("gold.sft_mix").select("candidate_id").collect():
            out[r["candidate_id"]] = out.get(r["candidate_id"], 0) + 1
        return out

    v1 = copies(rt)
    first = hash_order([r["candidate_id"] for r in rows[:20]])
    assert v1 == {c: 3 if i < 10 else 2 for i, c in enumerate(first)}  # 50 = 2 x 20 + the first 10 again

    rt = runtime_factory(conf, run_id="run-2", **settings)
    write_silver(rt, rows)  # 22 rows: 2 copies each (44), 6 rows a third time
    mix(rt)
    v2 = copies(rt)
    assert sum(v2.values()) == 50 and set(v2) == {r["candidate_id"] for r in rows}
    thrice = [c for c in first if v1[c] == 3][:6]
    assert {c for c, n in v2.items() if n == 3} == set(thrice)
    diff = run_diff(rt)
    assert_diff_adds_up(diff)
    assert diff.counts == {
        ("removed", "reasoning", "math", "quota"): 4,  # four third copies
        ("added", "reasoning", "math", "replacement"): 4,  # the two new rows, twice each
    }
