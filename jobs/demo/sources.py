"""One writer loop per raw source: math_grouped, code_flat, stem_logic_batch, chat_parquet.

Each loop streams: draw a prompt, build its candidates, write the line(s),
record the ground truth, forget. Bad records are written in place of the
good line and recorded with their file and line instead of as prompts or
candidates; duplicate sources only ever point at good prompts. Two sources
also write judgment files beside their dumps: the code sandbox's test counts
(``judgments/code_sandbox``) and a judge model's scores of the chat responses
(``judgments/chat_judge``), each line recorded in ``ground_truth/judgments``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from sftmix.transforms.raw_records import candidate_id

from . import duplicates as dup
from .bad_records import (
    BATCH_CODES,
    JSONL_CODES,
    SANDBOX_CODES,
    TOO_LARGE_BYTES,
    BadPlan,
    corrupt,
    dump_large,
)
from .candidates import Candidate, CandidateBuilder
from .chat import ChatFactory
from .ground_truth import GroundTruth
from .math_answers import MathAnswer
from .prompts import PromptFactory, PromptSpec
from .shapes import (
    batch_error,
    batch_request,
    batch_response,
    flat_record,
    grouped_record,
    judge_output,
    judge_reply,
    sandbox_result,
)
from .text import reasoning_pools
from .writers import BatchShards, JsonlShards, ParquetShards, ShardStats, write_empty

SEPARATOR_EVERY = 97  # every 97th record carries a U+2028 inside a JSON string
SOURCE_DATASETS = ("demo/olympiads", "demo/amc_aime", "demo/gsm_style", "demo/synthetic_math")
CHAT_SCHEMA = pa.schema([("prompt_id", pa.string()), ("domain", pa.string()), ("instruction", pa.string()),
                         ("response", pa.string()), ("target_language", pa.string())])


def derive_rng(seed: int, name: str) -> random.Random:
    """An independent, reproducible stream per purpose (str hash() is salted per process)."""
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big"))


@dataclass
class RunContext:
    root: Path
    seed: int
    samples: int
    shard_records: int
    compress: bool
    truth: GroundTruth
    bench: list[tuple[str, PromptSpec]]
    dup_rates: dup.DupRates = dataclasses.field(default_factory=dup.DupRates)
    # Added to every prompt number: a later batch of the same data set gets ids no earlier batch used.
    id_offset: int = 0

    def rng(self, name: str) -> random.Random:
        return derive_rng(self.seed, name)


class SeparatorSchedule:
    """Every SEPARATOR_EVERY-th record, or the first good one after it, carries a U+2028."""

    def __init__(self) -> None:
        self.pending = False

    def take(self, index: int, good: bool) -> bool:
        self.pending = self.pending or index % SEPARATOR_EVERY == 1
        if self.pending and good:
            self.pending = False
            return True
        return False


@dataclass(frozen=True)
class PromptDraw:
    spec: PromptSpec
    exact_dup_of: str | None = None
    near_dup_of: str | None = None
    near_dup_jaccard: float | None = None
    contaminated_by: str | None = None


class PromptSource:
    """Fresh prompts, plus duplicates of earlier good ones and (math) benchmark leaks."""

    def __init__(self, rng: random.Random, rates: dup.DupRates, bench: list[tuple[str, PromptSpec]]) -> None:
        self.rng, self.rates, self.bench = rng, rates, bench
        self.reservoir: dup.Reservoir[tuple[str, PromptSpec]] = dup.Reservoir(rng)
        self.leaked: dict[str, str] = {}  # normalized contaminated text -> first ref; <= bench x variants

    def draw(self, make: Callable[[], PromptSpec]) -> PromptDraw:
        rng, rates = self.rng, self.rates
        roll = rng.random()
        picked = self.reservoir.pick()
        exact_end = rates.exact
        near_end = exact_end + rates.near
        if roll < exact_end and picked:
            ref, spec = picked
            text = dup.exact_duplicate(rng, spec.text)
            return PromptDraw(dataclasses.replace(spec, text=text), exact_dup_of=ref)
        if exact_end <= roll < near_end and picked:
            ref, spec = picked
            near = dup.near_duplicate(rng, spec.text)
            if near:
                return PromptDraw(dataclasses.replace(spec, text=near[0]), near_dup_of=ref,
                                  near_dup_jaccard=near[1])
        if near_end <= roll < near_end + rates.contaminated and self.bench:
            bench_id, spec = rng.choice(self.bench)
            text = dup.contaminated_text(rng, spec.text)
            return PromptDraw(dataclasses.replace(spec, text=text), contaminated_by=bench_id,
                              exact_dup_of=self.leaked.get(dup.normalize(text)))
        return PromptDraw(make())

    def accept(self, draw: PromptDraw, ref: str) -> None:
        """Called for prompts that made it into the data (not bad records)."""
        if draw.contaminated_by:
            self.leaked.setdefault(dup.normalize(draw.spec.text), ref)
        elif not (draw.exact_dup_of or draw.near_dup_of):
            self.reservoir.offer((ref, draw.spec))


def _record_prompt(ctx: RunContext, source: str, prompt_id: str, draw: PromptDraw,
                   reference: str | None) -> None:
    ctx.truth.prompt(source, prompt_id, "reasoning", draw.spec.domain, draw.spec.text, reference,
                     draw.exact_dup_of, draw.near_dup_of, draw.near_dup_jaccard, draw.contaminated_by)


def _record_candidate(ctx: RunContext, source: str, prompt_id: str, index: int, domain: str,
                      c: Candidate) -> None:
    ctx.truth.candidate(source, prompt_id, index, "reasoning", domain, "en", c.is_correct, c.defects,
                        c.foreign_share, c.foreign_language, c.reasoning_chars)


def oversized_completion(rng: random.Random) -> str:
    """Valid text just over the 1 MiB line limit (a runaway generation)."""
    body = "\n\n".join(reasoning_pools()["math"].walk(rng, TOO_LARGE_BYTES + 65_536))
    return f"<think>\n{body}\n</think>\n\nThe answer is $\\boxed{{0}}$."


def _answer_field(rng: random.Random, answer: MathAnswer) -> tuple[Any, str]:
    """The answer as the file holds it (sometimes a JSON number) and as the ground truth states it."""
    if answer.number is not None and rng.random() < 0.35:
        as_float = isinstance(answer.number, float) or rng.random() < 0.5
        value = float(answer.number) if as_float else answer.number
        return value, orjson.dumps(value).decode()
    return answer.reference, answer.reference


def summarize(ctx: RunContext, source: str, stats: ShardStats, **extra: Any) -> dict[str, Any]:
    counts = ctx.truth.counts[source]
    return {
        "files": len(stats.files), "records": stats.lines, "prompts": counts["prompts"],
        "candidates": counts["candidates"], "exact_duplicates": counts["exact_dup"],
        "near_duplicates": counts["near_dup"], "contaminated": counts["contaminated"],
        "bad_records": dict(sorted(ctx.truth.bad_codes[source].items())),
        "defects": dict(sorted(ctx.truth.defects[source].items())),
        "bytes": stats.raw_bytes, "bytes_on_disk": stats.disk_bytes, **extra,
    }


def write_math_grouped(ctx: RunContext, count: int) -> dict[str, Any]:
    source, rng = "math_grouped", ctx.rng("math_grouped")
    factory = PromptFactory(ctx.rng(f"{source}/prompts"))
    builder = CandidateBuilder(ctx.rng(f"{source}/candidates"))
    prompts = PromptSource(ctx.rng(f"{source}/duplicates"), ctx.dup_rates, ctx.bench)
    plan = BadPlan(ctx.rng(f"{source}/bad"), count, JSONL_CODES)
    compression = "gzip" if ctx.compress else None
    shards = JsonlShards(ctx.root, f"raw/{source}", compression, ctx.shard_records)
    separators = SeparatorSchedule()
    for i in range(count):
        draw = prompts.draw(factory.math)
        assert draw.spec.answer is not None
        prompt_id: int | str = 1_000_000 + ctx.id_offset + i
        if rng.random() < 0.5:
            prompt_id = str(uuid.UUID(int=rng.getrandbits(128)))
        state = builder.prompt_state(draw.spec)
        bad = plan.at(i)
        separator = separators.take(i, bad is None)
        candidates = [builder.build(state, j == 0 and separator) for j in range(ctx.samples)]
        answer, reference = _answer_field(rng, draw.spec.answer)
        record = grouped_record(prompt_id, draw.spec.text, answer, candidates, rng.choice(SOURCE_DATASETS))
        if bad is None:
            shards.write(orjson.dumps(record))
            _record_prompt(ctx, source, str(prompt_id), draw, reference)
            for j, c in enumerate(candidates):
                _record_candidate(ctx, source, str(prompt_id), j, "math", c)
            prompts.accept(draw, f"{source}/{prompt_id}")
            continue
        if bad == "record_too_large":
            record["generations"][0] = oversized_completion(rng)
            line = dump_large(record)
        else:
            line = corrupt(rng, record, bad, "grouped")
        ctx.truth.bad_record(source, *shards.write(line), bad)
    stats = shards.close()
    write_empty(ctx.root / f"raw/{source}/part-99999.jsonl{'.gz' if ctx.compress else ''}", compression)
    return summarize(ctx, source, stats)


SANDBOX = "code_sandbox"  # the judgment name conf/local.yaml gives the sandbox's results
SANDBOX_TIMEOUT_RATE = 0.02


class SandboxDump:
    """The code sandbox's results, a judgment file apart from the generations (sftmix runs no code).

    ``run1-*.jsonl`` holds one result per candidate in generation order; a
    run that timed out or whose line was cut is run again and its result
    lands in ``run2-*.jsonl``, which sorts later, so it supersedes the first.
    Candidates whose generation line is a bad record still get a result: the
    sandbox ran on them, ingest quarantined them, so the result is unmatched.
    """

    def __init__(self, ctx: RunContext, source: str, candidates: int) -> None:
        self.ctx, self.source = ctx, source
        self.rng = ctx.rng(f"{source}/sandbox")
        # Planned like bad records, so even a small demo has a cut line, a mistyped count and a rerun.
        codes = (*SANDBOX_CODES, "timeout")
        self.plan = BadPlan(ctx.rng(f"{source}/sandbox_bad"), candidates, codes, too_large=False)
        self.first = JsonlShards(ctx.root, f"judgments/{SANDBOX}", None, ctx.shard_records, stem="run1")
        self.rerun = JsonlShards(ctx.root, f"judgments/{SANDBOX}", None, ctx.shard_records, stem="run2")
        self.index = 0

    def run(self, task_id: str, sample_index: int, c: Candidate, matched: bool) -> None:
        passed, total = c.tests or (0, 0)
        planned = self.plan.at(self.index)
        self.index += 1
        bad = planned if planned in SANDBOX_CODES else None
        timeout = planned == "timeout" or (planned is None and self.rng.random() < SANDBOX_TIMEOUT_RATE)
        status = "passed" if passed == total else "failed"
        result = sandbox_result(task_id, sample_index, passed, total, status, self.rng.randint(40, 4000))
        key = (self.source, task_id, sample_index)
        if bad is not None:
            file, line = self.first.write(corrupt(self.rng, result, bad, "sandbox"))
            self.ctx.truth.judgment(SANDBOX, file, line, *key, bad, None, None)
        elif timeout:
            first = sandbox_result(task_id, sample_index, 0, total, "timeout", 10_000)
            file, line = self.first.write(orjson.dumps(first))
            self.ctx.truth.judgment(SANDBOX, file, line, *key, None, "superseded" if matched else "unmatched",
                                    (0, total))
        target = self.rerun if bad is not None or timeout else self.first
        file, line = target.write(orjson.dumps(result))
        self.ctx.truth.judgment(SANDBOX, file, line, *key, None, "applied" if matched else "unmatched",
                                (passed, total))

    def close(self) -> None:
        self.first.close()
        self.rerun.close()


def write_code_flat(ctx: RunContext, count: int) -> dict[str, Any]:
    source, rng = "code_flat", ctx.rng("code_flat")
    factory = PromptFactory(ctx.rng(f"{source}/prompts"))
    builder = CandidateBuilder(ctx.rng(f"{source}/candidates"))
    prompts = PromptSource(ctx.rng(f"{source}/duplicates"), ctx.dup_rates, [])
    plan = BadPlan(ctx.rng(f"{source}/bad"), count * ctx.samples, JSONL_CODES)
    compression = "zstd" if ctx.compress else None
    shards = JsonlShards(ctx.root, f"raw/{source}", compression, ctx.shard_records)
    sandbox = SandboxDump(ctx, source, count * ctx.samples)
    separators = SeparatorSchedule()
    for i in range(count):
        draw = prompts.draw(factory.code)
        task_id = f"code-{ctx.id_offset + i:07d}"
        state = builder.prompt_state(draw.spec)
        separator = separators.take(i, plan.at(i * ctx.samples) is None)
        good = 0
        for j in range(ctx.samples):
            c = builder.build(state, j == 0 and separator)
            record = flat_record(task_id, j, draw.spec.text, c)
            bad = plan.at(i * ctx.samples + j)
            sandbox.run(task_id, j, c, matched=bad is None)
            if bad is None:
                shards.write(orjson.dumps(record))
                _record_candidate(ctx, source, task_id, j, "code", c)
                good += 1
                continue
            if bad == "record_too_large":
                record["completion"] = oversized_completion(rng)
                line = dump_large(record)
            else:
                line = corrupt(rng, record, bad, "flat")
            ctx.truth.bad_record(source, *shards.write(line), bad)
        if good:
            _record_prompt(ctx, source, task_id, draw, None)
            prompts.accept(draw, f"{source}/{task_id}")
    stats = shards.close()
    sandbox.close()
    write_empty(ctx.root / f"raw/{source}/empty.jsonl{'.zst' if ctx.compress else ''}", compression)
    return summarize(ctx, source, stats)


def _write_exchange(ctx: RunContext, shards: BatchShards, rng: random.Random, request: dict[str, Any],
                    candidates: list[Candidate], bad: str | None) -> bool:
    """One request and its response(s), damaged as ``bad`` says; True if the pair is usable."""
    source, custom_id = "stem_logic_batch", request["custom_id"]
    prompt = request["body"]["messages"][0]["content"]
    if bad in JSONL_CODES or bad == "record_too_large":
        if bad == "record_too_large":
            request["body"]["messages"][0]["content"] = oversized_completion(rng)
            line = dump_large(request)
        else:
            line = corrupt(rng, request, bad, "batch_request")
        ctx.truth.bad_record(source, *shards.add_request(line), bad)
        return False  # a runner answers no request it cannot parse
    file, number = shards.add_request(orjson.dumps(request))
    if bad == "request_without_response":
        ctx.truth.bad_record(source, file, number, bad)
        return False
    if bad == "batch_error":
        shards.add_response(orjson.dumps(batch_error(rng, custom_id)), "batch_error")
        return False
    shards.add_response(orjson.dumps(batch_response(rng, custom_id, prompt, candidates)))
    if bad == "response_without_request":
        orphan_id = "orphan-" + custom_id.split("-", 1)[1]  # answers a request that was never sent
        orphan = batch_response(rng, orphan_id, prompt, candidates)
        shards.add_response(orjson.dumps(orphan), "response_without_request")
    return True


def write_stem_logic_batch(ctx: RunContext, stem: int, logic: int) -> dict[str, Any]:
    source, rng = "stem_logic_batch", ctx.rng("stem_logic_batch")
    factory = PromptFactory(ctx.rng(f"{source}/prompts"))
    builder = CandidateBuilder(ctx.rng(f"{source}/candidates"))
    prompts = PromptSource(ctx.rng(f"{source}/duplicates"), ctx.dup_rates, [])
    plan = BadPlan(ctx.rng(f"{source}/bad"), stem + logic, JSONL_CODES + BATCH_CODES)

    def tagged(code: Any, file: str, line: int) -> None:
        ctx.truth.bad_record(source, file, line, code)

    shards = BatchShards(ctx.root, f"raw/{source}", ctx.shard_records, ctx.rng(f"{source}/shuffle"), tagged)
    left = {"stem": stem, "logic": logic}
    separators = SeparatorSchedule()
    for i in range(stem + logic):
        domain = "stem" if rng.random() * (left["stem"] + left["logic"]) < left["stem"] else "logic"
        left[domain] -= 1
        draw = prompts.draw(factory.stem if domain == "stem" else factory.logic)
        domain = draw.spec.domain  # a duplicate keeps the domain of its original
        assert draw.spec.answer is not None
        custom_id, reference = f"{domain}-{ctx.id_offset + i:07d}", draw.spec.answer.reference
        state = builder.prompt_state(draw.spec)
        bad = plan.at(i)
        separator = separators.take(i, bad in (None, "response_without_request"))
        candidates = [builder.build(state, j == 0 and separator) for j in range(ctx.samples)]
        request = batch_request(custom_id, draw.spec.text, ctx.samples, domain, reference)
        if _write_exchange(ctx, shards, rng, request, candidates, bad):
            _record_prompt(ctx, source, custom_id, draw, reference)
            for j, c in enumerate(candidates):
                _record_candidate(ctx, source, custom_id, j, domain, c)
            prompts.accept(draw, f"{source}/{custom_id}")
    inputs, outputs = shards.close()
    write_empty(ctx.root / f"raw/{source}/batch-99999.input.jsonl", None)
    write_empty(ctx.root / f"raw/{source}/batch-99999.output.jsonl", None)
    summary = summarize(ctx, source, inputs, responses=outputs.lines)
    summary["bytes"] += outputs.raw_bytes
    summary["bytes_on_disk"] += outputs.disk_bytes
    return summary


CHAT_JUDGE = "chat_judge"  # the judgment name conf/local.yaml gives the judge's replies


def _judge_chat(ctx: RunContext, judge: JsonlShards, rng: random.Random, source: str, prompt_id: str,
                file: str, row_index: int, defects: list[str]) -> None:
    """A judge model's score for one chat response, in a judge run's OpenAI-batch output.

    The judge request's custom_id is the candidate id (the Parquet rows have no
    sample index, so ingest keys them by file name and row): the reply names its
    candidate exactly. Clean responses score 7-10, defective ones 2-5.
    """
    cid = candidate_id(source, prompt_id, f"{Path(file).name}:{row_index}")
    score = rng.randint(2, 5) if defects else rng.randint(7, 10)
    analysis = (f"The response has problems: {', '.join(defects)}." if defects
                else "The response follows the instruction and is accurate.")
    out_file, line = judge.write(orjson.dumps(judge_output(rng, cid, judge_reply(rng, score, analysis))))
    ctx.truth.judgment(CHAT_JUDGE, out_file, line, source, prompt_id, None, None, "applied", None, float(score))


def write_chat_parquet(ctx: RunContext, count: int) -> dict[str, Any]:
    source = "chat_parquet"
    factory = ChatFactory(ctx.rng(f"{source}/records"))
    plan = BadPlan(ctx.rng(f"{source}/bad"), count, ("missing_field",), too_large=False)
    shards = ParquetShards(ctx.root, f"raw/{source}", CHAT_SCHEMA, ctx.shard_records)
    judge_rng = ctx.rng(f"{source}/judge")
    judge = JsonlShards(ctx.root, f"judgments/{CHAT_JUDGE}", None, ctx.shard_records, stem="judge")
    first_seen: dict[str, str] = {}  # only prompts from small fixed sets: bounded
    for i in range(count):
        rec, prompt_id = factory.record(), f"chat-{ctx.id_offset + i:07d}"
        bad = plan.at(i)
        row = {"prompt_id": prompt_id, "domain": rec.domain, "instruction": rec.instruction,
               "response": None if bad else rec.response, "target_language": rec.target_language}
        file, row_index = shards.write(row)
        if bad:
            ctx.truth.bad_record(source, file, row_index, bad)
            continue
        duplicate_of = None
        if rec.finite_prompt:
            key = dup.normalize(rec.instruction)
            duplicate_of = first_seen.get(key)
            first_seen.setdefault(key, f"{source}/{prompt_id}")
        ctx.truth.prompt(source, prompt_id, "non_reasoning", rec.domain, rec.instruction, None, duplicate_of)
        ctx.truth.candidate(source, prompt_id, 0, "non_reasoning", rec.domain, rec.target_language, None,
                            rec.defects, rec.foreign_share, rec.foreign_language, rec.reasoning_chars)
        _judge_chat(ctx, judge, judge_rng, source, prompt_id, file, row_index, rec.defects)
    stats = shards.close()
    judge.close()
    return summarize(ctx, source, stats)
