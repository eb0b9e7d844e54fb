"""The ``code_tests`` source: code prompts that carry their tests, for the sandbox (issue 10).

A small grouped JSONL dump (``raw/code_tests``), one prompt per line with its
generations and a ``tests`` field in one of two styles:

- stdin/stdout cases (LiveCodeBench / Codeforces): a list of
  ``{"input", "output"}``; every third such prompt stores the list as JSON
  text, as LiveCodeBench's ``public_test_cases`` does;
- assert-style (MBPP): ``{"test_list": [...], "test_setup_code": ""}``.

Each problem family knows its correct program and the wrong ones a model
writes: off by one, the wrong output format, an edge case missed (a ``>=``
for a ``>``, a negative number), a crash, a syntax error, no code at all, and
an endless loop (few: each costs a per-test time limit). The expected
outcome of each variant is stated here, not measured by running it: the
generator never executes code. ``ground_truth/code_tests.parquet`` records,
per candidate, the variant, the expected ``code_status``, tests
passed/total and verdict; the candidates are also in
``ground_truth/candidates.parquet`` (``is_correct``, defect ``incorrect``).

The reasoning is the code pool's clean prose (no planted annotate defects),
kept short (1.2k-2.4k chars): this source tests verification, not annotate.
Size: 1.2% of the reasoning prompts, at least 6 (24 at the default 2,000),
times ``candidates_per_prompt``: every run costs ~65 ms of sandbox start plus its tests (~150 ms
an assert-style candidate, ~250 ms a stdin one on the 2-core dev machine), so the source stays small
enough to keep `make run` quick. Timeouts are planted at candidate 5 and then
every 60th (2 at the default size), so a small demo has one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from . import words
from .text import Filler, compiled, reasoning_pools
from .writers import JsonlShards, write_empty

SOURCE = "code_tests"
SHARE, MINIMUM = 0.012, 6
TIMEOUT_FIRST, TIMEOUT_EVERY = 5, 60
TRUTH = pa.schema([
    ("source", pa.string()), ("prompt_id", pa.string()), ("sample_index", pa.int64()), ("style", pa.string()),
    ("family", pa.string()), ("variant", pa.string()), ("code_status", pa.string()),
    ("tests_passed", pa.int64()), ("tests_total", pa.int64()), ("verdict", pa.string()),
])
# Variants and how often an ordinary candidate is each (timeouts are planted apart).
WEIGHTS = (("correct", 0.5), ("off_by_one", 0.13), ("wrong_format", 0.12), ("edge_case", 0.1),
           ("crash", 0.08), ("syntax_error", 0.04), ("no_code", 0.03))
# variant -> (code_status, passed as a function of total): each wrong variant fails every test
# except edge_case, which fails only the last (the edge the family plants there).
EXPECTED: dict[str, tuple[str, Callable[[int], int]]] = {
    "correct": ("pass", lambda total: total),
    "off_by_one": ("fail", lambda total: 0),
    "wrong_format": ("fail", lambda total: 0),
    "edge_case": ("fail", lambda total: total - 1),
    "crash": ("runtime_error", lambda total: 0),
    "syntax_error": ("compile_error", lambda total: 0),
    "no_code": ("no_code", lambda total: 0),
    "timeout": ("timeout", lambda total: 0),
}

_SETTINGS = compiled((
    "<name> needs this for <aadj> <noun> tracker used by the <adj> <noun> team in <place>.",
    "The data comes from <aadj> <noun> log that <name> <verb> last week.",
    "This is a warm-up task from the <adj> <noun> contest held in <place>.",
    "<name> will run it on every <noun> report before the <adj> <noun> review.",
    "It is part of <aadj> <noun> toolkit for counting <nouns> and <nouns>.",
))
_RULES = compiled((
    "Keep the solution short and readable.",
    "Use only the standard library.",
    "Do not print anything except the answer.",
    "Explain your approach briefly before the code.",
))
_OUTROS = (
    "This reads the input once and runs in linear time.",
    "The loop touches each value once, so it is fast enough for the limits.",
    "I checked it by hand against the examples in the statement.",
)


@dataclass(frozen=True)
class Problem:
    family: str
    style: str  # stdio | asserts
    statement: str
    tests: Any  # the JSON value written to the record's `tests` field
    total: int
    programs: dict[str, str]  # variant -> program (no entry for no_code)
    edge: bool = True  # the last test is an edge case that `edge_case` alone fails; else it is off_by_one


def _identifier(rng: random.Random) -> str:
    parts = (rng.choice(words.VERBS_BASE), rng.choice(words.ADJECTIVES), words.plural(rng.choice(words.NOUNS)))
    return re.sub(r"\W+", "_", "_".join(parts)).lower()


_LOOP_STDIO = "import sys\n\ndata = sys.stdin.read().split()\nwhile True:\n    pass\n"


def _linear(rng: random.Random) -> Problem:
    k, c = rng.randint(2, 9), rng.randint(1, 30)
    # The edge: only the last case has a negative b (a program that drops signs passes the others).
    pairs = [(rng.randint(0, 50), rng.randint(0, 50)) for _ in range(2)] + [(rng.randint(0, 50), -rng.randint(1, 50))]
    cases = [{"input": f"{a} {b}\n", "output": f"{a * k + b + c}\n"} for a, b in pairs]
    head = "a, b = map(int, input().split())\n"
    programs = {
        "correct": head + f"print(a * {k} + b + {c})\n",
        "off_by_one": head + f"print(a * {k} + b + {c + 1})\n",
        "wrong_format": head + f"print(f\"Answer: {{a * {k} + b + {c}}}\")\n",
        "edge_case": "a, b = (abs(int(x)) for x in input().split())\n" + f"print(a * {k} + b + {c})\n",
        "crash": "a, b, extra = map(int, input().split())\n" + f"print(a * {k} + b + {c})\n",
        "syntax_error": head + f"print(a * {k} + b + {c}\n",
        "timeout": _LOOP_STDIO,
    }
    statement = (f"Read two integers a and b from one line of standard input, separated by a space, and "
                 f"print the value of a * {k} + b + {c} on a single line.")
    return Problem("linear", "stdio", statement, cases, 3, programs)


def _threshold_sum(rng: random.Random) -> Problem:
    t = rng.randint(5, 40)
    lists = [[rng.choice([v for v in range(1, 80) if v != t]) for _ in range(rng.randint(3, 7))] for _ in range(2)]
    last = [rng.choice([v for v in range(1, 80) if v != t]) for _ in range(rng.randint(2, 5))] + [t, t]
    rng.shuffle(last)
    lists.append(last)  # the edge: values equal to the threshold do not count
    cases = [{"input": f"{len(xs)}\n{' '.join(map(str, xs))}\n", "output": f"{sum(x for x in xs if x > t)}\n"}
             for xs in lists]
    head = "n = int(input())\nvalues = list(map(int, input().split()))\n"
    programs = {
        "correct": head + f"print(sum(v for v in values if v > {t}))\n",
        "off_by_one": head + f"print(sum(v for v in values if v > {t}) + 1)\n",
        "wrong_format": head + f"print(float(sum(v for v in values if v > {t})))\n",
        "edge_case": head + f"print(sum(v for v in values if v >= {t}))\n",
        "crash": head + f"print(sum(values[i] for i in range(n + 1) if values[i] > {t}))\n",
        "syntax_error": head + f"print(sum(v for v in values if v > {t})\n",
        "timeout": _LOOP_STDIO,
    }
    statement = (f"The first line of standard input holds n, the second line n positive integers. Print the "
                 f"sum of the integers that are strictly greater than {t}.")
    # Every third stdio prompt stores its cases as JSON text, as LiveCodeBench does.
    tests: Any = orjson.dumps(cases).decode() if rng.random() < 0.34 else cases
    return Problem("threshold_sum", "stdio", statement, tests, 3, programs)


def _multiples(rng: random.Random) -> Problem:
    k = rng.randint(2, 13)
    counts = rng.sample(range(2, 12), 3)
    cases = [{"input": f"{n}\n", "output": " ".join(str(k * i) for i in range(1, n + 1)) + "\n"} for n in counts]
    head = "n = int(input())\n"
    programs = {
        "correct": head + f"print(\" \".join(str({k} * i) for i in range(1, n + 1)))\n",
        "off_by_one": head + f"print(\" \".join(str({k} * i) for i in range(1, n)))\n",
        "wrong_format": head + f"for i in range(1, n + 1):\n    print({k} * i)\n",
        "crash": head + f"print(\" \".join(str({k} * i) for i in range(1, n + 1)) + n)\n",
        "syntax_error": head + f"for i in range(1, n + 1)\n    print({k} * i, end=\" \")\n",
        "timeout": _LOOP_STDIO,
    }
    statement = (f"Read an integer n (2 <= n <= 20) from standard input and print the first n positive "
                 f"multiples of {k} on one line, separated by single spaces.")
    return Problem("multiples", "stdio", statement, cases, 3, programs, edge=False)


def _count_divisible(rng: random.Random) -> Problem:
    k, name = rng.randint(2, 9), _identifier(rng)
    lists = []
    for _ in range(3):
        values = [rng.randint(1, 60) for _ in range(rng.randint(3, 6))]
        values.append(k * rng.randint(1, 9))  # the last one always counts: a skipped last element shows
        lists.append(values)
    lists[2].insert(0, -k * rng.randint(1, 5))  # the edge: a negative multiple counts too
    tests = [f"assert {name}({xs}) == {sum(1 for v in xs if v % k == 0)}" for xs in lists]
    loop = "    count = 0\n    for i in range({}):\n        if values[i] % {} == 0:\n            count += 1\n"
    programs = {
        "correct": f"def {name}(values):\n" + loop.format("len(values)", k) + "    return count\n",
        "off_by_one": f"def {name}(values):\n" + loop.format("len(values) - 1", k) + "    return count\n",
        "wrong_format": f"def {name}(values):\n" + loop.format("len(values)", k) + "    return str(count)\n",
        "edge_case": f"def {name}(values):\n    return sum(1 for v in values if v > 0 and v % {k} == 0)\n",
        "crash": f"def {name}(values):\n" + loop.format("len(values) + 1", k) + "    return count\n",
        "syntax_error": f"def {name}(values)\n    return sum(1 for v in values if v % {k} == 0)\n",
        "timeout": f"def {name}(values):\n    count = 0\n    while count < len(values):\n"
                   f"        if values[count] % {k} == 0:\n            continue\n        count += 1\n"
                   "    return count\n",
    }
    statement = (f"Write a Python function `{name}(values)` that takes a list of integers and returns how "
                 f"many of them are divisible by {k}.")
    return Problem("count_divisible", "asserts", statement, {"test_list": tests, "test_setup_code": ""}, 3, programs)


def _digit_sum(rng: random.Random) -> Problem:
    k, name = rng.randint(2, 7), _identifier(rng)
    numbers = [rng.randint(10, 99999), rng.randint(10, 99999), -rng.randint(10, 99999)]  # the edge: negative

    def expect(n: int) -> int:
        return k * sum(int(d) for d in str(abs(n)))

    tests = [f"assert {name}({n}) == {expect(n)}" for n in numbers]
    programs = {
        "correct": f"def {name}(n):\n    return {k} * sum(int(d) for d in str(abs(n)))\n",
        "off_by_one": f"def {name}(n):\n    return {k} * sum(int(d) for d in str(abs(n))) + 1\n",
        "wrong_format": f"def {name}(n):\n    return [{k} * int(d) for d in str(abs(n))]\n",
        "edge_case": f"def {name}(n):\n    return {k} * sum(int(d) for d in str(n) if d != '-') * (1 if n > 0 else -1)\n",
        "crash": f"def {name}(n):\n    digits = str(abs(n))\n    return {k} * sum(int(digits[i]) for i in "
                 "range(len(digits) + 1))\n",
        "syntax_error": f"def {name}(n):\n    return {k} * sum(int(d) for d in str(abs(n))\n",
        "timeout": f"def {name}(n):\n    total = 0\n    while n != 0:\n        total += n % 10\n"
                   f"        n //= 10\n        n += 1\n    return {k} * total\n",
    }
    statement = (f"Write a Python function `{name}(n)` that returns {k} times the sum of the decimal digits "
                 f"of the integer n (ignore the sign of a negative n).")
    return Problem("digit_sum", "asserts", statement, {"test_list": tests, "test_setup_code": ""}, 3, programs)


def _inclusive_range(rng: random.Random) -> Problem:
    step, name = rng.randint(2, 5), _identifier(rng)
    bounds = [(lo, lo + rng.randint(2, 6) * step) for lo in rng.sample(range(0, 40), 2)]
    bounds.append((7, 7))  # the edge: lo == hi gives [lo]

    def expect(lo: int, hi: int) -> list[int]:
        return list(range(lo, hi + 1, step))

    tests = [f"assert {name}({lo}, {hi}) == {expect(lo, hi)}" for lo, hi in bounds]
    programs = {
        "correct": f"def {name}(lo, hi):\n    return list(range(lo, hi + 1, {step}))\n",
        "off_by_one": f"def {name}(lo, hi):\n    return list(range(lo + 1, hi + 1, {step}))\n",
        "wrong_format": f"def {name}(lo, hi):\n    return tuple(range(lo, hi + 1, {step}))\n",
        "edge_case": f"def {name}(lo, hi):\n    return list(range(lo, hi + 1, {step})) if lo < hi else []\n",
        "crash": f"def {name}(lo, hi):\n    return list(range(lo, hi + 1, {step} - {step}))\n",
        "syntax_error": f"def {name}(lo, hi):\n    return [x for x in range(lo, hi + 1, {step})\n",
        "timeout": f"def {name}(lo, hi):\n    out, x = [], lo\n    while x != hi + 1:\n        out.append(x)\n"
                   f"        x += {step}\n    return out\n",
    }
    statement = (f"Write a Python function `{name}(lo, hi)` that returns the list lo, lo + {step}, lo + "
                 f"{2 * step}, ... of every such number up to and including hi (hi - lo is a multiple of {step}).")
    return Problem("inclusive_range", "asserts", statement, {"test_list": tests, "test_setup_code": ""}, 3, programs)


FAMILIES = (_linear, _threshold_sum, _multiples, _count_divisible, _digit_sum, _inclusive_range)


def prompts_for(reasoning_prompts: int) -> int:
    return max(MINIMUM, round(reasoning_prompts * SHARE))


class CodeTestsTruth:
    """``ground_truth/code_tests.parquet``: the expected sandbox outcome per candidate (small: one write)."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, []  # type: ignore[var-annotated]

    def add(self, prompt_id: str, sample_index: int, problem: Problem, variant: str) -> tuple[str, int]:
        status, passed = EXPECTED[variant]
        verdict = "correct" if status == "pass" else "incorrect"
        self.rows.append((SOURCE, prompt_id, sample_index, problem.style, problem.family, variant, status,
                          passed(problem.total), problem.total, verdict))
        return status, passed(problem.total)

    def close(self) -> None:
        columns = list(zip(*self.rows, strict=True)) if self.rows else [[] for _ in TRUTH]
        arrays = [pa.array(list(c), type=f.type) for c, f in zip(columns, TRUTH, strict=True)]
        pq.write_table(pa.Table.from_arrays(arrays, schema=TRUTH), self.path)


def _variant(rng: random.Random, index: int) -> str:
    if index == TIMEOUT_FIRST or (index > TIMEOUT_FIRST and (index - TIMEOUT_FIRST) % TIMEOUT_EVERY == 0):
        return "timeout"
    roll, edge = rng.random(), 0.0
    for name, weight in WEIGHTS:
        edge += weight
        if roll < edge:
            return name
    return "correct"


def _completion(rng: random.Random, problem: Problem, variant: str) -> tuple[str, str]:
    """(reasoning, answer) of one candidate."""
    target = rng.randint(1200, 2400)
    opening = f"Okay, let me restate the task first. {problem.statement}"
    body = reasoning_pools()["code"].walk(rng, target - len(opening))
    reasoning = "\n\n".join([opening, *body, "I think this implementation handles every case in the statement."])
    if variant == "no_code":
        answer = ("Read the values, keep the ones the statement asks for and combine them as described; "
                  "the loop runs once over the input, so it is linear.")
    else:
        answer = f"Here is the program:\n\n```python\n{problem.programs[variant]}```\n\n{rng.choice(_OUTROS)}"
    return reasoning, answer


def write_code_tests(ctx: Any, count: int) -> dict[str, Any]:
    """Write ``raw/code_tests`` (plain JSONL) and its truth; ``ctx`` is sources.RunContext."""
    from .sources import summarize  # the shared summary; imported here to keep sources -> code_tests one-way

    rng = ctx.rng(SOURCE)
    filler = Filler(ctx.rng(f"{SOURCE}/prompts"))
    truth = CodeTestsTruth(ctx.root / "ground_truth" / "code_tests.parquet")
    shards = JsonlShards(ctx.root, f"raw/{SOURCE}", None, ctx.shard_records)
    candidate_index = 0
    for i in range(count):
        problem = FAMILIES[i % len(FAMILIES)](rng)
        setting = filler.fill(rng.choice(_SETTINGS))
        rules = " ".join(filler.fill(t) for t in rng.sample(_RULES, 2))
        text = f"{problem.statement} {setting} {rules}"
        prompt_id = f"ct-{ctx.id_offset + i:05d}"
        generations = []
        for j in range(ctx.samples):
            variant = _variant(rng, candidate_index)
            candidate_index += 1
            if variant == "edge_case" and not problem.edge:
                variant = "off_by_one"
            reasoning, answer = _completion(rng, problem, variant)
            generations.append(f"<think>\n{reasoning}\n</think>\n\n{answer}")
            status, _ = truth.add(prompt_id, j, problem, variant)
            correct = status == "pass"
            ctx.truth.candidate(SOURCE, prompt_id, j, "reasoning", "code", "en", correct,
                                [] if correct else ["incorrect"], 0.0, None, len(reasoning))
        record = {"question_id": prompt_id, "question": text, "tests": problem.tests, "generations": generations,
                  "difficulty": rng.choice(("easy", "medium"))}
        shards.write(orjson.dumps(record))
        ctx.truth.prompt(SOURCE, prompt_id, "reasoning", "code", text, None)
    stats = shards.close()
    truth.close()
    write_empty(ctx.root / f"raw/{SOURCE}/part-99999.jsonl", None)
    return summarize(ctx, SOURCE, stats, code_status=_status_counts(truth.rows))


def _status_counts(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[6]] = counts.get(row[6], 0) + 1
    return dict(sorted(counts.items()))
