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

Vectorised with numpy: token hashes (polynomial over code points, the same
in every process) combined into n-gram keys; repeats found by sorting them.
Only equality of keys is used.
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
SHORT_TEXT_CHARS = 2000
CJK_TOKEN_LENGTH = 12  # mean token length above which the text is treated as written without spaces


@dataclass
class RepetitionFigures:
    duplicate_share: float = 0.0
    longest_chars: int = 0  # characters of the longest repeated span
    max_repeats: int = 0  # occurrences of the most frequent n-gram (a loop repeats its block many times)
    start: int = 0
    end: int = 0


# Token hashes are polynomial in the code points (base _BASE, mod 2**64) from one prefix sum over the
# text: no Python string per token, no per-token hash call. A token's sum is moved to position 0 by
# the inverse base's power at its start, so equal tokens hash equal wherever they stand.
_BASE = np.uint64(0x100000001B3)  # odd: invertible mod 2**64
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))
_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)


def _power_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """_BASE**i and _BASE_INVERSE**i for i < size (grown by doubling, kept per process)."""
    global _powers, _inverse_powers
    if len(_powers) < size:
        grown = max(size, 2 * len(_powers))
        _powers = np.empty(grown, dtype=np.uint64)
        _inverse_powers = np.empty(grown, dtype=np.uint64)
        _powers[0] = _inverse_powers[0] = 1
        _powers[1:] = np.cumprod(np.full(grown - 1, _BASE, dtype=np.uint64))
        _inverse_powers[1:] = np.cumprod(np.full(grown - 1, _BASE_INVERSE, dtype=np.uint64))
    return _powers, _inverse_powers


def _tokens(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(hash, start, end) of every token of ``text``, and whether tokens are single characters."""
    if text.isascii():  # one byte a character: a quarter of the memory to go through
        points = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        space = _IS_SPACE[points]
    else:
        points = code_points(text)
        space = _IS_SPACE[np.minimum(points, 0x3001)]
    word = (~space).view(np.int8)
    edges = np.diff(np.concatenate(([0], word, [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    per_character = len(starts) > 0 and len(text) / len(starts) > CJK_TOKEN_LENGTH and not text.isascii()
    if per_character:
        starts = np.flatnonzero(word)
        return _mix(points[starts].astype(np.uint64) + np.uint64(1)), starts, starts + 1, True
    powers, inverse_powers = _power_tables(len(points) + 1)
    # uint64 arithmetic wraps: everything here is mod 2**64 by design
    weighted = (points.astype(np.uint64) + np.uint64(1)) * powers[: len(points)]
    prefix = np.zeros(len(points) + 1, dtype=np.uint64)
    np.cumsum(weighted, out=prefix[1:])
    return _mix((prefix[ends] - prefix[starts]) * inverse_powers[starts]), starts, ends, False


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: token hashes stop being linear in the characters, so the n-gram keys
    (polynomial in the token hashes, on the same base) cannot cancel out across token boundaries."""
    values = values ^ (values >> np.uint64(30))
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def measure(text: str, n: int) -> RepetitionFigures:
    figures = RepetitionFigures()
    if not text:
        return figures
    if len(text) <= SHORT_TEXT_CHARS and text.isascii():
        # A short text (most answers) costs more in numpy calls than in work: a set of its
        # n-gram tuples says whether any repeats, and only one that does goes on below.
        tokens = text.split()
        if len(tokens) <= n:
            return figures
        ngrams = list(zip(*[tokens[offset:] for offset in range(n)], strict=False))  # windows end together
        if len(set(ngrams)) == len(ngrams):
            figures.max_repeats = 1
            return figures
    hashes, token_starts, token_ends, _ = _tokens(text)
    if len(hashes) <= n:
        return figures
    count = len(hashes) - n + 1
    # n-gram keys the same way, polynomial over token hashes: a window's sum from the prefix sums
    powers, inverse_powers = _power_tables(len(hashes) + 1)
    prefix = np.zeros(len(hashes) + 1, dtype=np.uint64)
    np.cumsum(hashes * powers[: len(hashes)], out=prefix[1:])
    keys = (prefix[n:] - prefix[:count]) * inverse_powers[:count]
    # Most texts repeat no n-gram: a plain sort settles that, and the figures of such a text are
    # known. A text that does repeat mostly repeats few: the work below goes over the repeated
    # n-grams' positions, not over every position again.
    ordered = np.sort(keys)
    equal = ordered[1:] == ordered[:-1]
    if not equal.any():
        figures.max_repeats = 1
        return figures
    first_equal, last_equal = _longest_run(equal)
    figures.max_repeats = last_equal - first_equal + 2  # a run of k equal neighbours is k + 1 keys
    repeated = np.unique(ordered[1:][equal])
    found = repeated[np.minimum(np.searchsorted(repeated, keys), len(repeated) - 1)] == keys
    positions = np.flatnonzero(found)
    _, first = np.unique(keys[positions], return_index=True)  # each repeated n-gram's first place
    duplicates = np.delete(positions, first)  # where an n-gram restates an earlier one, ascending
    lengths = token_ends - token_starts
    chars_before = np.concatenate(([0], np.cumsum(lengths)))
    # tokens covered by duplicate n-grams: [p, p + n) for each; ones at most n apart touch or overlap
    breaks = np.flatnonzero(np.diff(duplicates) > n)
    cover_first = duplicates[np.concatenate(([0], breaks + 1))]
    cover_last = duplicates[np.concatenate((breaks, [len(duplicates) - 1]))]
    covered = int((chars_before[cover_last + n] - chars_before[cover_first]).sum())
    figures.duplicate_share = float(covered / max(1, int(chars_before[-1])))
    # the longest stretch of consecutive duplicate positions (the first, if several are as long)
    breaks = np.flatnonzero(np.diff(duplicates) != 1)
    run_first = np.concatenate(([0], breaks + 1))
    run_last = np.concatenate((breaks, [len(duplicates) - 1]))
    best = int(np.argmax(run_last - run_first))
    first_token, last_token = int(duplicates[run_first[best]]), int(duplicates[run_last[best]])
    last_token += n - 1
    figures.longest_chars = int(chars_before[last_token + 1] - chars_before[first_token]) + (
        last_token - first_token
    )
    if figures.longest_chars < MIN_SPAN_CHARS:
        return figures
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
