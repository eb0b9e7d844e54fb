"""``sftmix audit``: one self-contained HTML page with a sample of rejected candidates per reason.

Per reject reason, the first N candidates in seeded hash order
(``xxhash64(seed, candidate_id)``, the order every other sftmix draw uses),
each with its prompt, reasoning and answer, the offending spans highlighted
(``<mark>``, the span's detail on hover), the prompt-level facts behind a
later-stage reason (which prompt it duplicates, which benchmark it matches),
an anchor per candidate and the SQL that fetches the row.

Only the sample reaches the driver: the reasons are exploded, ranked and cut
to N per reason in the engine, and the text columns are joined to those
N x reasons ids before anything is collected. The page has no script, no
style sheet or font from elsewhere and no timestamp, so the same tables, seed
and filters give a byte-identical file.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sftmix.jobs.runtime.context import Runtime
from sftmix.transforms.annotate import ANNOTATE_REASONS
from sftmix.transforms.verify import VERIFY_REASONS

log = logging.getLogger("sftmix")

# The funnel order of the README's reason table; a reason unknown here sorts after, by name.
LATER_REASONS = ("not_selected", "duplicate_prompt", "near_duplicate", "contaminated", "not_sampled")
REASON_ORDER = (*ANNOTATE_REASONS, *VERIFY_REASONS, *LATER_REASONS)
# A reasoning trace runs to 100k characters; past this the page keeps the spans with some context
# around them, the head and the tail, so 20 samples x 17 reasons stay a page a browser opens quickly.
FULL_TEXT_CHARS = 6000
CONTEXT_CHARS = 400
# Facts shown under a candidate when the tables have them (prompt_status for the dedup reasons).
FACT_COLUMNS = (
    "verdict", "extracted_answer", "reference_answer", "finish_reason", "dedup_status", "duplicate_of",
    "duplicate_of_prompt", "contaminated_by", "contamination_ngram", "contamination_match",
)


@dataclass(frozen=True)
class AuditParams:
    per_reason: int = 20
    seed: int = 1234
    sources: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Span:
    index: int
    reason: str
    start: int | None
    end: int | None
    detail: str

    @property
    def field(self) -> str:
        return "answer" if self.detail.startswith("answer:") else "reasoning"


@dataclass
class AuditPage:
    html: Path
    counts: dict[str, int] = field(default_factory=dict)  # reason -> candidates carrying it (after filters)
    sampled: dict[str, list[str]] = field(default_factory=dict)  # reason -> candidate_ids, page order
    reasons_table: str = ""
    seconds: float = 0.0


# --- engine side --------------------------------------------------------------------------


def reason_rows(reasons: DataFrame, params: AuditParams) -> DataFrame:
    """One row per (candidate, reason) after the filters, with its seeded hash-order key."""
    df = reasons
    if params.sources:
        df = df.where(F.col("source").isin(list(params.sources)))
    if params.domains:
        df = df.where(F.col("domain").isin(list(params.domains)))
    rows = df.select("candidate_id", F.explode("reject_reasons").alias("reason"))
    if params.reasons:
        rows = rows.where(F.col("reason").isin(list(params.reasons)))
    return rows.withColumn("order_key", F.xxhash64(F.lit(params.seed), F.col("candidate_id")))


def sample_reasons(rows: DataFrame, per_reason: int) -> DataFrame:
    """The first ``per_reason`` rows of each reason in hash order (ties, never seen, by candidate_id)."""
    order = Window.partitionBy("reason").orderBy("order_key", "candidate_id")
    return (
        rows.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= per_reason)
        .select("candidate_id", "reason", "rank")
    )


def _column(df: DataFrame, name: str, cast: str = "string") -> Column:
    return F.col(name) if name in df.columns else F.lit(None).cast(cast).alias(name)


def sample_rows(rt: Runtime, sample: DataFrame) -> list[dict[str, Any]]:
    """The sampled candidates with their texts, spans and prompt-level facts, collected (N x reasons rows)."""
    candidates = rt.tables.read("silver.candidates")
    wanted = ["source", "prompt_id", "kind", "domain", "system", "prompt", "reasoning", "answer",
              "verdict", "extracted_answer", "reference_answer", "finish_reason"]
    texts = candidates.select(
        "candidate_id", *[_column(candidates, c) for c in wanted],
        _column(candidates, "spans", "array<struct<reason:string,start:int,end:int,detail:string>>"),
        F.col("reject_reasons").alias("candidate_reasons"),
    )
    rows = sample.join(texts, "candidate_id")
    if rt.tables.exists("silver.prompt_status"):
        status = rt.tables.read("silver.prompt_status")
        facts = ["dedup_status", "duplicate_of", "contaminated_by", "contamination_ngram", "contamination_match"]
        rows = rows.join(
            status.select("source", "prompt_id", *[_column(status, c) for c in facts]), ["source", "prompt_id"], "left"
        )
        if rt.tables.exists("silver.prompts"):
            # duplicate_of is "source/prompt_id" of the kept prompt: show its text beside ours.
            prompts = rt.tables.read("silver.prompts").select(
                F.concat_ws("/", "source", "prompt_id").alias("duplicate_of"),
                F.col("prompt").alias("duplicate_of_prompt"),
            )
            rows = rows.join(prompts, "duplicate_of", "left")
    return [r.asDict(recursive=True) for r in rows.collect()]


def reasons_table(rt: Runtime) -> str:
    """silver.decisions holds every stage's reasons; before mix has run, silver.candidates has annotate's."""
    return "silver.decisions" if rt.tables.exists("silver.decisions") else "silver.candidates"


def write_audit(rt: Runtime, out: Path, params: AuditParams) -> AuditPage:
    started = time.perf_counter()
    if not rt.tables.exists("silver.candidates"):
        raise SystemExit("audit: silver.candidates does not exist yet (written by the annotate stage)")
    source_table = reasons_table(rt)
    rows = reason_rows(rt.tables.read(source_table), params)
    counts = {r["reason"]: int(r["count"]) for r in rows.groupBy("reason").count().collect()}
    collected = sample_rows(rt, sample_reasons(rows, params.per_reason))
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(collected, key=lambda r: (r["reason"], r["rank"])):
        by_reason.setdefault(row["reason"], []).append(row)
    shown = sorted(set(counts) | set(params.reasons), key=reason_sort_key)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(rt, params, source_table, shown, counts, by_reason), encoding="utf-8")
    page = AuditPage(
        out, counts, {r: [c["candidate_id"] for c in by_reason.get(r, [])] for r in shown}, source_table,
        time.perf_counter() - started,
    )
    log.info("audit: %d candidates under %d reasons in %.1f s -> %s",
             len(collected), len(shown), page.seconds, out)
    return page


def reason_sort_key(reason: str) -> tuple[int, str]:
    return (REASON_ORDER.index(reason), "") if reason in REASON_ORDER else (len(REASON_ORDER), reason)


# --- highlighting -------------------------------------------------------------------------


def spans_of(row: dict[str, Any]) -> list[Span]:
    spans = [
        Span(i, s.get("reason") or "", s.get("start"), s.get("end"), s.get("detail") or "")
        for i, s in enumerate(row.get("spans") or [])
    ]
    return spans


def placed(span: Span, text: str | None) -> bool:
    """A span that points at characters of its text (none: no start, empty, or past the end)."""
    return (
        text is not None and span.start is not None and span.end is not None
        and 0 <= span.start < span.end <= len(text)
    )


def _kept_ranges(length: int, spans: list[Span]) -> list[tuple[int, int]]:
    """Ranges of a long text to show: head, tail and every span with context, merged."""
    if length <= FULL_TEXT_CHARS:
        return [(0, length)]
    wanted = [(0, CONTEXT_CHARS), (length - CONTEXT_CHARS, length)]
    wanted += [(max(0, s.start - CONTEXT_CHARS), min(length, s.end + CONTEXT_CHARS)) for s in spans]  # type: ignore[operator]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(wanted):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: list[Span], focus: str) -> str:
    """Escaped ``text`` with each placed span in ``<mark>``.

    Overlapping spans are flattened: the text is cut at every span boundary and
    each piece covered by spans becomes one ``<mark>`` whose ``data-spans``
    lists the covering spans' indexes and whose title lists their details, so
    nesting never breaks and the result does not depend on span order. A
    span's own text is the concatenation of the marks that list its index.
    """
    ranges = _kept_ranges(len(text), spans)
    cuts = sorted({0, len(text)} | {p for r in ranges for p in r} | {p for s in spans for p in (s.start, s.end)})
    parts: list[str] = []
    shown_until = 0
    for start, end in zip(cuts, cuts[1:], strict=False):
        if not any(a <= start and end <= b for a, b in ranges):
            continue
        if start > shown_until:
            parts.append(f"<span class='elided'>[… {start - shown_until:,} characters …]</span>")
        shown_until = end
        piece = html.escape(text[start:end])
        covering = [s for s in spans if s.start <= start and end <= s.end]  # type: ignore[operator]
        if not covering:
            parts.append(piece)
            continue
        kind = "hit" if any(s.reason == focus for s in covering) else "other"
        title = html.escape("\n".join(f"{s.reason}: {s.detail}" for s in covering), quote=True)
        indexes = " ".join(str(s.index) for s in covering)
        reasons = " ".join(sorted({s.reason for s in covering}))
        parts.append(
            f"<mark class='{kind}' data-spans='{indexes}' data-reasons='{html.escape(reasons, quote=True)}' "
            f"title='{title}'>{piece}</mark>"
        )
    if shown_until < len(text):
        parts.append(f"<span class='elided'>[… {len(text) - shown_until:,} characters …]</span>")
    return "".join(parts)


# --- page ---------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; color: #1f2328; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 2px solid #d0d7de; }
h3 { font-size: 1.05em; margin: 0 0 .3em; } h4 { margin: .6em 0 .2em; font-size: .95em; color: #57606a; }
table { border-collapse: collapse; margin: .4em 0; font-size: 13px; }
td, th { border: 1px solid #d0d7de; padding: 2px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
article { border: 1px solid #d0d7de; border-radius: 6px; padding: .8em 1em; margin: 1em 0; }
article:target { outline: 3px solid #1f6feb; }
.text { white-space: pre-wrap; font: 12.5px/1.4 ui-monospace, monospace; background: #f6f8fa;
        padding: .5em; max-height: 28em; overflow: auto; border-radius: 4px; }
mark.hit { background: #ffd33d; } mark.other { background: #c8e1ff; }
.elided { color: #8c959f; font-style: italic; } .note { color: #57606a; font-style: italic; }
code { background: #f6f8fa; padding: 0 3px; } .meta { color: #57606a; font-weight: normal; }
"""


def render_page(
    rt: Runtime,
    params: AuditParams,
    source_table: str,
    shown: list[str],
    counts: dict[str, int],
    by_reason: dict[str, list[dict[str, Any]]],
) -> str:
    esc = html.escape
    filters = ", ".join(
        f"{name} in ({', '.join(values)})"
        for name, values in (("source", params.sources), ("domain", params.domains), ("reason", params.reasons))
        if values
    ) or "none"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>sftmix audit</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>sftmix audit: rejected candidates by reason</h1>",
        f"<p>Tables under <code>{esc(rt.tables.storage.root)}</code>; reasons from <code>{esc(source_table)}</code>, "
        f"texts and spans from <code>silver.candidates</code>. Up to {params.per_reason} candidates per reason, "
        f"in the order of <code>xxhash64({params.seed}, candidate_id)</code>. Filters: {esc(filters)}. "
        "Yellow marks are the section's reason, blue ones another reason of the same candidate; "
        "hover a mark for its detail. Each candidate ends with the query that fetches its row "
        "(<code>sftmix sql \"…\"</code>, or a notebook on <code>sftmix serve</code>).</p>",
        "<table><tr><th>reason</th><th>candidates</th><th>shown</th></tr>",
    ]
    for reason in shown:
        parts.append(
            f"<tr><td><a href='#reason-{esc(reason, quote=True)}'>{esc(reason)}</a></td>"
            f"<td class='n'>{counts.get(reason, 0):,}</td><td class='n'>{len(by_reason.get(reason, []))}</td></tr>"
        )
    parts.append("</table>")
    for reason in shown:
        rows = by_reason.get(reason, [])
        parts.append(f"<section id='reason-{esc(reason, quote=True)}' data-reason='{esc(reason, quote=True)}'>")
        parts.append(f"<h2>{esc(reason)} <span class='meta'>({len(rows)} of {counts.get(reason, 0):,})</span></h2>")
        if not rows:
            parts.append("<p class='note'>No candidate carries this reason under these filters.</p>")
        parts.extend(render_candidate(row, reason) for row in rows)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_candidate(row: dict[str, Any], reason: str) -> str:
    esc = html.escape
    cid = row["candidate_id"]
    anchor = esc(f"{reason}--{cid}", quote=True)
    spans = spans_of(row)
    own = ", ".join(f"<code>{esc(r)}</code>" for r in row.get("candidate_reasons") or []) or "none"
    parts = [
        f"<article id='{anchor}' data-candidate-id='{esc(cid, quote=True)}' data-reason='{esc(reason, quote=True)}'>",
        f"<h3><a href='#{anchor}'>{esc(cid)}</a> <span class='meta'>{esc(str(row.get('source')))} / "
        f"{esc(str(row.get('prompt_id')))} · {esc(str(row.get('kind')))} · {esc(str(row.get('domain')))}</span></h3>",
        f"<p>Candidate-level reasons (annotate): {own}</p>",
    ]
    facts = [(name, row.get(name)) for name in FACT_COLUMNS if row.get(name) not in (None, "")]
    if facts:
        cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_short(str(v)))}</td></tr>" for k, v in facts)
        parts.append(f"<table class='facts'>{cells}</table>")
    prompt = "\n\n".join(p for p in (row.get("system"), row.get("prompt")) if p)
    parts.append(f"<h4>Prompt</h4><div class='text' data-field='prompt'>{highlight(prompt, [], reason)}</div>")
    for name in ("reasoning", "answer"):
        text = row.get(name)
        if text is None:
            parts.append(f"<h4>{name.capitalize()}</h4><p class='note'>none</p>")
            continue
        mine = [s for s in spans if s.field == name and placed(s, text)]
        parts.append(
            f"<h4>{name.capitalize()} <span class='meta'>({len(text):,} characters)</span></h4>"
            f"<div class='text' data-field='{name}'>{highlight(text, mine, reason)}</div>"
        )
    loose = [s for s in spans if not placed(s, row.get(s.field))]
    if loose:
        items = "".join(f"<li><code>{esc(s.reason)}</code>: {esc(s.detail)}</li>" for s in loose)
        parts.append(f"<h4>Spans without a place in the text</h4><ul>{items}</ul>")
    query = f"SELECT * FROM silver.candidates WHERE candidate_id = '{cid.replace(chr(39), chr(39) * 2)}'"
    parts.append(f"<p class='sql'>Row: <code>{esc(query)}</code></p>")
    parts.append("</article>")
    return "\n".join(parts)


def _short(value: str, limit: int = 2000) -> str:
    return value if len(value) <= limit else value[:limit] + f" [… {len(value) - limit:,} characters …]"
