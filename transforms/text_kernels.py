"""Compiled loops over a text's bytes: the per-character work of the signal pass.

The signal pass spent its time in loops Python ran one token or one sentence at
a time (issue 8: ASCII sentence settling and repetition were about half of the
signal pass in a profile). numba compiles these loops to machine code (its PyPI
wheels bundle LLVM: no C compiler needed), caches the result next to this file (or in the
user's cache when that is read-only; see _CACHE), and each process loads it once.

Words are packed into two integers (up to 16 bytes, zero-padded), so a word
list is a sorted array of pairs and a lookup is exact: no hash collisions, no
Python strings.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit

# numba caches machine code beside the source file; imported from a zip (spark-submit --py-files, a
# wheel on the path) there is no file to cache beside, and each process compiles once (~2 s) instead.
_CACHE = os.path.isfile(__file__)

WORD_BYTES = 16
# bytes.split() splits on these (ASCII whitespace): space, \t, \n, \v, \f, \r.
SEPARATORS = np.zeros(256, dtype=np.bool_)
SEPARATORS[[0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D]] = True
_NEWLINE = 0x0A
_SPACE = 0x20
APOSTROPHE = 0x0D  # language._ASCII_APOSTROPHE: the marked form of "'"


def packed_words(words: list[bytes]) -> np.ndarray:
    """(n, 2) uint64, sorted: each word of at most WORD_BYTES bytes as two big-endian integers."""
    rows = sorted(
        (int.from_bytes(word[:8].ljust(8, b"\0"), "big"), int.from_bytes(word[8:16].ljust(8, b"\0"), "big"))
        for word in words
        if 0 < len(word) <= WORD_BYTES
    )
    return np.array(rows, dtype=np.uint64).reshape(-1, 2)


@njit(cache=_CACHE, nogil=True)
def _is_word(high: np.uint64, low: np.uint64, words: np.ndarray) -> bool:
    """Whether the packed word (high, low) is a row of ``words`` (binary search)."""
    lo, hi = 0, words.shape[0]
    while lo < hi:
        middle = (lo + hi) // 2
        if words[middle, 0] < high or (words[middle, 0] == high and words[middle, 1] < low):
            lo = middle + 1
        else:
            hi = middle
    return lo < words.shape[0] and words[lo, 0] == high and words[lo, 1] == low


@njit(cache=_CACHE, nogil=True)
def _is_letter(byte: int) -> bool:
    return 0x61 <= byte <= 0x7A


@njit(cache=_CACHE, nogil=True, inline="always")  # inlined: as a call, ~10% slower
def _sentence(
    marked: np.ndarray, start: int, end: int, words: np.ndarray, longest_word: int, separators: np.ndarray
) -> tuple[int, bool]:
    """(letters, settled) of the sentence ``marked[start:end]`` (see settle_marked_sentences)."""
    tokens = hits = lone_tokens = spaces = 0
    apostrophe = False
    position = start
    while position < end:
        byte = marked[position]
        if byte == _SPACE:
            spaces += 1
        elif byte == APOSTROPHE:
            apostrophe = True
        if separators[byte]:
            position += 1
            continue
        token_start = position
        high = low = np.uint64(0)
        while position < end and not separators[marked[position]]:
            # packed as in packed_words while it fits (the first 8 bytes high, the next low)
            if position - token_start < 8:
                high |= np.uint64(marked[position]) << np.uint64(8 * (7 - position + token_start))
            elif position - token_start < WORD_BYTES:
                low |= np.uint64(marked[position]) << np.uint64(8 * (15 - position + token_start))
            position += 1
        tokens += 1
        length = position - token_start
        if length == 1 and _is_letter(marked[token_start]):
            lone_tokens += 1
        elif length <= longest_word and _is_word(high, low, words):
            hits += 1
    lone = lone_tokens
    if lone_tokens and apostrophe:
        lone = 0
        for i in range(start, end):
            if not _is_letter(marked[i]):
                continue
            before = marked[i - 1] if i > start else 0
            after = marked[i + 1] if i + 1 < end else 0
            if not (_is_letter(before) or before == APOSTROPHE) and not (_is_letter(after) or after == APOSTROPHE):
                lone += 1
    return end - start - spaces - lone, hits >= 2 and hits * 4 >= tokens - lone


@njit(cache=_CACHE, nogil=True)
def settle_marked_sentences(
    marked: np.ndarray,
    bounds: np.ndarray,
    words: np.ndarray,
    longest_word: int,
    separators: np.ndarray,
    min_evidence: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per text: letters and letters settled by function words; and the sentences left to judge.

    ``marked``: lowered ASCII texts, one after another, whose sentence ends are newlines and
    whose apostrophes are \\r (language._settle_ascii_texts's bytes); text ``t`` is
    ``marked[bounds[t]:bounds[t + 1]]``, so one call serves all the paragraphs of a reasoning.
    Per newline-separated sentence: tokens split on ASCII whitespace; hits are tokens in ``words``;
    lone letters are one-letter tokens, or, when an apostrophe is in the sentence, letters with no
    letter or apostrophe beside them; letters are the bytes less spaces and lone letters. A
    sentence is settled when hits >= 2 and 4 * hits >= tokens less lone.
    ``longest_word``: the length of the longest of ``words`` (longer tokens are not looked up).
    Returns (letters per text, settled letters per text, and per sentence left: its text, its
    index among its text's newline-separated pieces, its letters).
    """
    texts = bounds.shape[0] - 1
    most = texts  # sentences at most: one per text, one more per newline
    for i in range(marked.shape[0]):
        if marked[i] == _NEWLINE:
            most += 1
    totals = np.zeros(texts, dtype=np.int64)
    settled = np.zeros(texts, dtype=np.int64)
    left_texts = np.empty(most, dtype=np.int64)
    indices = np.empty(most, dtype=np.int64)
    letter_counts = np.empty(most, dtype=np.int64)
    left = 0
    for text in range(texts):
        stop = bounds[text + 1]
        start = bounds[text]
        index = 0
        while start <= stop:
            end = start
            while end < stop and marked[end] != _NEWLINE:
                end += 1
            letters, is_settled = _sentence(marked, start, end, words, longest_word, separators)
            if letters > 0:
                totals[text] += letters
                if letters >= min_evidence:
                    if is_settled:
                        settled[text] += letters
                    else:
                        left_texts[left] = text
                        indices[left] = index
                        letter_counts[left] = letters
                        left += 1
            index += 1
            start = end + 1
    return totals, settled, left_texts[:left], indices[:left], letter_counts[:left]


# Repetition (see repetition.py): the same hashes as its numpy form had, so figures are unchanged.
BASE = np.uint64(0x100000001B3)  # odd: invertible mod 2**64
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = BASE  # 0x100000001B3 is FNV-1a's 64-bit prime
CJK_TOKEN_LENGTH = 12  # mean token length above which a non-ASCII text is read one character a token


@njit(cache=_CACHE, nogil=True)
def _mix(value: np.uint64) -> np.uint64:
    """splitmix64's finalizer: token hashes stop being linear in the characters, so n-gram keys
    (polynomial in the token hashes, on the same base) cannot cancel out across token boundaries."""
    value = value ^ (value >> np.uint64(30))
    value = value * np.uint64(0xBF58476D1CE4E5B9)
    value = value ^ (value >> np.uint64(27))
    value = value * np.uint64(0x94D049BB133111EB)
    return value ^ (value >> np.uint64(31))


@njit(cache=_CACHE, nogil=True)
def repeated_ngrams(points: np.ndarray, is_space: np.ndarray, ascii_text: bool, n: int) -> np.ndarray:
    """[duplicate token chars, all token chars, max repeats, longest run's first token's start,
    its last token's end, its token chars plus gaps, content hash] of a text's code points, as int64.

    The content hash covers the non-space characters in order, A-Z folded to a-z (FNV-1a over code
    points, then ``_mix``; 0 when there are none): texts that differ only in whitespace and ASCII
    case hash alike. It is computed here because this loop already visits every character.

    Tokens are runs of non-space characters (``is_space`` indexed by code point, anything past
    its end not a space); a non-ASCII text whose tokens average more than CJK_TOKEN_LENGTH
    characters is read one character a token. An n-gram is a duplicate when the same n tokens
    (by hash) stand earlier; duplicate chars are the token characters covered by duplicate
    n-grams; the longest run is the longest stretch of consecutive duplicate n-gram positions.
    """
    size = points.shape[0]
    last_space = is_space.shape[0] - 1
    starts = np.empty(size, dtype=np.int64)
    ends = np.empty(size, dtype=np.int64)
    count = 0
    inside = False
    content = FNV_OFFSET
    for i in range(size):
        code = np.int64(points[i])
        space = is_space[min(code, last_space)]
        if not space:
            if 65 <= code <= 90:
                code += 32
            content = (content ^ np.uint64(code)) * FNV_PRIME
        if not space and not inside:
            starts[count] = i
            inside = True
        elif space and inside:
            ends[count] = i
            count += 1
            inside = False
    if inside:
        ends[count] = size
        count += 1
    hashes = np.empty(size, dtype=np.uint64)
    if count > 0 and not ascii_text and size / count > CJK_TOKEN_LENGTH:
        count = 0
        for i in range(size):
            if not is_space[min(np.int64(points[i]), last_space)]:
                starts[count] = i
                ends[count] = i + 1
                hashes[count] = _mix(np.uint64(points[i]) + np.uint64(1))
                count += 1
    else:
        for t in range(count):
            value = np.uint64(0)
            for i in range(ends[t] - 1, starts[t] - 1, -1):
                value = value * BASE + np.uint64(points[i]) + np.uint64(1)
            hashes[t] = _mix(value)
    figures = np.zeros(7, dtype=np.int64)
    chars_before = np.empty(count + 1, dtype=np.int64)
    chars_before[0] = 0
    for t in range(count):
        chars_before[t + 1] = chars_before[t] + ends[t] - starts[t]
    figures[1] = chars_before[count]
    if count > 0:
        figures[6] = np.int64(_mix(content))
    if count <= n:
        return figures
    windows = count - n + 1
    keys = np.empty(windows, dtype=np.uint64)
    for w in range(windows):
        value = np.uint64(0)
        for k in range(n - 1, -1, -1):
            value = value * BASE + hashes[w + k]
        keys[w] = value
    order = np.argsort(keys, kind="mergesort")  # stable: within equal keys, positions ascend
    duplicate = np.zeros(windows, dtype=np.bool_)
    most = 1
    group = 1
    for r in range(1, windows):
        if keys[order[r]] == keys[order[r - 1]]:
            duplicate[order[r]] = True
            group += 1
            most = max(most, group)
        else:
            group = 1
    figures[2] = most
    if most == 1:
        return figures
    covered = 0
    cover_first = -1
    previous = -1
    run_first = best_first = best_last = -1
    for w in range(windows):
        if not duplicate[w]:
            continue
        if cover_first < 0:
            cover_first = w
        elif w - previous > n:  # tokens [p, p + n) of duplicates at most n apart touch or overlap
            covered += chars_before[previous + n] - chars_before[cover_first]
            cover_first = w
        if previous < 0 or w - previous != 1:
            run_first = w
        if best_first < 0 or w - run_first > best_last - best_first:
            best_first, best_last = run_first, w
        previous = w
    covered += chars_before[previous + n] - chars_before[cover_first]
    figures[0] = covered
    last_token = best_last + n - 1
    figures[3] = starts[best_first]
    figures[4] = ends[last_token]
    figures[5] = chars_before[last_token + 1] - chars_before[best_first] + (last_token - best_first)
    return figures
