"""The dataset card (README.md) of an export: plain Markdown built from small aggregates.

The YAML front matter declares the Parquet shards as the `train` split, so the
Hugging Face `datasets` loader and the Hub viewer pick the files up without a
loading script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass
class CardFacts:
    name: str
    dataset: str
    split: str
    run_id: str
    created_at: str
    engine: str
    config_file: str
    config_hash: str
    seed: int
    rows: int
    chat_format: str
    strata: list[dict[str, Any]]  # kind, domain, rows (+ asked, available, upsampled when a plan exists)
    lengths: list[dict[str, Any]]  # kind, domain, column, mean, p50, p90, max
    files: list[dict[str, Any]]  # file, format, rows, bytes, sha256
    thresholds: dict[str, Any]  # config sections that decide what is filtered
    reasons: dict[str, int] = field(default_factory=dict)  # reject reason -> candidates
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # table -> version, rows
    formats: list[str] = field(default_factory=list)
    # The gold.sft_mix version exported and the one before it (ops.mix_versions rows), when recorded.
    mix_version: dict[str, Any] | None = None
    previous_version: dict[str, Any] | None = None


def _version_label(version: dict[str, Any]) -> str:
    delta = f", Delta version {version['table_version']}" if version.get("table_version") is not None else ""
    draw = "stable" if version.get("stable") else "from-scratch"
    return (
        f"mix version {version['mix_version']} (run `{version['run_id']}`{delta}, {draw} draw, "
        f"{version['rows']:,} rows, written {version['written_at']})"
    )


def version_section(facts: CardFacts) -> list[str]:
    """Which gold.sft_mix version the files hold, the one before it, and how to list the changes."""
    if facts.mix_version is None:
        return []
    text = f"These files hold {_version_label(facts.mix_version)} of `gold.sft_mix`."
    previous = facts.previous_version
    if previous is None:
        text += " It is the first recorded version."
    else:
        kept = facts.mix_version.get("kept_rows")
        share = f" {kept:,} of its rows were in the previous one." if kept is not None else ""
        text += (
            f" The previous one is {_version_label(previous)}.{share} `sftmix diff --from "
            f"{previous['mix_version']} --to {facts.mix_version['mix_version']}` lists the rows added and "
            "removed, per stratum and reason."
        )
    return ["## Version", text]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(facts: CardFacts) -> str:
    # One format only, or the loader would read every row twice; Parquet when there is one.
    preferred = "parquet" if "parquet" in facts.formats else (facts.formats or ["jsonl"])[0]
    data_files = [{"split": facts.split, "path": f"{preferred}/{facts.split}-*"}]
    front = yaml.safe_dump(
        {"configs": [{"config_name": "default", "data_files": data_files}]}, sort_keys=False
    )
    plan_columns = all("asked" in s for s in facts.strata) and facts.strata
    strata_header = ["kind", "domain", "rows"] + (["asked", "available", "upsampled"] if plan_columns else [])
    strata_rows = [
        [s["kind"], s["domain"], s["rows"]]
        + ([s["asked"], s["available"], s["upsampled"]] if plan_columns else [])
        for s in facts.strata
    ]
    sections = [
        f"---\n{front}---",
        f"# {facts.name}: {facts.dataset}",
        f"{facts.rows:,} rows in chat `messages` format, built by sftmix run `{facts.run_id}` on "
        f"{facts.created_at} (engine: {facts.engine}) from `{facts.config_file}` (config hash "
        f"`{facts.config_hash}`, seed {facts.seed}).",
        *version_section(facts),
        "## Format",
        facts.chat_format,
        "## Rows per stratum",
        _table(strata_header, strata_rows),
        "## Lengths (characters)",
        _table(
            ["kind", "domain", "field", "mean", "p50", "p90", "max"],
            [
                [r["kind"], r["domain"], r["column"], r["mean"], r["p50"], r["p90"], r["max"]]
                for r in facts.lengths
            ],
        ),
    ]
    if facts.reasons:
        sections += [
            "## Why candidates are not in the mix (silver.decisions)",
            _table(["reason", "candidates"], [[k, v] for k, v in sorted(facts.reasons.items())]),
        ]
    sections += [
        "## Configuration: filters, thresholds, mix",
        "```yaml\n" + yaml.safe_dump(facts.thresholds, sort_keys=True, allow_unicode=True).rstrip() + "\n```",
        "## Input tables",
        _table(
            ["table", "version", "rows"],
            [[k, v.get("version"), v.get("rows")] for k, v in facts.inputs.items()],
        ),
        "## Files",
        _table(
            ["file", "format", "rows", "bytes", "sha256"],
            [[f["file"], f["format"], f["rows"], f["bytes"], f"`{f['sha256']}`"] for f in facts.files],
        ),
        "`manifest.json` lists the same files with their sha256 for verification.",
    ]
    return "\n\n".join(sections) + "\n"
