"""Judgment files: external verdicts and judge scores kept apart from the generations, joined by candidate.

A judgment is one record of a file that a sandbox or a judge model wrote about a
candidate (sftmix never runs generated code): tests passed / total, a verdict,
a score, or a judge model's reply such as DeepSeek-V3's
``{"analysis": "...", "correctness": true}``. Ingest lands them in
``bronze.judgments`` (``judgment_row`` parses one record, or raises
``RecordError`` for ``bronze.quarantine``); annotate resolves them against the
candidates (``resolve_judgments``, kept as ``silver.judgments``) and merges the
winners into the candidate columns verification reads (``apply_judgments``).

A record names its candidate in one of three ways (``key``):

- ``candidate_id``: the id itself;
- ``fields``: ``source`` (a field, or the judgment's ``source`` setting),
  ``prompt_id`` and ``sample_index``, hashed exactly as ingest hashes them
  (``raw_records.candidate_id``), so a dump keyed like the generations maps to
  the same id. Candidates of sources without a sample index (keyed by file and
  line) or with ``key_by_file`` need the ``candidate_id`` key;
- ``custom_id``: an OpenAI-batch output line of a judge run; the request's
  ``custom_id`` is parsed with a template such as ``{candidate_id}`` or
  ``{source}/{prompt_id}/{sample_index}``, and the reply is read from
  ``response.body.choices.0.message.content``.

Precedence (documented in README, judgment files):

1. within one judgment (config entry), a candidate judged more than once takes
   the record last in (file path, line) order, whole; the others are
   ``superseded``;
2. across judgments, each value (verdict; tests passed and total as a pair;
   judge score) comes from the first judgment in config order that has it;
3. a judgment value overrides the generation's own column; the generation's
   value stays where no judgment gives one. Verification's own order
   (external verdict, tests, reference, judge score) then applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sftmix.transforms.raw_records import RecordError, _int, _number, _prompt_id, _text, candidate_id, lookup
from sftmix.transforms.verify import EXTERNAL_CORRECT, EXTERNAL_INCORRECT

KEYS = ("candidate_id", "fields", "custom_id")
KEY_FIELDS = {"candidate_id", "source", "prompt_id", "sample_index", "custom_id"}
VALUE_FIELDS = {"verdict", "tests_passed", "tests_total", "judge_score", "judge_reply", "judge_model", "error"}
TEMPLATE_NAMES = ("candidate_id", "source", "prompt_id", "sample_index")
# An OpenAI-batch output line: where the judge's reply, its model and the runner's error sit.
BATCH_DEFAULTS = {
    "custom_id": "custom_id",
    "judge_reply": "response.body.choices.0.message.content",
    "judge_model": "response.body.model",
    "error": "error",
}
# Keys of a judge reply's JSON object, first present wins (DeepSeek-V3's generative reward says `correctness`).
REPLY_VERDICT_KEYS = ("correctness", "correct", "is_correct", "verdict", "judgment", "passed")
REPLY_SCORE_KEYS = ("score", "rating", "reward", "grade")
REPLY_ANALYSIS_KEYS = ("analysis", "reasoning", "explanation", "rationale")
STATUSES = ("applied", "superseded", "unmatched")

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# MT-Bench-style judges end with "Rating: [[8]]".
_BRACKETED = re.compile(r"\[\[\s*([-+]?\d+(?:\.\d+)?)\s*\]\]")


@dataclass(frozen=True)
class JudgmentShape:
    """What the reader needs of one judgment config entry (picklable, sent to UDF workers)."""

    name: str
    key: str
    fields: tuple[tuple[str, str], ...]
    source: str | None = None
    custom_id_template: str = "{candidate_id}"

    def path(self, logical: str) -> str | None:
        mapped = dict(self.fields)
        if logical in mapped:
            return mapped[logical] or None
        if self.key == "custom_id":
            return BATCH_DEFAULTS.get(logical)
        return logical if logical in ("candidate_id", "prompt_id", "sample_index") else None

    def custom_id_pattern(self) -> re.Pattern[str]:
        return template_pattern(self.custom_id_template)


def validate_judgment(
    key: str, fields: dict[str, str], source: str | None, template: str, sources: list[str]
) -> str | None:
    """A config problem of one judgment entry, or None."""
    if key not in KEYS:
        return f"key must be one of {', '.join(KEYS)}"
    unknown = sorted(n for n in fields if n not in KEY_FIELDS | VALUE_FIELDS)
    if unknown:
        return f"fields: unknown logical field {unknown[0]!r}"
    values = {"verdict", "tests_passed", "tests_total", "judge_score", "judge_reply"}
    if key != "custom_id" and not values & set(fields):
        return "fields: map at least one of " + ", ".join(sorted(values))
    if ("tests_passed" in fields) != ("tests_total" in fields):
        return "fields: tests_passed and tests_total go together"
    if source is not None and source not in sources:
        return f"source {source!r} is not a configured source"
    names = set(re.findall(r"{(\w+)}", template)) if key == "custom_id" else set()
    if key == "custom_id" and (names - set(TEMPLATE_NAMES) or not names):
        return f"custom_id_template {template!r}: use {{candidate_id}} or {{prompt_id}} and {{sample_index}}"
    by_fields = key == "fields" or (key == "custom_id" and "candidate_id" not in names)
    if key == "custom_id" and by_fields and not {"prompt_id", "sample_index"} <= names:
        return f"custom_id_template {template!r} needs both {{prompt_id}} and {{sample_index}}"
    has_source = "source" in fields if key == "fields" else "source" in names
    if by_fields and source is None and not has_source:
        return "a key by prompt_id and sample_index needs `source:` or a source field"
    return None


def template_pattern(template: str) -> re.Pattern[str]:
    """``{source}/{prompt_id}/{sample_index}`` as an anchored regex; an index is digits only."""
    parts = re.split(r"{(\w+)}", template)
    regex = []
    for position, part in enumerate(parts):
        if position % 2 == 0:
            regex.append(re.escape(part))
        else:
            regex.append(rf"(?P<{part}>\d+)" if part == "sample_index" else rf"(?P<{part}>.+?)")
    return re.compile("^" + "".join(regex) + "$", re.DOTALL)


def parse_judge_reply(text: str) -> tuple[str | None, float | None, str | None]:
    """(verdict, score, analysis) from a judge model's reply.

    Accepted: a JSON object (bare, inside a ```json fence, or the outermost
    ``{...}`` of a longer text) with a verdict key (``correctness``: true or
    "correct"/"incorrect"...) and/or a score key; a bare number; a ``[[8]]``
    rating. Anything else raises ``invalid_judge_reply``.
    """
    body = text.strip()
    fenced = _FENCE.findall(body)
    candidates = [f.strip() for f in reversed(fenced)] + [body]
    if "{" in body and "}" in body:
        candidates.append(body[body.index("{") : body.rindex("}") + 1])
    for candidate in candidates:
        if _NUMBER.fullmatch(candidate):
            return None, float(candidate), None
        if not candidate.startswith("{"):
            continue
        try:
            obj = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return _reply_object(obj)
    rating = _BRACKETED.findall(body)
    if rating:
        return None, float(rating[-1]), None
    raise RecordError("invalid_judge_reply", f"judge reply holds no JSON verdict or score: {body[:120]!r}")


def _reply_object(obj: dict[str, Any]) -> tuple[str | None, float | None, str | None]:
    verdict_key = next((k for k in REPLY_VERDICT_KEYS if obj.get(k) is not None), None)
    score_key = next((k for k in REPLY_SCORE_KEYS if obj.get(k) is not None), None)
    if verdict_key is None and score_key is None:
        keys = ", ".join(sorted(obj)[:8])
        raise RecordError("invalid_judge_reply", f"judge reply JSON has no verdict or score key (keys: {keys})")
    verdict = normalize_verdict(obj[verdict_key], f"reply.{verdict_key}") if verdict_key else None
    score_value = obj[score_key] if score_key else None
    if isinstance(score_value, str) and _NUMBER.fullmatch(score_value.strip()):
        score_value = float(score_value)
    score = _number(score_value, f"reply.{score_key}") if score_key else None
    analysis = next((obj[k] for k in REPLY_ANALYSIS_KEYS if isinstance(obj.get(k), str)), None)
    return verdict, score, analysis


def normalize_verdict(value: Any, name: str = "verdict") -> str:
    """correct | incorrect from a boolean, 0/1, or a known spelling; anything else is a bad record.

    Strict on purpose: a judgment's verdict overrides the generation's, so an
    unknown word ("partial") must not silently erase one.
    """
    if isinstance(value, bool):
        return "correct" if value else "incorrect"
    if isinstance(value, int) and value in (0, 1):
        return "correct" if value else "incorrect"
    if isinstance(value, str):
        word = value.strip().lower()
        if word in EXTERNAL_CORRECT:
            return "correct"
        if word in EXTERNAL_INCORRECT:
            return "incorrect"
        raise RecordError("invalid_verdict", f"field {name!r}: {value[:60]!r} is neither correct nor incorrect")
    raise RecordError("wrong_type", f"field {name!r} must be a boolean or a verdict word, got {type(value).__name__}")


def _candidate_key(record: Any, shape: JudgmentShape) -> dict[str, Any]:
    if shape.key == "custom_id":
        path = shape.path("custom_id")
        custom = _text(lookup(record, path), path or "custom_id", required=True)
        match = shape.custom_id_pattern().match(custom or "")
        if match is None:
            raise RecordError("invalid_custom_id", f"custom_id {custom!r} does not match {shape.custom_id_template!r}")
        parts = match.groupdict()
        if "candidate_id" in parts:
            return {"candidate_id": parts["candidate_id"], "source": None, "prompt_id": None, "sample_index": None}
        source, prompt_id, index = parts.get("source") or shape.source, parts["prompt_id"], int(parts["sample_index"])
    elif shape.key == "candidate_id":
        path = shape.path("candidate_id")
        cid = _text(lookup(record, path), path or "candidate_id", required=True)
        return {"candidate_id": cid, "source": None, "prompt_id": None, "sample_index": None}
    else:
        source = _text(lookup(record, shape.path("source")), "source") or shape.source
        if source is None:
            raise RecordError("missing_field", f"missing field {shape.path('source')!r}")
        prompt_id = _prompt_id(lookup(record, shape.path("prompt_id")))
        index = _int(lookup(record, shape.path("sample_index")), "sample_index")
        if index is None:
            raise RecordError("missing_field", f"missing field {shape.path('sample_index')!r}")
    assert source is not None
    return {
        "candidate_id": candidate_id(source, prompt_id, str(index)),
        "source": source,
        "prompt_id": prompt_id,
        "sample_index": index,
    }


def judgment_row(record: Any, shape: JudgmentShape) -> dict[str, Any]:
    """The ``bronze.judgments`` columns of one record (provenance aside), or ``RecordError``."""
    if not isinstance(record, dict):
        raise RecordError("not_an_object", f"a record must be a JSON object, got {type(record).__name__}")
    error = lookup(record, shape.path("error"))
    if error is not None:
        raise RecordError("batch_error", f"the batch runner reported: {error}")
    row = _candidate_key(record, shape)
    raw_verdict = lookup(record, shape.path("verdict"))
    verdict = normalize_verdict(raw_verdict, shape.path("verdict") or "verdict") if raw_verdict is not None else None
    passed = _int(lookup(record, shape.path("tests_passed")), "tests_passed")
    total = _int(lookup(record, shape.path("tests_total")), "tests_total")
    if (passed is None) != (total is None):
        raise RecordError("missing_field", "tests_passed and tests_total must both be present")
    if passed is not None and total is not None and not 0 <= passed <= total:
        raise RecordError("invalid_value", f"tests_passed {passed} is not within 0..tests_total {total}")
    score = _number(lookup(record, shape.path("judge_score")), "judge_score")
    analysis = None
    reply_path = shape.path("judge_reply")
    reply = _text(lookup(record, reply_path), reply_path or "judge_reply")
    if reply is not None:
        reply_verdict, reply_score, analysis = parse_judge_reply(reply)
        verdict = verdict or reply_verdict
        score = score if score is not None else reply_score
    if verdict is None and total is None and score is None:
        raise RecordError("missing_field", "the record holds no verdict, tests, score or judge reply")
    row.update(
        verdict=verdict,
        tests_passed=passed,
        tests_total=total,
        judge_score=score,
        judge_analysis=analysis,
        judge_model=_text(lookup(record, shape.path("judge_model")), "judge_model"),
    )
    return row


@dataclass(frozen=True)
class JudgmentParams:
    """How annotate merges judgments: the judgment names in config order (first = highest priority)."""

    priority: list[str] = field(default_factory=list)


def resolve_judgments(judgments: DataFrame, candidate_ids: DataFrame) -> DataFrame:
    """Every judgment row with its ``status``: applied | superseded | unmatched (``silver.judgments``).

    ``unmatched``: no candidate has the id (a dump for generations that were
    quarantined or never ingested, or a wrong key mapping). ``superseded``:
    the same judgment has a later record (file path, line) for the candidate.
    """
    known = candidate_ids.select("candidate_id").distinct().withColumn("_matched", F.lit(True))
    latest_first = Window.partitionBy("judgment", "candidate_id").orderBy(
        F.col("file").desc(), F.col("line").desc(), F.col("ingest_run_id").desc()
    )
    status = (
        F.when(F.col("_matched").isNull(), F.lit("unmatched"))
        .when(F.col("_rank") == 1, F.lit("applied"))
        .otherwise(F.lit("superseded"))
    )
    return (
        judgments.join(known, "candidate_id", "left")
        .withColumn("_rank", F.row_number().over(latest_first))
        .withColumn("status", status)
        .drop("_matched", "_rank")
    )


def _priority_key(params: JudgmentParams) -> Column:
    # A string sort key: config position, then the name (for names no longer in the config).
    position = F.array_position(F.array(*[F.lit(n) for n in params.priority] or [F.lit("")]), F.col("judgment"))
    rank = F.when(position > 0, position).otherwise(F.lit(len(params.priority) + 1))
    return F.concat(F.lpad(rank.cast("string"), 6, "0"), F.lit("\x1f"), F.col("judgment"))


def judgment_values(resolved: DataFrame, params: JudgmentParams) -> DataFrame:
    """One row per judged candidate: the winning verdict, tests pair, judge score, and the judgments' names."""
    applied = resolved.where(F.col("status") == "applied").withColumn("_key", _priority_key(params))

    def first_with(present: Column, value: Column) -> Column:
        # min_by over (present ? key : a key after every real one): the best row that has the value.
        return F.min_by(value, F.when(present, F.col("_key")).otherwise(F.lit("999999")))

    tests = F.struct(F.col("tests_passed").alias("passed"), F.col("tests_total").alias("total"))
    values = applied.groupBy("candidate_id").agg(
        first_with(F.col("verdict").isNotNull(), F.col("verdict")).alias("j_verdict"),
        first_with(F.col("tests_total").isNotNull(), tests).alias("j_tests"),
        first_with(F.col("judge_score").isNotNull(), F.col("judge_score")).alias("j_score"),
        F.sort_array(F.collect_list("judgment")).alias("j_names"),
    )
    return values.select(
        "candidate_id",
        "j_verdict",
        F.col("j_tests.passed").alias("j_tests_passed"),
        F.col("j_tests.total").alias("j_tests_total"),
        "j_score",
        "j_names",
    )


def _column(df: DataFrame, name: str, data_type: str) -> Column:
    return F.col(name) if name in df.columns else F.lit(None).cast(data_type)


def apply_judgments(candidates: DataFrame, values: DataFrame | None) -> DataFrame:
    """Merge judgment values into ``external_verdict``, ``tests_passed``/``tests_total`` and ``judge_score``.

    A judgment value wins over the generation's own; the pair of test counts
    moves together. Adds ``judgments`` (sorted names of the judgments applied;
    empty without any), so the table has the same columns with or without
    judgment files.
    """
    no_names = F.array().cast("array<string>")
    if values is None:
        return candidates.withColumn("judged_by", no_names)
    joined = candidates.join(values, "candidate_id", "left")
    from_judgment = F.col("j_tests_total").isNotNull()
    merged = {
        "external_verdict": F.coalesce(F.col("j_verdict"), _column(candidates, "external_verdict", "string")),
        "tests_passed": F.when(from_judgment, F.col("j_tests_passed")).otherwise(
            _column(candidates, "tests_passed", "long")
        ),
        "tests_total": F.when(from_judgment, F.col("j_tests_total")).otherwise(
            _column(candidates, "tests_total", "long")
        ),
        "judge_score": F.coalesce(F.col("j_score"), _column(candidates, "judge_score", "double")),
    }
    kept = [merged[c].alias(c) if c in merged else F.col(c) for c in candidates.columns if c != "judged_by"]
    missing = [expr.alias(name) for name, expr in merged.items() if name not in candidates.columns]
    return joined.select(*kept, *missing, F.coalesce(F.col("j_names"), no_names).alias("judged_by"))


def judgment_counts(resolved: DataFrame) -> DataFrame:
    """Rows per (judgment, status): a small aggregate for stage metrics."""
    return resolved.groupBy("judgment", "status").agg(F.count(F.lit(1)).alias("rows"))


def summarize_judgments(rows: list[dict[str, Any]], judged_candidates: int) -> dict[str, Any]:
    """Stage-metric details: rows per status, per judgment, and how many candidates a judgment reached."""
    by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
    by_judgment: dict[str, dict[str, int]] = {}
    for row in rows:
        n = int(row["rows"])
        by_status[row["status"]] = by_status.get(row["status"], 0) + n
        by_judgment.setdefault(row["judgment"], dict.fromkeys(STATUSES, 0))[row["status"]] += n
    return {
        "rows": sum(by_status.values()),
        **by_status,
        "judged_candidates": judged_candidates,
        "by_judgment": dict(sorted(by_judgment.items())),
    }
