"""``sftmix report``: aggregates computed in the engine, plots skipped with a note, the page renders."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sftmix.jobs import pipeline, report
from sftmix.jobs.runtime.context import Runtime, StageResult

CANDIDATE_SCHEMA = (
    "candidate_id string, kind string, domain string, reasoning_chars int, answer_chars int, "
    "answer_language string, reject_reasons array<string>"
)


def write_tables(rt: Runtime) -> None:
    """The tables the report reads, small and with known figures, as the stages would leave them."""
    spark = rt.spark
    candidates = [
        ("r1", "reasoning", "math", 999, 0, "en", []),  # 999 chars: bucket floor(log10(1000) * 8) = 24
        ("r2", "reasoning", "math", 9, 0, "en", ["too_short"]),  # bucket 8
        ("r3", "reasoning", "code", 90, 9, "zh", ["mixed_language", "code_block"]),  # 99 -> bucket 16
        ("n1", "non_reasoning", "writing", 0, 99, "fr", []),
        ("n2", "non_reasoning", "writing", None, None, None, ["empty_answer"]),  # null lengths count as 0
    ]
    rt.tables.write(spark.createDataFrame(candidates, CANDIDATE_SCHEMA), "silver.candidates")
    mix = [("r1", "reasoning", "math", 999, 0), ("n1", "non_reasoning", "writing", 0, 99)]
    mix_schema = "candidate_id string, kind string, domain string, reasoning_chars int, answer_chars int"
    rt.tables.write(spark.createDataFrame(mix, mix_schema), "gold.sft_mix")
    plan = [("t", "sft_mix", "reasoning", "math", 3, 1, 1), ("t", "sft_mix", "non_reasoning", "writing", 1, 2, 1),
            ("t", "cold_start", "reasoning", "math", 9, 9, 9)]
    plan_schema = "run_id string, dataset string, kind string, domain string, asked long, available long, taken long"
    rt.tables.write(spark.createDataFrame(plan, plan_schema), "ops.mix_plan")
    prompts = [("p1", "reasoning", 0.0), ("p2", "reasoning", 0.5), ("p3", "reasoning", 1.0), ("p4", "reasoning", None)]
    rt.tables.write(spark.createDataFrame(prompts, "prompt_id string, kind string, pass_rate double"),
                    "silver.prompts")
    steps = {
        "ingest": StageResult(6, 5, {"quarantined": 1}),
        "annotate": StageResult(5, 2, {"too_short": 1, "mixed_language": 1, "code_block": 1, "empty_answer": 1}),
    }
    rt.run_stages([(name, lambda _rt, r=result: r) for name, result in steps.items()])


def test_report_aggregates_in_the_engine_and_renders(runtime_factory, tmp_path: Path) -> None:
    rt = runtime_factory()
    write_tables(rt)
    candidates = rt.tables.read("silver.candidates")
    histogram = report._length_histogram(candidates, report._length(candidates))
    assert histogram == {("reasoning", 24): 1, ("reasoning", 8): 1, ("reasoning", 16): 1,
                         ("non_reasoning", 16): 1, ("non_reasoning", 0): 1}
    reasons, source = report._reason_counts(rt, [])
    assert source == "silver.candidates"
    assert reasons == {"too_short": 1, "mixed_language": 1, "code_block": 1, "empty_answer": 1}
    assert [m["stage"] for m in report._latest_metrics(rt)] == ["ingest", "annotate"]

    result = report.write_report(rt, tmp_path / "out")
    assert [s.key for s in result.sections if s.note] == []
    assert sorted(p.name for p in result.images) == sorted(f"{key}.png" for key, *_ in report.SECTIONS)
    for image in result.images:
        assert image.read_bytes().startswith(b"\x89PNG")
    page = result.html.read_text()
    assert page.count("src='data:image/png;base64,") == len(report.SECTIONS)
    assert not re.search(r"(src|href)=['\"]?(https?:|//|[\w./-]+\.(png|js|css))", page)  # self-contained
    assert "run_id" in page and "succeeded" in page  # ops.runs summary
    # The plan table shows the sft_mix rows, not cold_start's.
    assert "<td>reasoning</td><td>math</td><td class='n'>3</td><td class='n'>1</td><td class='n'>1</td>" in page


def test_plots_without_tables_are_skipped_with_a_note(runtime_factory, tmp_path: Path) -> None:
    rt = runtime_factory()
    result = report.write_report(rt, tmp_path / "out")
    assert result.images == []
    notes = {s.key: s.note for s in result.sections}
    assert notes["funnel"] == "ops.stage_metrics does not exist yet (written by every stage run)"
    assert notes["lengths"] == "silver.candidates does not exist yet (written by the annotate stage)"
    assert "silver.prompts does not exist yet" in notes["pass_rate"]
    assert "Skipped: gold.sft_mix does not exist yet" in result.html.read_text()


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(browser: str, page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium with a throwaway profile."""
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout


def test_report_images_load_in_headless_chromium(runtime_factory, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (make setup installs it with apt-get when it can)")
    rt = runtime_factory()
    if rt.engine.name != "sail":
        pytest.skip("the page is the same on both engines; the browser check runs once, on Sail")
    write_tables(rt)
    result = report.write_report(rt, tmp_path / "out")
    dom = dump_dom(browser, result.html, tmp_path / "chromium-profile")
    status = re.search(r"id=\"image-status\"[^>]*data-loaded=\"(\d+)\" data-total=\"(\d+)\"", dom)
    assert status, dom[-2000:]
    assert status.groups() == (str(len(report.SECTIONS)),) * 2
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == len(report.SECTIONS) and min(widths) > 300


def test_report_covers_every_stage_name() -> None:
    # The funnel orders stages by the flow; a stage added to STAGES must be known here too.
    assert set(pipeline.STAGES) <= set(report.STAGE_ORDER)
