"""Reasoning candidates: chain of thought, answer, finish reason, and their ground truth.

Reasoning length is lognormal (median 4.8k chars, sigma 0.75; clipped to
1k-90k), so the mean is ~7k chars with a long tail past 40k, like R1
outputs. Each prompt draws a pass rate (22% always solved, 8% never, the rest
Beta(2.2, 1)), which makes ~30% of verifiable candidates incorrect and
spreads per-prompt pass rates over the whole range.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from . import defects as d
from .answers import choice_answer, code_answer, math_answer, short_text_answer, stated_answer
from .math_answers import candidate_form
from .prompts import PromptSpec
from .text import reasoning_pools

LENGTH_MEDIAN, LENGTH_SIGMA = 4800, 0.75
LENGTH_MIN, LENGTH_MAX = 1000, 90_000
MIXED_LENGTH_MAX = 15_000  # sixteen sentences per language must be able to reach a 5% share
LINE_SEPARATOR = "\u2028"

_LEADS = (
    "Okay, so I need to figure this out. The problem says:",
    "Let me start by reading the problem carefully.",
    "Alright, here is what we are given.",
    "Okay, let me restate the task first.",
    "Hmm, let me think about what is being asked.",
)


@dataclass(slots=True)
class Candidate:
    reasoning_parts: tuple[str, ...]  # two parts when the think block is doubled
    answer: str  # "" when truncated or empty
    finish_reason: str  # stop | length
    think: str  # ok | double | no_open
    defects: list[str]
    is_correct: bool | None
    foreign_share: float
    foreign_language: str | None
    tests: tuple[int, int] | None = None  # (passed, total) for code

    @property
    def reasoning_chars(self) -> int:
        return sum(map(len, self.reasoning_parts))


@dataclass(frozen=True)
class PromptState:
    """What the candidates of one prompt share."""

    spec: PromptSpec
    pass_rate: float
    quote: str


def draw_pass_rate(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.22:
        return 1.0
    if roll < 0.30:
        return 0.0
    return rng.betavariate(2.2, 1.0)


def _quote(prompt: str) -> str:
    flat = " ".join(prompt.split())
    if len(flat) <= 320:
        return flat
    end = flat.rfind(". ", 80, 320)
    return flat[: end + 1] if end > 0 else flat[:320]


class CandidateBuilder:
    def __init__(self, rng: random.Random, rates: d.DefectRates | None = None) -> None:
        self.rng = rng
        self.rates = rates or d.DefectRates()
        self.pools = reasoning_pools()
        self.mu = math.log(LENGTH_MEDIAN)

    def prompt_state(self, spec: PromptSpec) -> PromptState:
        return PromptState(spec, draw_pass_rate(self.rng), _quote(spec.text))

    def _answer(self, state: PromptState, correct: bool) -> tuple[str, str]:
        """(the answer as the reasoning states it, the answer part of the completion)."""
        rng, spec = self.rng, state.spec
        pool = self.pools[spec.domain]
        if spec.answer is None:
            assert spec.code is not None
            return "", code_answer(rng, spec.code, correct)
        if spec.domain == "math":
            shown = candidate_form(rng, spec.answer, correct)
            return shown, math_answer(rng, pool, shown)
        shown = spec.answer.reference if correct else rng.choice(spec.answer.wrong_forms)
        if spec.domain == "stem":
            return shown, choice_answer(rng, pool, shown)
        return shown, short_text_answer(rng, pool, shown)

    def build(self, state: PromptState, line_separator: bool = False) -> Candidate:
        rng, rates, domain = self.rng, self.rates, state.spec.domain
        correct = rng.random() < state.pass_rate
        truncated = rng.random() < rates.truncated
        empty = not truncated and rng.random() < rates.empty_answer
        malformed = not truncated and not empty and rng.random() < rates.malformed_think
        mixed = rng.random() < rates.mixed_language
        code = domain != "code" and rng.random() < rates.code_block
        long = rng.random() < rates.long_paragraph
        loop = rng.random() < rates.repetition
        target = min(max(int(rng.lognormvariate(self.mu, LENGTH_SIGMA)), LENGTH_MIN), LENGTH_MAX)
        if mixed:
            target = min(target, MIXED_LENGTH_MAX)
        shown, answer = self._answer(state, correct)
        opening = f"{rng.choice(_LEADS)} {state.quote}"
        body = self.pools[domain].walk(rng, target - len(opening))
        paragraphs = [opening, *body, stated_answer(domain, shown)]
        code_in_answer = code and not (truncated or empty) and rng.random() < 0.5
        draft = d.Draft(paragraphs, ["en"] * (len(paragraphs) - 1) + ["close"])
        if truncated or mixed or long or loop or (code and not code_in_answer):
            self._damage(draft, domain, truncated, long, code and not code_in_answer, loop, mixed)
        if code_in_answer:
            answer = f"{answer}\n\n{d.code_snippet(rng)}"
        text = draft.text()
        if line_separator:
            text = text.replace(". ", "." + LINE_SEPARATOR, 1)
        parts = self._split_think(text) if malformed else (text,)
        think = "ok" if len(parts) == 1 and not malformed else ("double" if len(parts) == 2 else "no_open")
        found = {"truncated": truncated, "empty_answer": empty, "malformed_think": malformed,
                 "mixed_language": mixed, "code_block": code, "long_paragraph": long, "repetition": loop}
        is_correct = None if truncated or empty else correct
        found["incorrect"] = is_correct is False
        chars = sum(map(len, parts))
        return Candidate(
            reasoning_parts=parts,
            answer="" if truncated or empty else answer,
            finish_reason="length" if truncated else "stop",
            think=think,
            defects=[c for c in d.DEFECT_CODES if found.get(c)],
            is_correct=is_correct,
            foreign_share=draft.foreign_chars / chars if mixed else 0.0,
            foreign_language=draft.foreign_language,
            tests=self._tests(is_correct) if domain == "code" else None,
        )

    def _damage(self, draft: d.Draft, domain: str, truncated: bool, long: bool, code: bool,
                loop: bool, mixed: bool) -> None:
        rng, pool = self.rng, self.pools[domain]
        if loop:
            d.add_repetition(rng, draft, pool, truncated)
        elif truncated:
            d.truncate(rng, draft)
        if long:
            d.add_long_paragraph(rng, draft, pool)
        if code:
            d.add_code_block(rng, draft)
        if mixed:
            d.mix_language(rng, draft)

    def _split_think(self, text: str) -> tuple[str, ...]:
        """Two think blocks (split at a paragraph break), or one whose opening tag is missing."""
        middle = text.find("\n\n", len(text) // 2)
        if middle > 0 and self.rng.random() < 0.6:
            return text[:middle], text[middle + 2:]
        return (text,)

    def _tests(self, is_correct: bool | None) -> tuple[int, int]:
        total = self.rng.randint(5, 25)
        if is_correct:
            return total, total
        return (self.rng.randint(0, total - 1) if is_correct is False else 0), total
