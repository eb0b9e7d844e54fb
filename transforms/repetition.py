"""Degenerate loops: duplicate n-gram share and the longest repeated span.

Words are whitespace-separated tokens (what ``str.split`` makes, found with
numpy over the code points); for text written without spaces (Chinese,
Japanese) every non-space character is a token. An
n-gram is a duplicate when the same n tokens appeared earlier in the text.
The duplicate share is the fraction of token characters covered by duplicate
n-grams (Gopher's "duplicate n-gram character fraction"); the longest
repeated span is the longest stretch in which every n-gram is a duplicate,
i.e. text that only restates earlier text, which is what a model stuck in a
loop writes until it hits its token limit.

Compiled (``text_kernels.repeated_ngrams``): token hashes (polynomial over
code points, the same in every process) combined into n-gram keys; repeats
found by sorting them. Only equality of keys is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sftmix.transforms import text_kernels
from sftmix.transforms.scripts import code_points

# Python str.split() whitespace, so the compiled loop's tokens are split()'s tokens.
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


@dataclass
class RepetitionFigures:
    duplicate_share: float = 0.0
    longest_chars: int = 0  # characters of the longest repeated span
    max_repeats: int = 0  # occurrences of the most frequent n-gram (a loop repeats its block many times)
    start: int = 0
    end: int = 0
    # The text's non-space characters, A-Z folded to a-z, hashed (text_kernels.repeated_ngrams); 0: none.
    content_hash: int = 0


def measure(text: str, n: int) -> RepetitionFigures:
    figures = RepetitionFigures()
    if not text:
        return figures
    ascii_text = text.isascii()
    # ASCII: one byte a character, a quarter of the memory to go through
    points = np.frombuffer(text.encode("ascii"), dtype=np.uint8) if ascii_text else code_points(text)
    covered, token_chars, repeats, start, end, longest, content_hash = text_kernels.repeated_ngrams(
        points, _IS_SPACE, ascii_text, n
    ).tolist()
    figures.max_repeats = repeats
    figures.content_hash = content_hash
    if repeats <= 1:
        return figures
    figures.duplicate_share = covered / max(1, token_chars)
    figures.longest_chars = longest
    if longest >= MIN_SPAN_CHARS:
        figures.start, figures.end = start, end
        figures.longest_chars = end - start
    return figures
