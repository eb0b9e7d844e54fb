"""Prompt-level defects: exact duplicates, near duplicates, benchmark contamination.

Definitions the ground truth is written against (and the dedup stage can be
tested against):
- exact duplicate: equal after ``normalize`` (lowercase, punctuation dropped,
  whitespace collapsed);
- near duplicate: Jaccard similarity of the sets of word 5-grams, words being
  ``\\w+`` runs of the lowercased text, in [0.80, 0.95].
Sources of duplicates come from a bounded reservoir of earlier originals, so
memory does not grow with the data.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from . import words

NEAR_DUP_RANGE = (0.80, 0.95)
SHINGLE = 5
_WORD = re.compile(r"\w+")
_PUNCT = re.compile(r"[^\w\s]")
_NUMBER = re.compile(r"(?<![\d.,])\d{4,}(?![\d.,])")

CONTAMINATION_PREFIXES = (
    "Solve the following problem. ",
    "Solve the following math problem step by step. ",
    "Answer the question below and put the final answer in \\boxed{}. ",
    "Problem: ",
    "Please reason step by step. ",
)

T = TypeVar("T")


def normalize(text: str) -> str:
    return " ".join(_PUNCT.sub("", text.lower()).split())


def shingles(text: str) -> set[tuple[str, ...]]:
    tokens = _WORD.findall(text.lower())
    return {tuple(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class Reservoir(Generic[T]):
    """Uniform sample (Algorithm R) of at most ``size`` items offered so far."""

    def __init__(self, rng: random.Random, size: int = 256) -> None:
        self.rng, self.size, self.seen = rng, size, 0
        self.items: list[T] = []

    def offer(self, item: T) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < self.size:
                self.items[slot] = item

    def pick(self) -> T | None:
        return self.rng.choice(self.items) if self.items else None


def exact_duplicate(rng: random.Random, text: str) -> str:
    """Same prompt under normalization: case, whitespace and punctuation edits only."""
    edits = (
        lambda t: t.lower(),
        lambda t: t.upper() if len(t) < 60 else t[:1].lower() + t[1:],
        lambda t: t.replace(". ", ".  ", rng.randint(1, 3)),
        lambda t: t.replace(". ", ".\n", 1),
        lambda t: f"  {t}\n",
        lambda t: t.rstrip(".?!") if t.rstrip(".?!") != t else t + "!",
        lambda t: t.replace(", ", " , ", 1).replace("?", " ?"),
        lambda t: t.replace(",", "", 2),
    )
    out = text
    while out == text:
        for edit in rng.sample(edits, rng.randint(1, 3)):
            out = edit(out)
    return out


def _edit(rng: random.Random, tokens: list[str], near_edge: bool) -> list[str]:
    """Replace one plain word, or insert one, preferring the ends when small steps are needed."""
    plain = [i for i, t in enumerate(tokens) if t.isalpha() and t.islower()]
    if near_edge:
        plain = [i for i in plain if i < 3 or i >= len(tokens) - 3] or plain
    word = rng.choice(words.ADJECTIVES if rng.random() < 0.5 else words.NOUNS)
    out = list(tokens)
    if plain and rng.random() < 0.7:
        index = rng.choice(plain)
        if out[index] != word:
            out[index] = word
            return out
    index = rng.choice(plain) if plain else len(out)
    out.insert(index, word)
    return out


def near_duplicate(rng: random.Random, text: str) -> tuple[str, float] | None:
    """A few words changed or inserted until the 5-gram Jaccard lands in NEAR_DUP_RANGE."""
    lo, hi = NEAR_DUP_RANGE
    original = shingles(text)
    if len(original) < 10:
        return None
    tokens = text.split(" ")
    for attempt in range(60):
        trial = _edit(rng, tokens, near_edge=attempt >= 10)
        candidate = " ".join(trial)
        score = jaccard(original, shingles(candidate))
        if score < lo or normalize(candidate) == normalize(text):
            continue
        tokens = trial
        if score <= hi:
            return candidate, score
    return None


def contaminated_text(rng: random.Random, question: str) -> str:
    """A benchmark question as it leaks into training data: verbatim or lightly edited."""
    mode = rng.choice(("verbatim", "whitespace", "numbers", "prefix", "prefix"))
    if mode == "numbers" and _NUMBER.search(question):
        return _NUMBER.sub(lambda m: f"{int(m.group()):,}", question)
    if mode in ("numbers", "whitespace"):
        return question.replace(". ", ".  ").replace(" $", "  $", 1) + " "
    if mode == "prefix":
        return rng.choice(CONTAMINATION_PREFIXES) + question
    return question


@dataclass(frozen=True)
class DupRates:
    exact: float = 0.02
    near: float = 0.02
    contaminated: float = 0.01  # math prompts only: the benchmark is math
