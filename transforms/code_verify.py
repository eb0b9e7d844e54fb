"""Code verdicts from running each candidate's program against its prompt's tests in the sandbox.

``verify_code(df, params)`` (DataFrame -> DataFrame, both engines) reads

- ``domain``: only rows whose domain is in ``params.domains`` (``code``) run,
  and of those only rows of ``params.sources`` (empty: every source);
- ``params.program_column`` (``answer``; ``completion`` when annotate has not
  split it): the text the program is extracted from (``code_tests.py``);
- ``params.tests_column`` (``tests``): the prompt's tests as JSON text (or a
  struct/array), any shape ``code_tests.parse_tests`` knows. Map the raw
  record's field to it at ingest, or join a tests table by ``prompt_id``.

and adds (rows not run keep incoming values of these columns, else null):

- ``tests_passed``, ``tests_total`` (long), ``code_status`` (pass, fail,
  timeout, memory, runtime_error, compile_error, no_code, sandbox_error),
  ``code_failure`` (the first failing test and why, truncated);
- for rows it ran: ``verdict`` = correct when passed >= ``pass_fraction`` x
  total (default: all), ``error`` on sandbox_error, else incorrect;
  ``verifier`` = ``sandbox``; ``verify_path`` = ``sandbox`` (when present).

Wiring into annotate: call it after ``verify_candidates`` (which leaves code
rows ``unverifiable``, or takes ``external``/``tests`` verdicts) and before
``decide_verification``, so ``incorrect``/``unverified`` reasons, pass rates,
selection and the RL pool work unchanged:

    df.transform(verify_candidates, cfg.verify)
      .transform(verify_code, cfg.code_verify)
      .transform(decide_verification, cfg.verify, requiring_sources)

Which rows run (the precedence): a row runs when its domain (and source) is
listed, its ``tests`` are not null and hold tests ``parse_tests`` knows, and
it has no verdict from outside yet: ``verifier`` ``external`` (a verdict in
the record or a judgment file) or ``tests`` (test counts from the record or
a judgment file) wins over the sandbox, so a source whose results come from
elsewhere keeps them. A judge score (``verifier = judge``) or nothing
(``none``) is replaced by the sandbox's verdict: running the tests is the
stronger evidence.

Runs are shared: rows whose program (as extracted) and tests are the same run
once (``run_key``), within a batch and across a partition's batches.

With ``mode: external`` it only adds the four columns (null where absent):
verdicts come from outside as before. With ``mode: sandbox`` it first checks
(in a pool worker, or on the classic Spark driver, and again in every worker
that runs programs) that bwrap can start a sandbox; if not, it raises
``SandboxUnavailable`` saying so (set ``mode: external`` there). It never
runs code unsandboxed.

Where runs happen: in ``process_pool`` workers on the local engine (Sail runs
UDFs in its own process: the pool keeps programs out of it), inline in the
Python worker on classic Spark (pool size 0; that is a separate process from
the JVM and the driver). A Spark Connect session with no pool would run them
in the engine process, so that raises unless ``allow_inline`` (a remote
Connect cluster whose UDFs run in their own Python workers).
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.transforms import process_pool, sandbox
from sftmix.transforms.code_tests import TestSpec, extract_program, parse_tests, program_for
from sftmix.transforms.sandbox import (
    SANDBOX_PYTHON,
    RunResult,
    SandboxLimits,
    SandboxUnavailable,
    require_sandbox,
    run_in_sandbox,
    sandbox_problem,
)

CODE_STATUSES = (
    "pass", "fail", "timeout", "memory", "runtime_error", "compile_error", "no_code", "sandbox_error",
)
CODE_FIELDS = [
    T.StructField("tests_passed", T.LongType()),
    T.StructField("tests_total", T.LongType()),
    T.StructField("code_status", T.StringType()),
    T.StructField("code_failure", T.StringType()),
]
_HARNESS = Path(__file__).with_name("code_harness.py")
# A test's own failure kind (code_harness.py) as a candidate status.
_KIND_STATUS = {
    "fail": "fail", "error": "runtime_error", "timeout": "timeout", "memory": "memory", "skipped": "timeout",
}
_FATAL_STATUS = {
    "compile_error": "compile_error", "runtime_error": "runtime_error", "memory": "memory",
    "timeout": "timeout", "harness_error": "sandbox_error",
}


@dataclass(frozen=True)
class CodeVerifyParams:
    """Code verification settings (config section ``code_verify``)."""

    mode: str = "sandbox"  # sandbox: run the tests here | external: verdicts come from outside
    domains: list[str] = field(default_factory=lambda: ["code"])
    program_column: str = "answer"
    tests_column: str = "tests"
    program_source: str = "fenced"  # fenced: last fenced block | raw: the whole text (completions)
    languages: list[str] = field(default_factory=lambda: ["python", "py", "python3"])
    untagged_blocks: bool = True  # without a tagged block, take the last untagged one
    # Share of tests that must pass for `correct`; 1.0 = all, as DeepSeek-R1 keeps code samples.
    pass_fraction: float = 1.0
    # Per assert / per stdin case; LiveCodeBench allows 6 s. After one timeout the rest are skipped.
    test_timeout_s: float = 6.0
    run_timeout_s: float = 30.0  # wall clock for a candidate's whole run
    memory_mb: int = 1024
    processes: int = 32
    file_mb: int = 16
    output_chars: int = 1 << 20  # stdout read per stdin case
    failure_chars: int = 500
    chunk_size: int = 8  # candidates per pool task
    allow_inline: bool = False
    # Sources whose code rows run; empty: every source (rows with tests and no verdict from outside).
    sources: list[str] = field(default_factory=list)
    # The bubblewrap binary; null: `bwrap` on PATH. A missing binary stops the stage (never unsandboxed).
    bwrap: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("sandbox", "external"):
            raise ValueError("code_verify.mode must be sandbox or external")
        if self.program_source not in ("fenced", "raw"):
            raise ValueError("code_verify.program_source must be fenced or raw")
        if not 0 < self.pass_fraction <= 1:
            raise ValueError("code_verify.pass_fraction must be in (0, 1]")
        if self.test_timeout_s <= 0 or self.run_timeout_s <= 0 or self.chunk_size < 1:
            raise ValueError("code_verify timeouts and chunk_size must be positive")

    def limits(self) -> SandboxLimits:
        return SandboxLimits(
            wall_s=self.run_timeout_s,
            cpu_s=math.ceil(self.run_timeout_s),
            memory_mb=self.memory_mb,
            processes=self.processes,
            file_mb=self.file_mb,
            output_bytes=max(1 << 20, self.output_chars),
        )


@dataclass(frozen=True)
class CodeOutcome:
    tests_passed: int
    tests_total: int
    status: str
    failure: str | None
    wall_s: float = 0.0


def _truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def interpret(result: RunResult, total: int, failure_chars: int = 500) -> CodeOutcome:
    """A candidate's outcome from the harness report and how the sandbox run ended."""
    if result.status == "sandbox_error":
        return CodeOutcome(0, total, "sandbox_error", _truncate(result.detail, failure_chars), result.wall_s)
    records = sandbox.json_objects(result.stdout)
    tests: dict[int, dict[str, Any]] = {}
    for record in records:
        index = record.get("test")
        if isinstance(index, int) and 0 <= index < total and index not in tests:
            tests[index] = record
    passed = sum(1 for r in tests.values() if r.get("kind") == "pass")
    fatal = next((r for r in records if "fatal" in r), None)
    done = any(r.get("done") is True for r in records)
    failure: str | None = None
    if fatal is not None:
        status = _FATAL_STATUS.get(str(fatal["fatal"]), "runtime_error")
        failure = str(fatal.get("message") or fatal["fatal"])
        passed = 0
    elif done and passed == total:
        status = "pass"
    else:
        first = next((i for i in range(total) if tests.get(i, {}).get("kind") not in ("pass", None)), None)
        if first is not None and (done or result.status != "timeout"):
            status = _KIND_STATUS.get(str(tests[first].get("kind")), "runtime_error")
            failure = f"test {first + 1}/{total}: {tests[first].get('message') or tests[first].get('kind')}"
        elif result.status == "timeout":
            status, failure = "timeout", f"{result.detail} after {len(tests)} of {total} tests"
        else:
            # The harness ended without its report: the program ended the process (os._exit, a kill,
            # a crash in C) or flooded the report stream.
            status = "runtime_error"
            failure = f"the test run ended early ({result.detail or result.status}) after {len(tests)} of {total} tests"
    return CodeOutcome(passed, total, status, _truncate(failure, failure_chars), result.wall_s)


def verify_one(program_text: str | None, spec: TestSpec, params: CodeVerifyParams) -> CodeOutcome:
    code = extract_program(program_text, params.languages, params.untagged_blocks, params.program_source)
    if code is None:
        where = "text" if params.program_source == "raw" else f"{'/'.join(params.languages)} fenced block"
        return CodeOutcome(0, spec.total, "no_code", f"no {where} in the answer")
    files = {
        "harness.py": _harness_source(),
        "program.py": program_for(spec, code, params.program_source),
        # marshal format 4 (plain data): readable by any Python 3 the sandbox may have.
        "spec.marshal": marshal.dumps(spec.harness_spec(params.test_timeout_s, params.output_chars), 4),
    }
    if spec.style == "stdio":
        files["expected.marshal"] = marshal.dumps(spec.expected_outputs(), 4)
    result = run_in_sandbox(
        [SANDBOX_PYTHON, "-I", "-S", "harness.py"], files=files, limits=params.limits(), bwrap=params.bwrap
    )
    return interpret(result, spec.total, params.failure_chars)


@functools.lru_cache(maxsize=1)
def _harness_source() -> str:
    return _HARNESS.read_text(encoding="utf-8")


def verify_chunk(params: CodeVerifyParams, items: Sequence[tuple[str | None, Any]]) -> list[CodeOutcome | None]:
    """Pool work: (program text, tests value) -> outcome, None where the tests are unknown."""
    if process_pool.pool_size() > 0:
        # This process owns a UDF pool: it is the engine process. Programs never run here.
        raise RuntimeError("code verification must run in a process-pool worker, not in the engine process")
    require_sandbox(params.bwrap)
    outcomes: list[CodeOutcome | None] = []
    for text, tests in items:
        spec = parse_tests(tests)
        outcomes.append(None if spec is None else verify_one(text, spec, params))
    return outcomes


def run_key(program_text: str | None, tests: Any, params: CodeVerifyParams) -> bytes:
    """What a sandbox run depends on: the program extracted from the text and the tests, hashed.

    Candidates with the same key get the same run (sampled candidates of a prompt often hold the
    same program under different prose), so it runs once and its outcome is shared.
    """
    code = extract_program(program_text, params.languages, params.untagged_blocks, params.program_source)
    tests_bytes = tests.encode() if isinstance(tests, str) else orjson.dumps(
        tests, option=orjson.OPT_SORT_KEYS, default=str
    )
    key = hashlib.blake2b(digest_size=16)
    for part in (b"-" if code is None else b"+" + code.encode(), tests_bytes):
        key.update(len(part).to_bytes(8, "little"))
        key.update(part)
    return key.digest()


def verify_programs(
    items: Sequence[tuple[str | None, Any]],
    params: CodeVerifyParams,
    known: dict[bytes, CodeOutcome] | None = None,
) -> list[CodeOutcome | None]:
    """Run every (program text, tests value) through the pool (or inline without one), in order.

    Items with the same ``run_key`` run once and share the outcome. ``known``: outcomes of earlier
    calls by key (a partition's batches share one), read and filled here; a ``sandbox_error`` (the
    machine's fault, not the program's) is never remembered.
    """
    known = {} if known is None else known
    keys = [run_key(text, tests, params) for text, tests in items]
    outcomes: dict[bytes, CodeOutcome | None] = {key: known[key] for key in keys if key in known}
    first: dict[bytes, int] = {}  # each key still to run, at its first item
    for index, key in enumerate(keys):
        if key not in outcomes:
            first.setdefault(key, index)
    runs = [items[i] for i in first.values()]
    size = process_pool.pool_size()
    # With a pool, chunks no smaller than a quarter of the runs keep map_chunks off its inline path.
    chunk = max(1, min(params.chunk_size, math.ceil(len(runs) / size))) if size else params.chunk_size
    results = process_pool.map_chunks(
        functools.partial(verify_chunk, params),
        runs,
        chunk_size=chunk,
        chunk_timeout_s=chunk * (params.run_timeout_s + 5.0) + 30.0,
    )
    for key, item, result in zip(first, runs, results, strict=True):
        if result is None and (spec := parse_tests(item[1])) is not None:
            # The pool gave up on the chunk (a worker hung or died): say so, never guess.
            result = CodeOutcome(0, spec.total, "sandbox_error", "the process pool gave up on this chunk")
        elif result is not None and result.status != "sandbox_error":
            known[key] = result  # a sandbox error says something about this machine, not the program
        outcomes[key] = result
    return [outcomes[key] for key in keys]


def _sandbox_problems(bwrap: str | None, items: Sequence[int]) -> list[str]:
    return [sandbox_problem(bwrap) or "" for _ in items]


def _check_sandbox_where_runs_happen(bwrap: str | None = None) -> None:
    # Probed where the runs will happen: a pool worker on the local engine (so the engine process
    # starts no sandbox at all), this process on classic Spark (the driver, not the JVM).
    probe = functools.partial(_sandbox_problems, bwrap)
    problem = process_pool.map_chunks(probe, [0], chunk_size=1, chunk_timeout_s=60.0)[0]
    if problem is None:
        raise SandboxUnavailable("the sandbox probe did not answer within 60 s")
    if problem:
        raise SandboxUnavailable(problem)


def _is_connect(df: DataFrame) -> bool:
    return type(df).__module__.startswith("pyspark.sql.connect")


def _verify_batches(
    batches: Iterator[pa.RecordBatch], params: CodeVerifyParams, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    domains = set(params.domains)
    # Outcomes by run key across this partition's batches (a prompt's candidates may straddle two);
    # cleared when large, so memory stays bounded whatever the partition holds.
    known: dict[bytes, CodeOutcome] = {}
    for batch in batches:
        if len(known) > 100_000:
            known.clear()
        names = batch.schema.names
        domain = batch.column(names.index("domain")).to_pylist()
        texts = batch.column(names.index(params.program_column)).to_pylist()
        tests = batch.column(names.index(params.tests_column)).to_pylist()
        eligible = batch.column(names.index(_RUN)).to_pylist()
        rows = [i for i in range(batch.num_rows) if eligible[i] and domain[i] in domains and tests[i] is not None]
        outcomes = dict(zip(rows, verify_programs([(texts[i], tests[i]) for i in rows], params, known), strict=True))
        kept = {f.name: batch.column(names.index(f.name)).to_pylist() if f.name in names else None
                for f in CODE_FIELDS}
        values: dict[str, list[Any]] = {f.name: [] for f in CODE_FIELDS}
        for i in range(batch.num_rows):
            outcome = outcomes.get(i)
            fresh = (
                (outcome.tests_passed, outcome.tests_total, outcome.status, outcome.failure)
                if outcome is not None
                else tuple(kept[f.name][i] if kept[f.name] is not None else None for f in CODE_FIELDS)
            )
            for f, value in zip(CODE_FIELDS, fresh, strict=True):
                values[f.name].append(value)
        columns = [_as(batch.column(names.index(n)), schema.field(n).type) for n in schema.names if n not in values]
        columns += [pa.array(values[f.name], type=schema.field(f.name).type) for f in CODE_FIELDS]
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _as(column: pa.Array, data_type: pa.DataType) -> pa.Array:
    # Engines may hand a column in a close but different Arrow type (e.g. large_string): match the schema.
    return column if column.type == data_type else column.cast(data_type)


def _to_arrow_schema(schema: T.StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


# Whether a row may run (domain, source, no verdict from outside); computed in SQL, read in the batches.
_RUN = "_code_run"
# Verifiers that win over the sandbox: a verdict or test counts from the record or a judgment file.
OUTSIDE_VERIFIERS = ("external", "tests")


def _may_run(df: DataFrame, params: CodeVerifyParams) -> Any:
    """Rows the sandbox may run: listed domain (and source), tests present, no verdict from outside."""
    may = df["domain"].isin(params.domains) & F.col(params.tests_column).isNotNull()
    if params.sources:
        if "source" not in df.columns:
            raise ValueError("verify_code: code_verify.sources needs the column 'source'")
        may = may & F.col("source").isin(params.sources)
    if "verifier" in df.columns:
        may = may & (F.col("verifier").isNull() | ~F.col("verifier").isin(list(OUTSIDE_VERIFIERS)))
    return F.coalesce(may, F.lit(False))


def verify_code(df: DataFrame, params: CodeVerifyParams) -> DataFrame:
    """Add tests_passed, tests_total, code_status, code_failure; set verdict/verifier where tests ran."""
    if params.mode == "external":
        for f in CODE_FIELDS:
            if f.name not in df.columns:
                df = df.withColumn(f.name, F.lit(None).cast(f.dataType))
        return df
    _check_sandbox_where_runs_happen(params.bwrap)
    if _is_connect(df) and process_pool.pool_size() == 0 and not params.allow_inline:
        raise ValueError(
            "code verification on the local engine needs engine.udf_pool_size > 0: sandbox runs "
            "happen in pool workers, never in the engine process"
        )
    for name in ("domain", params.program_column, params.tests_column):
        if name not in df.columns:
            raise ValueError(f"verify_code needs the column {name!r}")
    df = df.withColumn(_RUN, _may_run(df, params))
    base = [f for f in df.schema.fields if f.name not in {c.name for c in CODE_FIELDS}]
    out_schema = T.StructType([*base, *CODE_FIELDS])
    arrow_schema = _to_arrow_schema(out_schema)
    df = df.mapInArrow(functools.partial(_verify_batches, params=params, schema=arrow_schema), out_schema)
    # A row ran when it was eligible and its tests parsed (unparseable tests leave the row as it was).
    ran = F.col(_RUN) & F.col("code_status").isNotNull()
    # Integer arithmetic keeps the threshold exact: passed / total >= fraction.
    scale = 1_000_000
    enough = (F.col("tests_total") > 0) & (
        F.col("tests_passed") * scale >= F.lit(round(params.pass_fraction * scale)) * F.col("tests_total")
    )
    verdict = F.when(F.col("code_status") == "sandbox_error", F.lit("error")).when(enough, "correct").otherwise(
        "incorrect"
    )
    previous = {name: F.col(name) if name in df.columns else F.lit(None).cast("string")
                for name in ("verdict", "verifier")}
    df = df.withColumn("verdict", F.when(ran, verdict).otherwise(previous["verdict"]))
    df = df.withColumn("verifier", F.when(ran, F.lit("sandbox")).otherwise(previous["verifier"]))
    if "verify_path" in df.columns:
        df = df.withColumn("verify_path", F.when(ran, F.lit("sandbox")).otherwise(F.col("verify_path")))
    return df.drop(_RUN)


def code_status_counts(df: DataFrame) -> DataFrame:
    """Rows per code_status among rows the sandbox ran (verifier ``sandbox``): a small aggregate for metrics."""
    return (
        df.where((F.col("verifier") == "sandbox") & F.col("code_status").isNotNull())
        .groupBy("code_status")
        .agg(F.count(F.lit(1)).alias("rows"))
    )
