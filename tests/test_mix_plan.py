"""Quota arithmetic of the mix (pure Python): exact counts, shortfall policies, upsampling, config."""

from __future__ import annotations

import pytest

from sftmix.jobs.runtime.config import ConfigError, load_config
from sftmix.transforms.mix import KindStrata, MixParams
from sftmix.transforms.mix_plan import MixShortfallError, largest_remainder, plan_mix

from .conftest import REPO


def test_largest_remainder_is_exact_and_deterministic() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]  # a tie goes to the earlier weight
    assert largest_remainder(7, [0.5, 0.25, 0.25]) == [3, 2, 2]  # 3.5, 1.75, 1.75
    assert largest_remainder(0, [3, 4]) == [0, 0]
    assert sum(largest_remainder(800_000, [0.1] * 7)) == 800_000
    with pytest.raises(ValueError):
        largest_remainder(5, [0, 0])


def test_default_config_asks_600k_reasoning_in_r1_proportions_and_200k_non_reasoning() -> None:
    params = load_config(REPO / "conf" / "base.yaml").mix
    asked, _ = params.asked()
    reasoning = {d: n for (k, d), n in asked.items() if k == "reasoning"}
    non_reasoning = {d: n for (k, d), n in asked.items() if k == "non_reasoning"}
    assert sum(asked.values()) == 800_000
    assert sum(reasoning.values()) == 600_000 and sum(non_reasoning.values()) == 200_000
    # R1 v2 Table 5 (395,285 / 211,129 / 10,124 / 10,395 of 626,933) scaled to 600,000, rounded exactly.
    assert reasoning == {"math": 378_304, "code": 202_059, "stem": 9_689, "logic": 9_948}
    assert set(non_reasoning) == {"writing", "factual_qa", "self_cognition", "translation"}


def test_counts_instead_of_shares() -> None:
    params = MixParams(
        total=None,
        strata={
            "reasoning": KindStrata(count=30, domains={"math": 2, "code": 1}),
            "non_reasoning": KindStrata(count=10, domains={"writing": 1}),
        },
    )
    asked, _ = params.asked()
    assert asked == {("reasoning", "math"): 20, ("reasoning", "code"): 10, ("non_reasoning", "writing"): 10}
    with pytest.raises(ValueError, match="differs"):
        MixParams(total=41, strata=params.strata)


ASKED = {
    ("reasoning", "math"): 60,
    ("reasoning", "code"): 30,
    ("reasoning", "logic"): 10,
    ("non_reasoning", "writing"): 20,
    ("non_reasoning", "translation"): 20,
}


def _taken(plans: list) -> dict:
    return {(p.kind, p.domain): p.taken for p in plans}


def test_redistribute_within_the_kind_first_in_proportion_to_the_asked_counts() -> None:
    available = {
        ("reasoning", "math"): 1000,
        ("reasoning", "code"): 1000,
        ("reasoning", "logic"): 1,
        ("non_reasoning", "writing"): 100,
        ("non_reasoning", "translation"): 100,
    }
    taken = _taken(plan_mix(ASKED, {}, available, "redistribute"))
    # logic is 9 short: math and code (asked 60:30) take 6 and 3 more; non-reasoning is untouched.
    assert taken == {
        ("reasoning", "math"): 66,
        ("reasoning", "code"): 33,
        ("reasoning", "logic"): 1,
        ("non_reasoning", "writing"): 20,
        ("non_reasoning", "translation"): 20,
    }


def test_redistribute_across_kinds_when_the_kind_has_no_room() -> None:
    available = {
        ("reasoning", "math"): 1000,
        ("reasoning", "code"): 1000,
        ("reasoning", "logic"): 1000,
        ("non_reasoning", "writing"): 5,
        ("non_reasoning", "translation"): 10,
    }
    plans = plan_mix(ASKED, {}, available, "redistribute")
    taken = _taken(plans)
    assert taken[("non_reasoning", "writing")] == 5 and taken[("non_reasoning", "translation")] == 10
    # 25 missing non-reasoning rows go to reasoning strata 60:30:10.
    assert [taken[("reasoning", d)] for d in ("math", "code", "logic")] == [75, 38, 12]
    assert sum(taken.values()) == sum(ASKED.values())


def test_fail_lists_every_short_stratum_and_a_short_total_is_an_error() -> None:
    available = {
        ("reasoning", "math"): 1000,
        ("reasoning", "code"): 3,
        ("reasoning", "logic"): 0,
        ("non_reasoning", "writing"): 100,
        ("non_reasoning", "translation"): 7,
    }
    with pytest.raises(MixShortfallError) as error:
        plan_mix(ASKED, {}, available, "fail")
    message = str(error.value)
    assert "3 short strata" in message
    for stratum in (
        "reasoning/code: asked 30, available 3",
        "reasoning/logic: asked 10, available 0",
        "non_reasoning/translation: asked 20, available 7",
    ):
        assert stratum in message
    tiny = {s: 1 for s in ASKED}
    with pytest.raises(MixShortfallError, match="hold 5"):
        plan_mix(ASKED, {}, tiny, "redistribute")
    short = plan_mix(ASKED, {}, tiny, "redistribute", allow_short_total=True)
    assert sum(p.taken for p in short) == 5


def test_upsampling_only_when_enabled_and_within_the_factor() -> None:
    available = {
        ("reasoning", "math"): 1000,
        ("reasoning", "code"): 1000,
        ("reasoning", "logic"): 4,
        ("non_reasoning", "writing"): 100,
        ("non_reasoning", "translation"): 100,
    }
    plain = _taken(plan_mix(ASKED, {}, available, "redistribute"))
    assert plain[("reasoning", "logic")] == 4  # never silently repeated
    plans = plan_mix(ASKED, {}, available, "redistribute", upsample=True, max_upsample_factor=2.0)
    logic = next(p for p in plans if p.domain == "logic")
    assert (logic.taken, logic.upsampled, logic.full_copies, logic.extra_rows) == (8, 4, 2, 0)
    assert sum(p.taken for p in plans) == sum(ASKED.values())


def test_strata_outside_the_config_are_shown_with_nothing_asked() -> None:
    available = {**{s: 1000 for s in ASKED}, ("reasoning", "poetry"): 5}
    extra = [p for p in plan_mix(ASKED, {}, available, "fail") if p.domain == "poetry"]
    assert [(p.asked, p.available, p.taken) for p in extra] == [(0, 5, 0)]


def test_config_errors_name_the_key(tmp_path) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text(
        f"extends: {REPO / 'conf' / 'base.yaml'}\nmix:\n  strata:\n    reasoning: {{share: 1.0, count: 3}}\n"
    )
    with pytest.raises(ConfigError, match=r"mix\.strata\.reasoning"):
        load_config(conf)
    conf.write_text(f"extends: {REPO / 'conf' / 'base.yaml'}\nmix:\n  shortfall: drop\n")
    with pytest.raises(ConfigError, match=r"mix\.shortfall"):
        load_config(conf)
