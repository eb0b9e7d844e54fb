"""``sftmix audit``: seeded sample per reason in the engine, escaped text, spans highlighted in a browser."""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import xxhash
import yaml
from pyspark.sql import functions as F

from sftmix.jobs import audit, cli
from sftmix.jobs.audit import AuditParams
from sftmix.jobs.pipeline import run_pipeline
from sftmix.jobs.runtime.context import Runtime

from .conftest import REPO
from .test_report import chromium, dump_dom

SPAN = "array<struct<reason:string,start:int,end:int,detail:string>>"
CANDIDATE_SCHEMA = (
    "candidate_id string, source string, prompt_id string, kind string, domain string, prompt string, "
    f"reasoning string, answer string, verdict string, reject_reasons array<string>, spans {SPAN}"
)
DECISION_SCHEMA = (
    "candidate_id string, source string, prompt_id string, kind string, domain string, "
    "reject_reasons array<string>, in_mix boolean"
)
OVERLAP = "Let x be 2. 然后我们计算 x 加 2 等于四。 So the sum is 4, and we are done here."
HOSTILE = "First <script>document.title='pwned'</script> then <b>bold</b> & more."
ANSWER = "```python\nprint(4)\n```\nThe answer is 4."


def _span(reason: str, start: int | None, end: int | None, detail: str) -> tuple:
    return (reason, start, end, detail)


def candidate_rows() -> list[tuple]:
    """Seven mixed_language candidates, two code_block, one with overlapping spans, one with markup."""
    rows = []
    for i in range(7):
        source, domain = ("src_a", "math") if i % 2 == 0 else ("src_b", "logic")
        reasoning = f"Step {i}. Ceci est en français. Then back to English."
        spans = [_span("mixed_language", 8, 29, "reasoning: paragraph 1, fr 0.99, 40% of letters")]
        rows.append((f"m{i}", source, f"p{i}", "reasoning", domain, f"What is {i} + 2?", reasoning, "4",
                     "correct", ["mixed_language"], spans))
    rows.append((
        "overlap", "src_a", "p-overlap", "reasoning", "math", "What is 2 + 2?", OVERLAP, ANSWER, "correct",
        ["long_paragraph", "mixed_language", "code_block"],
        [  # a paragraph span around a foreign sentence, and a code block in the answer
            _span("mixed_language", 12, 30, "reasoning: paragraph 1, zh 1.00, 35% of letters"),
            _span("long_paragraph", 0, 45, "reasoning: paragraph 1, 45 chars"),
            _span("code_block", 0, 22, "answer: fenced block 1, python"),
        ],
    ))
    start = HOSTILE.index("<script>")
    rows.append((
        "hostile", "src_b", "p-<script>", "reasoning", "logic", "Say <script>alert(1)</script> twice", HOSTILE,
        "<i>4</i>", "incorrect", ["code_block", "incorrect"],
        [
            _span("code_block", start, start + len("<script>document.title='pwned'</script>"),
                  "reasoning: code-like line \"<script>\""),
            _span("incorrect", None, None, "answer: no final answer found, reference \"4\""),
        ],
    ))
    rows.append(("clean", "src_a", "p-dup", "reasoning", "math", "What is 2 + 2 ?", "Easy.", "4", "correct", [], []))
    return rows


def _decision_rows() -> list[tuple]:
    """silver.decisions: the candidates' reasons, plus a not_selected and a near_duplicate."""
    later = {"clean": ["near_duplicate"], "m0": ["mixed_language", "not_selected"]}
    return [(r[0], r[1], r[2], r[3], r[4], later.get(r[0], r[9]), False) for r in candidate_rows()]


def write_tables(rt: Runtime) -> None:
    """silver.candidates, silver.decisions (+ near_duplicate), silver.prompt_status and silver.prompts."""
    spark = rt.spark
    rows = candidate_rows()
    rt.tables.write(spark.createDataFrame(rows, CANDIDATE_SCHEMA), "silver.candidates")
    rt.tables.write(spark.createDataFrame(_decision_rows(), DECISION_SCHEMA), "silver.decisions")
    status = [("src_a", "p-dup", "near_duplicate", "src_a/p-overlap"), ("src_a", "p-overlap", "kept", None)]
    rt.tables.write(
        spark.createDataFrame(status, "source string, prompt_id string, dedup_status string, duplicate_of string"),
        "silver.prompt_status",
    )
    prompts = [("src_a", "p-overlap", "What is 2 + 2?"), ("src_a", "p-dup", "What is 2 + 2 ?")]
    rt.tables.write(spark.createDataFrame(prompts, "source string, prompt_id string, prompt string"), "silver.prompts")


def spark_xxhash64(seed: int, text: str) -> int:
    """Spark's ``xxhash64(lit(seed), text)``: the int seeds the hash of the string, from Spark's seed 42."""
    first = xxhash.xxh64_intdigest(struct.pack("<i", seed), seed=42)
    value = xxhash.xxh64_intdigest(text.encode(), seed=first)
    return value - (1 << 64) if value >= 1 << 63 else value


def test_sample_is_seeded_hash_order_in_the_engine(runtime_factory) -> None:
    rt = runtime_factory()
    write_tables(rt)
    decisions = rt.tables.read("silver.decisions")
    sample = audit.sample_reasons(audit.reason_rows(decisions, AuditParams(seed=7)), 3)
    got: dict[str, list[str]] = {}
    for r in sorted(sample.collect(), key=lambda r: (r["reason"], r["rank"])):
        got.setdefault(r["reason"], []).append(r["candidate_id"])
    # The order computed outside the engine: both engines must agree with it, not only with each other.
    expected: dict[str, list[str]] = {}
    for row in sorted(_decision_rows(), key=lambda r: (spark_xxhash64(7, r[0]), r[0])):
        for reason in row[5]:
            expected.setdefault(reason, []).append(row[0])
    assert got == {reason: ids[:3] for reason, ids in expected.items()}
    assert len(expected["mixed_language"]) == 8 and got["mixed_language"] == ["m0", "m6", "m5"]

    # Filters apply before the cut, in the engine.
    filtered = audit.reason_rows(decisions, AuditParams(seed=7, sources=("src_b",), reasons=("code_block",)))
    assert sorted(r["candidate_id"] for r in filtered.collect()) == ["hostile"]
    by_domain = audit.reason_rows(decisions, AuditParams(domains=("logic",)))
    assert {r["candidate_id"] for r in by_domain.collect()} == {"m1", "m3", "m5", "hostile"}
    # The texts and prompt facts are joined to the sample only (the part of write_audit that runs in the engine).
    fetched = {(r["reason"], r["candidate_id"]): r for r in audit.sample_rows(rt, sample)}
    assert len(fetched) == sum(len(v) for v in got.values())
    assert fetched[("near_duplicate", "clean")]["duplicate_of"] == "src_a/p-overlap"
    assert fetched[("near_duplicate", "clean")]["duplicate_of_prompt"] == "What is 2 + 2?"
    assert fetched[("near_duplicate", "clean")]["candidate_reasons"] == []
    hostile = fetched[("incorrect", "hostile")]
    assert hostile["reasoning"] == HOSTILE and hostile["spans"][1]["start"] is None


class Marks(HTMLParser):
    """Per (reason section, candidate): the marks' (span indexes, title, text), and whether a <script> exists."""

    def __init__(self) -> None:
        super().__init__()
        self.article: tuple[str, str] | None = None
        self.field: str | None = None
        self.mark: dict | None = None
        self.marks: dict[tuple[str, str], list[dict]] = {}
        self.tags: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        self._in_title = tag == "title"
        if tag == "article":
            self.article = (a["data-reason"] or "", a["data-candidate-id"] or "")
        elif tag == "div" and "data-field" in a:
            self.field = a["data-field"]
        elif tag == "mark" and self.article:
            self.mark = {"spans": (a["data-spans"] or "").split(), "title": a["title"], "text": "",
                         "field": self.field, "class": a["class"]}
            self.marks.setdefault(self.article, []).append(self.mark)

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self.mark = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self.mark is not None:
            self.mark["text"] += data
        if self._in_title:
            self.title += data


def span_text(marks: list[dict], index: int) -> str:
    return "".join(m["text"] for m in marks if str(index) in m["spans"])


def test_page_sections_escaping_determinism_and_filters(runtime_factory, tmp_path: Path) -> None:
    rt = runtime_factory()
    if rt.engine.name != "sail":
        pytest.skip("the page is rendered in Python from the sample; the engine side is tested on both engines")
    write_tables(rt)
    page = audit.write_audit(rt, tmp_path / "a.html", AuditParams(per_reason=3, seed=7))
    assert page.reasons_table == "silver.decisions"
    # Every reason in the data has a section, in funnel order, with min(N, count) candidates.
    assert list(page.sampled) == ["mixed_language", "code_block", "long_paragraph", "incorrect", "not_selected",
                                  "near_duplicate"]
    assert page.counts == {"mixed_language": 8, "code_block": 2, "long_paragraph": 1, "incorrect": 1,
                           "not_selected": 1, "near_duplicate": 1}
    assert {r: len(ids) for r, ids in page.sampled.items()} == {r: min(3, n) for r, n in page.counts.items()}
    text = page.html.read_text()
    for reason in page.sampled:
        assert f"<section id='reason-{reason}'" in text
    assert text.count("<article ") == sum(min(3, n) for n in page.counts.values())
    assert not re.search(r"(src|href)=['\"]?(https?:|//|[\w./-]+\.(js|css|png|woff2?))", text)  # self-contained

    # Escaped: the hostile candidate's markup is text, never a tag (prompt, reasoning, answer, prompt_id).
    assert "<script" not in text and "<b>" not in text and "<i>" not in text
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in text
    assert "p-&lt;script&gt;" in text
    # Later-stage reasons show the row and the prompt it duplicates; every row has its SQL and anchor.
    assert "src_a/p-overlap" in text and "<td>What is 2 + 2?</td>" in text
    assert "SELECT * FROM silver.candidates WHERE candidate_id = &#x27;clean&#x27;" in text
    assert "<a href='#near_duplicate--clean'>clean</a>" in text
    assert "answer: no final answer found" in text  # a span without offsets is listed, not lost

    absent = audit.write_audit(rt, tmp_path / "absent.html", AuditParams(reasons=("too_long",)))
    assert absent.sampled == {"too_long": []}
    assert "No candidate carries this reason under these filters." in absent.html.read_text()

    again = audit.write_audit(rt, tmp_path / "b.html", AuditParams(per_reason=3, seed=7))
    assert again.html.read_bytes() == page.html.read_bytes()
    other = audit.write_audit(rt, tmp_path / "c.html", AuditParams(per_reason=3, seed=8))
    assert other.sampled["mixed_language"] != page.sampled["mixed_language"]  # another seed, another draw

    # The command line: comma-separated and repeated filters, the config's seed by default.
    @contextlib.contextmanager
    def same_runtime(*_args: object, **_kwargs: object) -> Iterator[Runtime]:
        yield rt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "open_runtime", same_runtime)
        out = tmp_path / "cli" / "audit.html"
        assert cli.main(["audit", "--out", str(out), "--per-reason", "2", "--source", "src_a",
                         "--reason", "mixed_language,code_block", "--reason", "long_paragraph"]) == 0
    filtered = out.read_text()
    articles = [a for a in filtered.split("<article ")[1:]]
    assert len(articles) == 2 + 1 + 1  # mixed_language 2 of 5 in src_a, code_block 1, long_paragraph 1
    assert all("src_a / " in a for a in articles)
    assert "<section id='reason-near_duplicate'" not in filtered
    assert f"xxhash64({rt.config.seed}, candidate_id)" in filtered


def test_highlights_in_headless_chromium(runtime_factory, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (make setup installs it with apt-get when it can)")
    rt = runtime_factory()
    if rt.engine.name != "sail":
        pytest.skip("the page is the same on both engines; the browser check runs once, on Sail")
    write_tables(rt)
    page = audit.write_audit(rt, tmp_path / "audit.html", AuditParams(per_reason=10, seed=7))
    dom = dump_dom(browser, page.html, tmp_path / "profile")
    parsed = Marks()
    parsed.feed(dom)
    assert parsed.marks, dom[-2000:]
    assert "script" not in parsed.tags and parsed.title == "sftmix audit"  # nothing ran, nothing injected

    # Overlapping spans: each span's text is exactly its offsets' text, whatever it overlaps.
    marks = parsed.marks[("mixed_language", "overlap")]
    assert span_text([m for m in marks if m["field"] == "reasoning"], 0) == OVERLAP[12:30]
    assert span_text([m for m in marks if m["field"] == "reasoning"], 1) == OVERLAP[0:45]
    assert span_text([m for m in marks if m["field"] == "answer"], 2) == ANSWER[0:22]
    inner = next(m for m in marks if m["spans"] == ["0", "1"])
    assert inner["class"] == "hit" and "zh 1.00" in inner["title"] and "45 chars" in inner["title"]
    outer = next(m for m in marks if m["spans"] == ["1"])
    assert outer["class"] == "other"  # the paragraph span is another reason in this section
    assert next(m for m in parsed.marks[("long_paragraph", "overlap")] if m["spans"] == ["1"])["class"] == "hit"

    # The hostile text is highlighted as text, details on hover; every plain candidate has its mark.
    hostile = parsed.marks[("code_block", "hostile")]
    assert span_text(hostile, 0) == "<script>document.title='pwned'</script>"
    assert hostile[0]["title"] == 'code_block: reasoning: code-like line "<script>"'
    for i in range(7):
        (mark,) = parsed.marks[("mixed_language", f"m{i}")]
        assert mark["text"] == "Ceci est en français." and mark["class"] == "hit"


def demo_conf(demo: Path) -> Path:
    """conf/local.yaml pointed at a small demo; quotas cut to what ~250 candidates can fill."""
    def moved(value: Any) -> Any:  # every ../demo/ path (sources, benchmarks, any other input) into `demo`
        if isinstance(value, str) and value.startswith("../demo/"):
            return str(demo / value.removeprefix("../demo/"))
        if isinstance(value, list):
            return [moved(v) for v in value]
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        return value

    local = moved(yaml.safe_load((REPO / "conf" / "local.yaml").read_text()))
    local["extends"] = str(REPO / "conf" / "base.yaml")
    for source in local["sources"]:
        source["max_bad_fraction"] = 1.0  # a small demo has a high share of planted bad records
    local["mix"]["total"] = 40
    local["cold_start"]["size"] = 5
    path = demo / "conf.yaml"
    path.write_text(yaml.safe_dump(local))
    return path


def test_audit_of_a_demo_lake_covers_every_reason(runtime_factory, tmp_path_factory) -> None:
    generator = pytest.importorskip("sftmix.jobs.demo.generator")
    rt = runtime_factory()
    if rt.engine.name != "sail":
        pytest.skip("the stages are tested on both engines elsewhere; the audit's engine side is above")
    demo = tmp_path_factory.mktemp("audit-demo")
    generator.generate_demo_data(
        demo, generator.DemoParams(reasoning_prompts=60, candidates_per_prompt=4, non_reasoning_records=40)
    )
    rt = runtime_factory(conf=demo_conf(demo))
    run_pipeline(rt, ["ingest", "annotate", "select", "dedup", "mix"])
    decisions = rt.tables.read("silver.decisions")
    counts = {
        r["reason"]: r["count"]
        for r in decisions.select(F.explode("reject_reasons").alias("reason")).groupBy("reason").count().collect()
    }
    assert {"incorrect", "not_sampled"} <= set(counts) and len(counts) >= 6
    page = audit.write_audit(rt, demo / "audit.html", AuditParams(per_reason=4))
    assert page.counts == counts
    assert set(page.sampled) == set(counts)
    assert {r: len(ids) for r, ids in page.sampled.items()} == {r: min(4, n) for r, n in counts.items()}
    text = page.html.read_text()
    assert "<mark class='hit'" in text
    assert text.count("<article ") == sum(min(4, n) for n in counts.values())
    source = "math_grouped"
    only = audit.write_audit(rt, demo / "math.html", AuditParams(per_reason=4, sources=(source,)))
    assert only.sampled and all(f"{source} / " in a for a in only.html.read_text().split("<article ")[1:])
    again = audit.write_audit(rt, demo / "again.html", AuditParams(per_reason=4))
    assert again.html.read_bytes() == page.html.read_bytes()
