"""The answer part of a candidate (what follows ``</think>``), per domain.

Math ends in ``\\boxed{...}``, STEM multiple choice in "The answer is (C).",
logic in a short "Answer: <name>" line, code in a fenced ```python block.
"""

from __future__ import annotations

import random

from .prompts import CodeTask
from .text import ParagraphPool

_MATH_FINAL = (
    "Therefore, the answer is $\\boxed{{{0}}}$.",
    "So the final answer is $\\boxed{{{0}}}$.",
    "**Final Answer**\n\n$$\\boxed{{{0}}}$$",
    "Putting it together, we obtain $\\boxed{{{0}}}$.",
    "The requested value is $\\boxed{{{0}}}$.",
)

# Placeholders are plain words because the code itself is full of braces.
_SOLUTIONS = (
    '''def FNAME(ARG: list[dict]) -> list[dict]:
    """Return the best ARG by K1 without modifying the input."""
    if not ARG:
        return []
    ranked = sorted(ARG, key=lambda item: (item["K1"], item["K2"]))
    return ranked[:LIMIT]''',
    '''from collections import Counter


def FNAME(ARG: list[dict]) -> dict[str, int]:
    """Count how many ARG share each K1."""
    counts = Counter(item["K1"] for item in ARG)
    return dict(counts)''',
    '''def FNAME(ARG: list[dict]) -> list[dict]:
    """Longest run of ARG whose K1 keeps increasing."""
    best: list[dict] = []
    run: list[dict] = []
    for item in ARG:
        if run and item["K1"] <= run[-1]["K1"]:
            run = []
        run.append(item)
        if len(run) > len(best):
            best = list(run)
    return best''',
    '''def FNAME(ARG: list[dict]) -> int:
    """Total K1 over the ARG flagged in K2."""
    total = 0
    for item in ARG:
        if item["K1"] < 0:
            raise ValueError(f"negative K1: {item['K1']}")
        if item.get("K2"):
            total += item["K1"]
    return total''',
    '''def FNAME(ARG: list[dict]) -> list[dict]:
    """Drop ARG with a repeated K1, keeping the first of each."""
    seen: set[object] = set()
    result = []
    for item in ARG:
        key = item["K1"]
        if key in seen:
            continue
        seen.add(key)
        result.append(item)
    return result''',
)

# The solution for each behaviour a code prompt asks for (prompts._CODE_RETURNS order).
_SOLUTION_FOR_BEHAVIOR = (0, 1, 2, 0, 3, 4)

# An incorrect candidate's code differs by one realistic slip.
_BUGS = (("<=", "<"), ("[:LIMIT]", "[:LIMIT - 1]"), ("total += ", "total = "), ("continue", "pass"),
         ("(item[\"K1\"], item[\"K2\"])", "item[\"K2\"]"), ("dict(counts)", "dict(counts.most_common(1))"))

_CODE_OUTROS = (
    "The function runs in linear time apart from the sort, and it leaves the input untouched.",
    "Each element is visited once, so the running time is $O(n)$ with $O(n)$ extra memory.",
    "Edge cases such as an empty list are handled explicitly.",
)


def _summary(rng: random.Random, pool: ParagraphPool, sentences: int) -> str:
    return " ".join(rng.choice(pool.sentences) for _ in range(sentences))


def math_answer(rng: random.Random, pool: ParagraphPool, boxed: str) -> str:
    final = rng.choice(_MATH_FINAL).format(boxed)
    return f"{_summary(rng, pool, rng.randint(1, 3))}\n\n{final}"


def choice_answer(rng: random.Random, pool: ParagraphPool, letter: str) -> str:
    return f"{_summary(rng, pool, rng.randint(1, 2))} The answer is ({letter})."


def short_text_answer(rng: random.Random, pool: ParagraphPool, text: str) -> str:
    return f"{_summary(rng, pool, rng.randint(1, 2))}\n\nAnswer: {text}"


def code_answer(rng: random.Random, task: CodeTask, correct: bool) -> str:
    code = _SOLUTIONS[_SOLUTION_FOR_BEHAVIOR[task.behavior]]
    if not correct:
        applicable = [(old, new) for old, new in _BUGS if old in code] or [("return ", "return None or ")]
        old, new = rng.choice(applicable)
        code = code.replace(old, new, 1)
    k1, k2, _ = task.keys
    code = (code.replace("FNAME", task.function_name).replace("ARG", task.argument)
            .replace("K1", k1).replace("K2", k2).replace("LIMIT", str(rng.randint(2, 9))))
    return f"Here is an implementation:\n\n```python\n{code}\n```\n\n{rng.choice(_CODE_OUTROS)}"


def stated_answer(domain: str, shown: str) -> str:
    """How the last reasoning paragraph states the answer it is about to give."""
    if domain == "math":
        return f"So the answer should be ${shown}$."
    if domain == "stem":
        return f"So the best option is ({shown})."
    if domain == "logic":
        return f"So the answer must be {shown}."
    return "I think this implementation handles every case in the statement."
