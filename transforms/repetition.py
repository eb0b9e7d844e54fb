"""Degenerate loops: duplicate n-gram share and the longest repeated span.

Words are whitespace-separated tokens (``str.split``, in C); for text written
without spaces (Chinese, Japanese) every non-space character is a token. An
n-gram is a duplicate when the same n tokens appeared earlier in the text.
The duplicate share is the fraction of token characters covered by duplicate
n-grams (Gopher's "duplicate n-gram character fraction"); the longest
repeated span is the longest stretch in which every n-gram is a duplicate,
i.e. text that only restates earlier text, which is what a model stuck in a
loop writes until it hits its token limit.

Vectorised with numpy: token hashes combined into n-gram keys, first
occurrences by ``np.unique``. Python's string hash is salted per process,
but only equality of keys is used, so results do not depend on the salt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sftmix.transforms.scripts import code_points

# Python str.split() whitespace, so numpy token starts line up with split() tokens.
_SPLIT_WHITESPACE = (
    0x09,
    0x0A,
    0x0B,
    0x0C,
    0x0D,
    0x1C,
    0x1D,
    0x1E,
    0x1F,
    0x20,
    0x85,
    0xA0,
    0x1680,
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
    *range(0x2000, 0x200B),
)
# Lookup table over code points up to U+3000; anything above maps to the last, False, entry.
_IS_SPACE = np.zeros(0x3002, dtype=bool)
_IS_SPACE[list(_SPLIT_WHITESPACE)] = True
MIN_SPAN_CHARS = 100  # shorter repeated stretches get no offsets (they are never a reason)
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
CJK_TOKEN_LENGTH = 12  # mean token length above which the text is treated as written without spaces


@dataclass
class RepetitionFigures:
    duplicate_share: float = 0.0
    longest_chars: int = 0  # characters of the longest repeated span
    max_repeats: int = 0  # occurrences of the most frequent n-gram (a loop repeats its block many times)
    start: int = 0
    end: int = 0


def _token_starts_and_ends(text: str, per_character: bool) -> tuple[np.ndarray, np.ndarray]:
    points = code_points(text)
    space = _IS_SPACE[np.minimum(points, 0x3001)]
    if per_character:
        positions = np.flatnonzero(~space)
        return positions, positions + 1
    word = (~space).astype(np.int8)
    edges = np.diff(np.concatenate(([0], word, [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def measure(text: str, n: int) -> RepetitionFigures:
    figures = RepetitionFigures()
    if not text:
        return figures
    tokens = text.split()
    per_character = bool(tokens) and len(text) / len(tokens) > CJK_TOKEN_LENGTH and not text.isascii()
    if per_character:
        tokens = list("".join(tokens))  # the split() tokens joined: every non-space character, in C
    if len(tokens) <= n:
        return figures
    hashes = np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    count = len(tokens) - n + 1
    keys = hashes[:count].copy()
    for offset in range(1, n):
        keys = keys * _MULTIPLIER + hashes[offset : offset + count]
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    figures.max_repeats = int(counts.max())
    duplicate = np.ones(count, dtype=bool)
    duplicate[first] = False
    if not duplicate.any():
        return figures
    # tokens covered by a duplicate n-gram: +1 where one starts, -1 n tokens later
    starts = np.flatnonzero(duplicate)
    size = len(tokens) + 1
    cover = np.bincount(starts, minlength=size) - np.bincount(starts + n, minlength=size)
    covered = np.cumsum(cover[:-1]) > 0
    figures.duplicate_share = float(lengths[covered].sum() / max(1, lengths.sum()))
    first_token, last_token = _longest_run(duplicate)
    last_token += n - 1
    figures.longest_chars = int(lengths[first_token : last_token + 1].sum() + (last_token - first_token))
    if figures.longest_chars < MIN_SPAN_CHARS:
        return figures
    token_starts, token_ends = _token_starts_and_ends(text, per_character)
    if len(token_starts) == len(tokens):  # else the two tokenisations disagree: keep the size, no offsets
        figures.start, figures.end = int(token_starts[first_token]), int(token_ends[last_token])
        figures.longest_chars = figures.end - figures.start
    return figures


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(first, last) index of the longest run of True in ``flags`` (which has at least one)."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1)
    best = int(np.argmax(run_ends - run_starts))
    return int(run_starts[best]), int(run_ends[best] - 1)
