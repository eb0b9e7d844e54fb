"""``sftmix report``: one self-contained HTML page (plus the same plots as PNG files).

Every figure is computed as a small aggregate in the engine (group-by counts,
histogram buckets) and only those few rows reach the driver; no data row is
collected. A plot whose table does not exist yet (the stage has not run) is
replaced by a note saying which table and stage it waits for, so the report
works after any prefix of the pipeline.

The PNGs are embedded as ``data:`` URIs so the page can be mailed or attached
to a ticket as one file; they are also written beside it for slides. A script
at the end of the page writes each image's ``naturalWidth`` into the DOM, so a
headless browser (``chromium --dump-dom``) can check that every image decoded.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI; Figure objects below never touch pyplot state

from matplotlib.axes import Axes  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from pyspark.sql import Column, DataFrame, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from sftmix.jobs.ops import latest_runs  # noqa: E402
from sftmix.jobs.runtime.context import Runtime  # noqa: E402

log = logging.getLogger("sftmix")

STAGE_ORDER = ("ingest", "annotate", "select", "dedup", "mix", "export")
# Lengths span four orders of magnitude (a one-line chat answer to a 30k-token proof): log bins.
BINS_PER_DECADE = 8
PASS_RATE_BINS = 20
TOP_LANGUAGES = 12
COLORS = {"before": "#9aa5b1", "after": "#1f6feb", "asked": "#9aa5b1", "available": "#d0d7de", "taken": "#1f6feb"}


class Skip(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A section cannot be drawn yet; the message says why (shown in the page)."""


@dataclass
class Section:
    key: str
    title: str
    caption: str
    image: Path | None = None
    png: bytes | None = None
    note: str | None = None
    table: str | None = None  # extra HTML (a small table of the figures behind the plot)


@dataclass
class Report:
    html: Path
    images: list[Path] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    seconds: float = 0.0


def write_report(rt: Runtime, out_dir: Path) -> Report:
    """Build every section, write ``report.html`` and one PNG per drawn section into ``out_dir``."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [_section(rt, key, title, caption, build) for key, title, caption, build in SECTIONS]
    images = []
    for section in sections:
        if section.png is not None:
            section.image = out_dir / f"{section.key}.png"
            section.image.write_bytes(section.png)
            images.append(section.image)
    page = out_dir / "report.html"
    page.write_text(render_html(rt, sections), encoding="utf-8")
    report = Report(page, images, sections, time.perf_counter() - started)
    drawn = sum(1 for s in sections if s.png is not None)
    log.info("report: %d of %d plots in %.1f s -> %s", drawn, len(sections), report.seconds, page)
    return report


def _section(rt: Runtime, key: str, title: str, caption: str, build: Callable) -> Section:
    section = Section(key, title, caption)
    try:
        figure, section.table = build(rt)
    except Skip as skip:
        section.note = str(skip)
        return section
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    section.png = buffer.getvalue()
    return section


# --- reading ------------------------------------------------------------------------------


def _table(rt: Runtime, name: str, writer: str) -> DataFrame:
    if not rt.tables.exists(name):
        raise Skip(f"{name} does not exist yet (written by {writer})")
    return rt.tables.read(name)


def _need(df: DataFrame, name: str, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise Skip(f"{name} has no column {', '.join(missing)}")


def _length(df: DataFrame) -> Column | None:
    """Characters of reasoning + answer, from whichever columns the table has."""
    if {"reasoning_chars", "answer_chars"} <= set(df.columns):
        return F.coalesce(F.col("reasoning_chars"), F.lit(0)) + F.coalesce(F.col("answer_chars"), F.lit(0))
    if "completion" in df.columns:
        reasoning = F.length("reasoning_content") if "reasoning_content" in df.columns else F.lit(0)
        return F.coalesce(F.length("completion"), F.lit(0)) + F.coalesce(reasoning, F.lit(0))
    return None


def _borrow(rows: DataFrame, candidates: DataFrame, columns: list[str]) -> DataFrame:
    """Give gold rows the candidate columns they lack, joined by candidate_id (copies kept)."""
    missing = [c for c in columns if c not in rows.columns and c in candidates.columns]
    if not missing or "candidate_id" not in rows.columns:
        return rows
    return rows.join(candidates.select("candidate_id", *missing), "candidate_id", "left")


def _latest_metrics(rt: Runtime) -> list[dict]:
    """Per stage, the most recent ops.stage_metrics row that did work (an incremental no-op rerun has 0 in)."""
    metrics = _table(rt, "ops.stage_metrics", "every stage run")
    order = Window.partitionBy("stage").orderBy(F.col("finished_at").desc(), F.col("run_id").desc())
    latest = (
        metrics.where(F.col("rows_in") > 0)
        .withColumn("_n", F.row_number().over(order))
        .where(F.col("_n") == 1)
        .drop("_n")
        .collect()
    )
    rows = [r.asDict() for r in latest]
    return sorted(rows, key=lambda r: _stage_rank(r["stage"]))


def _stage_rank(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)


# --- sections -----------------------------------------------------------------------------


def funnel(rt: Runtime) -> tuple[Figure, str]:
    metrics = _latest_metrics(rt)
    if not metrics:
        raise Skip("ops.stage_metrics holds no stage that processed rows yet")
    reasons, source = _reason_counts(rt, metrics)
    figure = Figure(figsize=(11, min(6.0, max(3.0, 0.28 * max(len(metrics), len(reasons)) + 1.2))))
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    names = [m["stage"] for m in metrics][::-1]
    y = range(len(names))
    left.barh(y, [m["rows_in"] for m in metrics][::-1], color=COLORS["before"], label="rows in")
    left.barh(y, [m["rows_out"] for m in metrics][::-1], height=0.5, color=COLORS["after"], label="rows out")
    left.set_yticks(list(y), names)
    left.set_title("rows per stage (latest run of each stage)")
    left.legend(loc="lower right", fontsize=8)
    _thousands(left, "x")
    if reasons:
        items = sorted(reasons.items(), key=lambda kv: kv[1])
        right.barh(range(len(items)), [v for _, v in items], color="#cf222e")
        right.set_yticks(range(len(items)), [k for k, _ in items])
        right.set_title(f"rows per reject reason ({source})")
        _thousands(right, "x")
    else:
        right.text(0.5, 0.5, "no rejected rows", ha="center", va="center")
        right.set_axis_off()
    figure.tight_layout()
    header = "<tr><th>stage</th><th>run</th><th>rows in</th><th>rows out</th><th>seconds</th><th>rejected</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(m['stage'])}</td><td>{html.escape(m['run_id'])}</td>"
        f"<td class='n'>{m['rows_in']:,}</td><td class='n'>{m['rows_out']:,}</td>"
        f"<td class='n'>{m['seconds']:.1f}</td>"
        f"<td>{html.escape(_reasons_text(m['rejected']))}</td></tr>"
        for m in metrics
    )
    return figure, f"<table>{header}{body}</table>"


def _reason_counts(rt: Runtime, metrics: list[dict]) -> tuple[dict[str, int], str]:
    """Rows per reason: every reason of every candidate when a table holds them, else the stage logs."""
    for name in ("silver.decisions", "silver.candidates"):
        if rt.tables.exists(name):
            table = rt.tables.read(name)
            if "reject_reasons" in table.columns:
                counted = table.select(F.explode("reject_reasons").alias("r")).groupBy("r").count().collect()
                return {row["r"]: int(row["count"]) for row in counted}, name
    merged: dict[str, int] = {}
    for m in metrics:
        for reason, n in json.loads(m["rejected"] or "{}").items():
            merged[reason] = merged.get(reason, 0) + int(n)
    return merged, "ops.stage_metrics"


def _reasons_text(rejected: str | None) -> str:
    items = json.loads(rejected or "{}")
    return ", ".join(f"{k} {v:,}" for k, v in sorted(items.items(), key=lambda kv: -kv[1]))


def lengths(rt: Runtime) -> tuple[Figure, str]:
    candidates = _table(rt, "silver.candidates", "the annotate stage")
    before_len = _length(candidates)
    if before_len is None:
        raise Skip("silver.candidates has no length or completion column")
    before = _length_histogram(candidates, before_len)
    after: dict[tuple[str, int], int] = {}
    note = "gold.sft_mix does not exist yet (mix stage): before only"
    if rt.tables.exists("gold.sft_mix"):
        mix = _borrow(rt.tables.read("gold.sft_mix"), candidates, ["reasoning_chars", "answer_chars", "kind"])
        after_len = _length(mix)
        if after_len is not None:
            after, note = _length_histogram(mix, after_len), ""
    kinds = sorted({k for k, _ in before} | {k for k, _ in after})
    figure = Figure(figsize=(11, 3.6))
    axes = figure.subplots(1, len(kinds), squeeze=False)[0]
    for axis, kind in zip(axes, kinds, strict=True):
        for label, hist in (("before: silver.candidates", before), ("after: gold.sft_mix", after)):
            counts = {b: n for (k, b), n in hist.items() if k == kind}
            total = sum(counts.values())
            if not total:
                continue
            # x is length + 1 on a log axis, so an empty answer (0 chars) has a place and every bin one width.
            buckets = range(min(counts), max(counts) + 2)
            edges = [_bin_edge(b) for b in buckets]
            shares = [counts.get(b, 0) / total for b in buckets[:-1]]
            if label.startswith("before"):
                axis.stairs(shares, edges, fill=True, color=COLORS["before"], label=f"{label} ({total:,})")
            else:  # an outline over the filled "before", so both stay readable where they overlap
                axis.stairs(shares, edges, color=COLORS["after"], linewidth=2, label=f"{label} ({total:,})")
        axis.set_xscale("log")
        axis.set_xlabel("characters of reasoning + answer, + 1")
        axis.set_ylabel("share of rows")
        axis.set_title(kind)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure, f"<p class='note'>{html.escape(note)}</p>" if note else ""


def _length_histogram(df: DataFrame, length: Column) -> dict[tuple[str, int], int]:
    kind = F.coalesce(F.col("kind"), F.lit("unknown")) if "kind" in df.columns else F.lit("all")
    bucket = F.floor(F.log10(length.cast("double") + F.lit(1.0)) * F.lit(float(BINS_PER_DECADE))).cast("int")
    rows = df.select(kind.alias("k"), bucket.alias("b")).groupBy("k", "b").count().collect()
    return {(r["k"], int(r["b"] or 0)): int(r["count"]) for r in rows}


def _bin_edge(bucket: int) -> float:
    """Left edge of a bucket on the length + 1 scale."""
    return 10 ** (bucket / BINS_PER_DECADE)


def languages(rt: Runtime) -> tuple[Figure, str]:
    candidates = _table(rt, "silver.candidates", "the annotate stage")
    column = next((c for c in ("answer_language", "language") if c in candidates.columns), None)
    if column is None:
        raise Skip("silver.candidates has no answer_language or language column")
    series = {"before: silver.candidates": _language_counts(candidates, column)}
    if rt.tables.exists("gold.sft_mix"):
        mix = _borrow(rt.tables.read("gold.sft_mix"), candidates, [column])
        if column in mix.columns:
            series["after: gold.sft_mix"] = _language_counts(mix, column)
    first = series["before: silver.candidates"]
    top = sorted(first, key=lambda k: -first[k])[:TOP_LANGUAGES]
    figure = Figure(figsize=(11, 3.6))
    axis = figure.subplots()
    width = 0.8 / len(series)
    for i, (label, counts) in enumerate(series.items()):
        total = sum(counts.values()) or 1
        shares = [counts.get(lang, 0) / total for lang in top] + [
            sum(n for lang, n in counts.items() if lang not in top) / total
        ]
        color = COLORS["before"] if label.startswith("before") else COLORS["after"]
        axis.bar([x + i * width for x in range(len(top) + 1)], shares, width=width, color=color,
                 label=f"{label} ({total:,})")
    axis.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(top) + 1)], [*top, "other"])
    axis.set_yscale("log")  # one language usually dominates; the log scale keeps the others visible
    axis.set_ylabel("share of rows (log)")
    axis.set_title(f"languages ({column})")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure, ""


def _language_counts(df: DataFrame, column: str) -> dict[str, int]:
    label = F.coalesce(F.col(column), F.lit("none"))
    return {r["l"]: int(r["count"]) for r in df.select(label.alias("l")).groupBy("l").count().collect()}


def domain_mix(rt: Runtime) -> tuple[Figure, str]:
    if rt.tables.exists("ops.mix_plan"):
        plan = rt.tables.read("ops.mix_plan")
        _need(plan, "ops.mix_plan", "kind", "domain", "asked", "taken")
        if "dataset" in plan.columns:
            plan = plan.where(F.col("dataset") == "sft_mix")
        extra = ["available"] if "available" in plan.columns else []
        rows = [r.asDict() for r in plan.select("kind", "domain", "asked", "taken", *extra).collect()]
        title, series = "SFT mix per stratum: asked vs taken (ops.mix_plan)", ["asked", *extra, "taken"]
    else:
        mix = _table(rt, "gold.sft_mix", "the mix stage")
        _need(mix, "gold.sft_mix", "kind", "domain")
        rows = [r.asDict() for r in mix.groupBy("kind", "domain").agg(F.count("*").alias("taken")).collect()]
        title, series = "SFT mix per stratum: taken (no ops.mix_plan: nothing asked to compare)", ["taken"]
    if not rows:
        raise Skip("the mix plan is empty")
    rows.sort(key=lambda r: (str(r["kind"]), -int(r.get("asked") or r["taken"] or 0)))
    labels = [f"{r['kind']}\n{r['domain']}" for r in rows]
    figure = Figure(figsize=(11, 3.8))
    axis = figure.subplots()
    width = 0.8 / len(series)
    for i, name in enumerate(series):
        axis.bar([x + i * width for x in range(len(rows))], [int(r.get(name) or 0) for r in rows],
                 width=width, color=COLORS[name], label=name)
    axis.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(rows))], labels, fontsize=8)
    axis.set_title(title)
    axis.legend(fontsize=8)
    _thousands(axis, "y")
    figure.tight_layout()
    header = "<tr><th>kind</th><th>domain</th>" + "".join(f"<th>{s}</th>" for s in series) + "</tr>"
    body = "".join(
        f"<tr><td>{html.escape(str(r['kind']))}</td><td>{html.escape(str(r['domain']))}</td>"
        + "".join(f"<td class='n'>{int(r.get(s) or 0):,}</td>" for s in series)
        + "</tr>"
        for r in rows
    )
    return figure, f"<table>{header}{body}</table>"


def pass_rates(rt: Runtime) -> tuple[Figure, str]:
    prompts = _table(rt, "silver.prompts", "the select stage")
    _need(prompts, "silver.prompts", "pass_rate")
    kind = F.coalesce(F.col("kind"), F.lit("unknown")) if "kind" in prompts.columns else F.lit("all")
    rate = F.col("pass_rate").cast("double")
    bucket = F.when(rate.isNull(), F.lit(-1)).otherwise(
        F.least(F.floor(rate * PASS_RATE_BINS), F.lit(PASS_RATE_BINS - 1)).cast("int")
    )
    rows = prompts.select(kind.alias("k"), bucket.alias("b")).groupBy("k", "b").count().collect()
    unknown = sum(int(r["count"]) for r in rows if r["b"] == -1)
    counts: dict[str, dict[int, int]] = {}
    for r in rows:
        if r["b"] != -1:
            counts.setdefault(r["k"], {})[int(r["b"])] = int(r["count"])
    if not counts:
        raise Skip(f"no prompt in silver.prompts has a pass rate ({unknown:,} without one)")
    figure = Figure(figsize=(11, 3.6))
    axis = figure.subplots()
    bottom = [0] * PASS_RATE_BINS
    palette = ["#1f6feb", "#8250df", "#bf8700", "#1a7f37", "#cf222e"]
    for i, (name, hist) in enumerate(sorted(counts.items())):
        heights = [hist.get(b, 0) for b in range(PASS_RATE_BINS)]
        axis.bar([b / PASS_RATE_BINS for b in range(PASS_RATE_BINS)], heights, width=1 / PASS_RATE_BINS,
                 align="edge", bottom=bottom, color=palette[i % len(palette)], label=name, edgecolor="white")
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    axis.set_xlim(0, 1)
    axis.set_xlabel("pass rate (correct / verified candidates per prompt)")
    axis.set_ylabel("prompts")
    axis.set_title("pass rate per prompt; 0 < rate < 1 feeds the RL prompt pool")
    axis.legend(fontsize=8)
    figure.tight_layout()
    note = f"<p class='note'>{unknown:,} prompts have no pass rate (nothing verifiable).</p>" if unknown else ""
    return figure, note


def _thousands(axes: Axes, which: str) -> None:
    """Tick labels as 12,000 rather than 1.2e4: the figures are row counts."""
    target = axes.xaxis if which == "x" else axes.yaxis
    target.set_major_locator(MaxNLocator(nbins=5, integer=True))  # no 0.5-row ticks, no crowded labels
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


SECTIONS: list[tuple[str, str, str, Callable[[Runtime], tuple[Figure, str]]]] = [
    ("funnel", "Funnel", "Rows in and out of each stage, and how many rows carry each reject reason "
     "(a row can carry several).", funnel),
    ("lengths", "Length distributions", "Reasoning + answer length of every annotated candidate (before) "
     "and of the SFT mix (after), per kind; log-width bins, each series scaled to its own total.", lengths),
    ("languages", "Languages", "Detected answer language, share of rows before and after.", languages),
    ("domain_mix", "Domain mix", "Rows per stratum (kind, domain): what the config asked for, what was "
     "available, what the mix took.", domain_mix),
    ("pass_rate", "Pass rates", "Per prompt: correct / verified candidates.", pass_rates),
]


# --- page ---------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; color: #1f2328; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
td, th { border: 1px solid #d0d7de; padding: 2px 8px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; }
.note { color: #57606a; font-style: italic; } .skip { color: #9a6700; }
code { background: #f6f8fa; padding: 0 3px; }
"""

# Written into the page so a headless browser's --dump-dom shows whether every image decoded.
CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images), loaded = 0;
  images.forEach(function (img) {
    img.setAttribute('data-natural-width', String(img.naturalWidth));
    if (img.complete && img.naturalWidth > 0) { loaded += 1; }
  });
  var status = document.getElementById('image-status');
  status.setAttribute('data-loaded', String(loaded));
  status.setAttribute('data-total', String(images.length));
  status.textContent = loaded + ' of ' + images.length + ' images loaded';
});
"""


def render_html(rt: Runtime, sections: list[Section]) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>sftmix report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>sftmix report</h1>",
        _runs_html(rt),
    ]
    for section in sections:
        parts.append(f"<h2 id='{section.key}'>{html.escape(section.title)}</h2>")
        parts.append(f"<p>{html.escape(section.caption)}</p>")
        if section.png is not None:
            data = base64.b64encode(section.png).decode("ascii")
            alt = html.escape(section.title)
            parts.append(f"<img id='img-{section.key}' alt='{alt}' src='data:image/png;base64,{data}'>")
        else:
            parts.append(f"<p class='skip'>Skipped: {html.escape(section.note or '')}</p>")
        parts.append(section.table or "")
    parts.append("<p id='image-status' class='note'>images not checked (scripts disabled)</p>")
    parts.append(f"<script>{CHECK_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _runs_html(rt: Runtime) -> str:
    where = html.escape(rt.tables.storage.root)
    if not rt.tables.exists("ops.runs"):
        return f"<p class='note'>Tables under <code>{where}</code>; no run recorded in ops.runs yet.</p>"
    columns = ["run_id", "status", "stages", "failed_stage", "engine", "git_sha", "config_hash", "started_at",
               "seconds"]
    runs = latest_runs(rt.tables.read("ops.runs")).orderBy(F.col("started_at").desc()).limit(5)
    rows = [r.asDict() for r in runs.select(*columns).collect()]
    header = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return (
        f"<p>Tables under <code>{where}</code> ({html.escape(rt.tables.table_format)}, engine "
        f"{html.escape(rt.engine.name)}). Latest runs (ops.runs):</p><table><tr>{header}</tr>{body}</table>"
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.1f}"
    text = str(value)
    if len(text.removesuffix("-dirty")) == 40:  # a git sha: the short form is enough on a page
        return text[:12] + ("-dirty" if text.endswith("-dirty") else "")
    return text
