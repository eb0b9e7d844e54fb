"""Ground-truth tables: what was generated, per candidate, per prompt, per bad record, per judgment line.

Rows are buffered and flushed as Parquet row groups of 10,000 rows, so a 3M
candidate run keeps only one row group per table in memory (~10 MB). Column names are a
contract with the pipeline's evaluation: change them only together.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CANDIDATES = pa.schema([
    ("source", pa.string()), ("prompt_id", pa.string()), ("sample_index", pa.int64()),
    ("kind", pa.string()), ("domain", pa.string()), ("target_language", pa.string()),
    ("is_correct", pa.bool_()), ("defects", pa.list_(pa.string())), ("foreign_share", pa.float64()),
    ("foreign_language", pa.string()), ("reasoning_chars", pa.int64()),
])
PROMPTS = pa.schema([
    ("source", pa.string()), ("prompt_id", pa.string()), ("kind", pa.string()), ("domain", pa.string()),
    ("prompt", pa.string()), ("reference_answer", pa.string()), ("exact_dup_of", pa.string()),
    ("near_dup_of", pa.string()), ("near_dup_jaccard", pa.float64()), ("contaminated_by", pa.string()),
])
BAD_RECORDS = pa.schema([
    ("source", pa.string()), ("file", pa.string()), ("line", pa.int64()), ("error", pa.string()),
])
# One row per line of a judgment file: its candidate key, its quarantine error or the status annotate
# must give it (applied | superseded | unmatched), and the values it carries.
JUDGMENTS = pa.schema([
    ("judgment", pa.string()), ("file", pa.string()), ("line", pa.int64()), ("source", pa.string()),
    ("prompt_id", pa.string()), ("sample_index", pa.int64()), ("error", pa.string()), ("status", pa.string()),
    ("tests_passed", pa.int64()), ("tests_total", pa.int64()), ("judge_score", pa.float64()),
])


class TruthTable:
    def __init__(self, path: Path, schema: pa.Schema, flush_rows: int = 10_000) -> None:
        self.schema, self.flush_rows = schema, flush_rows
        self.writer = pq.ParquetWriter(path, schema)
        self.buffer: list[tuple[Any, ...]] = []
        self.rows = 0

    def add(self, *values: Any) -> None:
        self.buffer.append(values)  # a tuple per row: transposed once per row group, not per value
        self.rows += 1
        if len(self.buffer) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            columns = zip(*self.buffer, strict=True)
            arrays = [pa.array(list(c), type=f.type) for c, f in zip(columns, self.schema, strict=True)]
            self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


class GroundTruth:
    """The three truth tables plus the per-source counts the summary reports."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.candidates = TruthTable(directory / "candidates.parquet", CANDIDATES)
        self.prompts = TruthTable(directory / "prompts.parquet", PROMPTS)
        self.bad = TruthTable(directory / "bad_records.parquet", BAD_RECORDS)
        self.judgments = TruthTable(directory / "judgments.parquet", JUDGMENTS)
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.defects: dict[str, Counter[str]] = defaultdict(Counter)
        self.bad_codes: dict[str, Counter[str]] = defaultdict(Counter)

    def candidate(self, source: str, prompt_id: str, sample_index: int, kind: str, domain: str,
                  target_language: str, is_correct: bool | None, defects: list[str],
                  foreign_share: float, foreign_language: str | None, reasoning_chars: int) -> None:
        self.candidates.add(source, prompt_id, sample_index, kind, domain, target_language, is_correct,
                            defects, foreign_share, foreign_language, reasoning_chars)
        self.counts[source]["candidates"] += 1
        self.defects[source].update(defects)

    def prompt(self, source: str, prompt_id: str, kind: str, domain: str, prompt: str,
               reference_answer: str | None, exact_dup_of: str | None = None, near_dup_of: str | None = None,
               near_dup_jaccard: float | None = None, contaminated_by: str | None = None) -> None:
        self.prompts.add(source, prompt_id, kind, domain, prompt, reference_answer, exact_dup_of,
                         near_dup_of, near_dup_jaccard, contaminated_by)
        self.counts[source]["prompts"] += 1
        for name, value in (("exact_dup", exact_dup_of), ("near_dup", near_dup_of),
                            ("contaminated", contaminated_by)):
            if value is not None:
                self.counts[source][name] += 1

    def bad_record(self, source: str, file: str, line: int, error: str) -> None:
        self.bad.add(source, file, line, error)
        self.bad_codes[source][error] += 1

    def judgment(self, judgment: str, file: str, line: int, source: str, prompt_id: str,
                 sample_index: int | None, error: str | None, status: str | None, tests: tuple[int, int] | None,
                 judge_score: float | None = None) -> None:
        passed, total = tests or (None, None)
        self.judgments.add(judgment, file, line, source, prompt_id, sample_index, error, status, passed, total,
                           judge_score)
        self.counts[f"judgment:{judgment}"][error or status or "unknown"] += 1

    def close(self) -> None:
        for table in (self.candidates, self.prompts, self.bad, self.judgments):
            table.close()
