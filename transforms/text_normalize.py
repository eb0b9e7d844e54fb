"""Text normalization and word n-gram hashing, vectorized over Arrow arrays.

Exact dedup, MinHash and benchmark decontamination must see the same text the
same way, so they share this module. Normalization: cut to ``max_chars``,
NFKC, lower case plus the two case-folding extras (``ß``, final sigma), number
formatting (``1,000`` -> ``1000``, ``3.50`` -> ``3.5``, ``2.0`` -> ``2``),
math operators kept as tokens (``3+4`` and ``3-4`` are different problems),
every other punctuation mark and whitespace run folded to one space. Each Han,
Hiragana and Katakana character becomes its own token, so word n-grams over
Chinese or Japanese are character n-grams, with no language switch.

Everything runs on whole Arrow arrays (RE2 kernels in pyarrow) plus numpy; the
only per-row Python is the rare row whose numbers need a rewrite that RE2 can
not express, and one xxhash call per row for the exact-match hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

# Kept as tokens: they carry the meaning of a math prompt. A hyphen between letters is punctuation.
_OPERATORS = r"+\-*/=<>^"
_THOUSANDS = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,])")
_NEEDS_PYTHON = r"\d,\d{3}"
_SPECIAL = r"[ßς]|\d[,.]\d|\pL-\pL"
# Operators and each CJK character stand alone; everything else that is not a letter, mark or digit separates.
_OWN_TOKEN = rf"([{_OPERATORS}\p{{Han}}\p{{Hiragana}}\p{{Katakana}}])"
_SEPARATORS = rf"[^\pL\pM\pN{_OPERATORS} ]+"

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_COMBINE = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Tokenized:
    """Tokens of a batch of texts as one flat array: doc ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray  # int64, n_docs + 1
    hashes: np.ndarray  # uint64 per token occurrence
    normalized: pa.Array  # the normalized texts (tokens joined by one space)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def normalize_array(texts: pa.Array, max_chars: int = 100_000) -> pa.Array:
    """Normalize every text of an Arrow string array (null -> empty string)."""
    arr = pc.fill_null(texts.cast(pa.string()), "")
    if len(arr) and pc.max(pc.binary_length(arr)).as_py() > max_chars:
        arr = pc.utf8_slice_codeunits(arr, 0, max_chars)
    arr = pc.utf8_lower(pc.utf8_normalize(arr, "NFKC"))
    # The rewrites below touch few rows: run them on those rows only (each full pass costs ~1 s per 1M).
    special = pc.match_substring_regex(arr, _SPECIAL)
    if pc.any(special).as_py():
        arr = pc.replace_with_mask(arr, special, _rewrite_special(arr.filter(special)))
    arr = pc.replace_substring_regex(arr, _OWN_TOKEN, r" \1 ")
    arr = pc.replace_substring_regex(arr, _SEPARATORS, " ")
    arr = pc.replace_substring_regex(arr, "  +", " ")
    return pc.utf8_trim(arr, " ")


def _rewrite_special(arr: pa.Array) -> pa.Array:
    """Case-folding extras, number formatting and hyphens between letters."""
    arr = pc.replace_substring(arr, "ß", "ss")
    arr = pc.replace_substring(arr, "ς", "σ")
    arr = _fix_thousands(arr)
    # Trailing zeros of decimals: "2.0" -> "2", "3.50" -> "3.5" (the last group keeps the non-digit after it).
    arr = pc.replace_substring_regex(arr, r"(\d)\.0+(\D|$)", r"\1\2")
    arr = pc.replace_substring_regex(arr, r"(\d\.\d*[1-9])0+(\D|$)", r"\1\2")
    for _ in range(2):  # "a-b-c": non-overlapping matches need a second pass
        arr = pc.replace_substring_regex(arr, r"(\pL)-(\pL)", r"\1 \2")
    return arr


def _fix_thousands(arr: pa.Array) -> pa.Array:
    """Drop thousands separators; RE2 cannot rewrite inside a match, so the few such rows go to Python."""
    mask = pc.match_substring_regex(arr, _NEEDS_PYTHON)
    if not pc.any(mask).as_py():
        return arr
    values = arr.to_pylist()
    for i in np.flatnonzero(mask.to_numpy(zero_copy_only=False)):
        values[i] = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), values[i])
    return pa.array(values, pa.string())


def normalize_text(text: str, max_chars: int = 100_000) -> str:
    """One text, normalized exactly as the array path does (tests, the driver)."""
    return normalize_array(pa.array([text], pa.string()), max_chars)[0].as_py()


def tokenize(texts: pa.Array, max_chars: int = 100_000) -> Tokenized:
    """Normalize and split into tokens, each token replaced by a stable 64-bit hash."""
    normalized = normalize_array(texts, max_chars)
    lists = pc.split_pattern(normalized, " ")
    flat = pc.list_flatten(lists)
    offsets = lists.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    # Empty strings split into one empty token: count them out.
    empty = pc.equal(pc.utf8_length(normalized), 0).to_numpy(zero_copy_only=False)
    if empty.any():
        keep = np.ones(len(flat), dtype=bool)
        keep[offsets[:-1][empty]] = False
        flat = flat.filter(pa.array(keep))
        lengths = np.diff(offsets) - empty.astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    encoded = pc.dictionary_encode(flat)
    vocab = encoded.dictionary.to_pylist()
    vocab_hashes = np.fromiter(
        (xxhash.xxh64_intdigest(w.encode()) for w in vocab), dtype=np.uint64, count=len(vocab)
    )
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return Tokenized(offsets, vocab_hashes[indices] if len(indices) else np.zeros(0, np.uint64), normalized)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, vectorized: turns a combination of hashes into a well-mixed hash."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def ngram_hashes(tokens: Tokenized, n: int, max_per_doc: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram, grouped by doc: returns (offsets, uint64 hashes).

    A doc with fewer than ``n`` tokens (but at least one) gets one n-gram made of all its tokens,
    so a short prompt still has a fingerprint. ``max_per_doc`` keeps the first n-grams of a doc:
    it bounds memory for very long prompts.
    """
    h, offsets = tokens.hashes, tokens.offsets
    total = len(h)
    lengths = np.diff(offsets)
    n_docs = len(lengths)
    if total == 0:
        return np.zeros(n_docs + 1, np.int64), np.zeros(0, np.uint64)
    doc = np.repeat(np.arange(n_docs), lengths)
    pos = np.arange(total)
    within = pos - offsets[:-1][doc]
    valid = pos + n <= offsets[1:][doc]
    if max_per_doc is not None:
        valid &= within < max_per_doc
    starts = pos[valid]
    short_docs = np.flatnonzero((lengths > 0) & (lengths < n))
    short_starts = offsets[:-1][short_docs]
    with np.errstate(over="ignore"):
        # Contiguous shifted slices over the whole batch, then one gather: ~3x faster than gathering per k.
        width = total - n + 1
        g = h[:width].copy() if width > 0 else np.zeros(0, np.uint64)
        for k in range(1, n if width > 0 else 1):
            g *= _COMBINE
            g += h[k : k + width]
        g = g[starts]
        if len(short_docs):
            gs = h[short_starts]
            for k in range(1, n):
                inside = k < lengths[short_docs]
                gs = np.where(inside, gs * _COMBINE + h[np.minimum(short_starts + k, total - 1)], gs)
            order = np.argsort(np.concatenate([starts, short_starts]), kind="stable")
            g = np.concatenate([g, gs])[order]
            starts = np.concatenate([starts, short_starts])[order]
        g = mix64(g ^ np.uint64(n))
    counts = np.bincount(doc[starts], minlength=n_docs)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), g


def text_hashes(normalized: pa.Array) -> np.ndarray:
    """xxhash64 of each normalized text, as signed int64 (Spark's bigint)."""
    values = normalized.to_pylist()
    out = np.fromiter((xxhash.xxh64_intdigest(v.encode()) for v in values), dtype=np.uint64, count=len(values))
    return out.view(np.int64)
