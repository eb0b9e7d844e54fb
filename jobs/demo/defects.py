"""Defects injected into a chain of thought, on a paragraph-level draft.

A defect must stay exactly what the ground truth says it is, so the
transforms respect each other: foreign text and code go in front of the
tail (the closing statement, a repetition loop, a truncation cut), a long
paragraph replaces an ordinary English one, and a truncated chain is cut
inside its last paragraph, mid-sentence, so nothing injected is cut away.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import foreign
from .text import MAX_PARAGRAPH_CHARS, ParagraphPool

DEFECT_CODES = (
    "incorrect", "truncated", "mixed_language", "wrong_language", "code_block",
    "long_paragraph", "repetition", "malformed_think", "empty_answer",
)

MIN_FOREIGN_SHARE, MAX_FOREIGN_SHARE = 0.05, 0.30
LONG_PARAGRAPH_CHARS = (3000, 8000)
REPEATS = (20, 200)
_TAIL = frozenset({"close", "loop", "cut"})


@dataclass(frozen=True)
class DefectRates:
    """Per reasoning candidate; code_block applies to non-code domains only."""

    truncated: float = 0.03
    mixed_language: float = 0.05
    code_block: float = 0.03
    long_paragraph: float = 0.03
    repetition: float = 0.02
    malformed_think: float = 0.01
    empty_answer: float = 0.01


@dataclass
class Draft:
    """Reasoning as paragraphs, each tagged en | close | long | code | loop | cut | foreign | mixed."""

    paragraphs: list[str]
    kinds: list[str]
    foreign_chars: int = 0
    foreign_language: str | None = None

    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def chars(self) -> int:
        return sum(map(len, self.paragraphs)) + 2 * (len(self.paragraphs) - 1)

    def tail_start(self) -> int:
        return next((i for i, k in enumerate(self.kinds) if k in _TAIL), len(self.kinds))

    def insert(self, index: int, paragraph: str, kind: str) -> None:
        self.paragraphs.insert(index, paragraph)
        self.kinds.insert(index, kind)


def add_repetition(rng: random.Random, draft: Draft, pool: ParagraphPool, truncated: bool) -> None:
    """A degenerate loop: one sentence or a 2-3 sentence block repeated 20-200 times at the end."""
    if draft.kinds and draft.kinds[-1] == "close":
        draft.paragraphs.pop()
        draft.kinds.pop()
    block = " ".join(rng.choice(pool.sentences) for _ in range(rng.choice((1, 1, 2, 3))))
    repeats = rng.randint(*REPEATS)
    # Blank lines between copies keep each paragraph short: a loop, not also a long paragraph.
    for _ in range(repeats):
        draft.paragraphs.append(block)
        draft.kinds.append("loop")
    if truncated:
        draft.paragraphs.append(cut_mid_sentence(rng, block))
        draft.kinds.append("cut")


def cut_mid_sentence(rng: random.Random, paragraph: str) -> str:
    """Cut at a space that does not follow a sentence end, as a length limit does."""
    lo, hi = len(paragraph) // 4, max(len(paragraph) * 9 // 10, len(paragraph) // 4 + 1)
    spaces = [i for i in range(lo, hi) if paragraph[i] == " " and paragraph[i - 1] not in ".?!:"]
    if not spaces:
        return paragraph[: max(1, len(paragraph) // 2)].rstrip(" .")
    return paragraph[: rng.choice(spaces)]


def truncate(rng: random.Random, draft: Draft) -> None:
    """Keep 30-95% of the paragraphs (at least two) and cut the last one mid-sentence."""
    if draft.kinds and draft.kinds[-1] == "close":
        draft.paragraphs.pop()
        draft.kinds.pop()
    keep = max(2, round(len(draft.paragraphs) * rng.uniform(0.3, 0.95)))
    del draft.paragraphs[keep:], draft.kinds[keep:]
    draft.paragraphs[-1] = cut_mid_sentence(rng, draft.paragraphs[-1])
    draft.kinds[-1] = "cut"


def add_long_paragraph(rng: random.Random, draft: Draft, pool: ParagraphPool) -> None:
    text = pool.run_on(rng, rng.randint(*LONG_PARAGRAPH_CHARS) - 150)
    eligible = [i for i in range(1, draft.tail_start()) if draft.kinds[i] == "en"]
    if eligible:
        index = rng.choice(eligible)
        draft.paragraphs[index], draft.kinds[index] = text, "long"
    else:
        draft.insert(min(1, draft.tail_start()), text, "long")


def code_snippet(rng: random.Random) -> str:
    """Code where it does not belong: a fenced block or indented code, as models slip into."""
    a, b, n = rng.randint(2, 9), rng.randint(1, 30), rng.randint(10, 200)
    if rng.random() < 0.6:
        return (f"```python\ntotal = 0\nfor k in range(1, {n} + 1):\n    if k % {a} == 0:\n"
                f"        total += k * k\nprint(total)\n```")
    return (f"    def check(x):\n        return x * x - {a} * x + {b}\n\n"
            f"    values = [check(v) for v in range({n})]\n    print(min(values), max(values))")


def add_code_block(rng: random.Random, draft: Draft) -> None:
    lead = rng.choice(("Let me verify this with a quick script.", "I could compute this directly:",
                       "A short program would settle it."))
    index = rng.randint(1, max(1, draft.tail_start()))
    draft.insert(index, f"{lead}\n{code_snippet(rng)}" if rng.random() < 0.5 else code_snippet(rng), "code")


def _foreign_sentences(rng: random.Random, language: str, english_chars: int, share: float) -> list[str]:
    """Enough genuine sentences for the share, cycling so none repeats much more than the others."""
    pool = list(foreign.SENTENCES[language])
    rng.shuffle(pool)
    need = share * english_chars / (1 - share)
    picked: list[str] = []
    total = 0
    while total < need:
        sentence = pool[len(picked) % len(pool)]
        picked.append(sentence)
        total += len(sentence)
    while len(picked) > 1 and total / (english_chars + total) > MAX_FOREIGN_SHARE - 0.02:
        total -= len(picked.pop())
    return picked


def mix_language(rng: random.Random, draft: Draft) -> None:
    """Foreign text at 5-30% of the reasoning: whole paragraphs or sentences inside English ones."""
    language = rng.choice(foreign.FOREIGN_LANGUAGES)
    sentences = _foreign_sentences(rng, language, draft.chars(), rng.uniform(0.07, 0.26))
    draft.foreign_language = language
    if rng.random() < 0.5:
        _insert_paragraphs(rng, draft, language, sentences)
    else:
        _insert_inline(rng, draft, language, sentences)


def _insert_paragraphs(rng: random.Random, draft: Draft, language: str, sentences: list[str]) -> None:
    while sentences:
        size = rng.randint(2, 6)
        chunk, sentences = sentences[:size], sentences[size:]
        paragraph = foreign.join_sentences(language, chunk)
        draft.insert(rng.randint(1, max(1, draft.tail_start())), paragraph, "foreign")
        draft.foreign_chars += len(paragraph)


def _insert_inline(rng: random.Random, draft: Draft, language: str, sentences: list[str]) -> None:
    limit = draft.tail_start()
    for sentence in sentences:
        # A few random probes instead of a scan: long chains have hundreds of paragraphs.
        probes = (rng.randrange(limit) for _ in range(8))
        index = next((i for i in probes if draft.kinds[i] in ("en", "mixed")
                      and len(draft.paragraphs[i]) + len(sentence) + 1 < MAX_PARAGRAPH_CHARS), None)
        if index is None:
            draft.insert(rng.randint(1, limit), sentence, "foreign")
            limit += 1
        else:
            text = draft.paragraphs[index]
            end = text.find(". ", rng.randrange(len(text)))  # the next sentence boundary
            at = end + 1 if end >= 0 else len(text)
            draft.paragraphs[index] = f"{text[:at]} {sentence}{text[at:]}"
            draft.kinds[index] = "mixed"
        draft.foreign_chars += len(sentence)
