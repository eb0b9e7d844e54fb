"""MinHash signatures, LSH band keys and exact shingle Jaccard, vectorized with numpy.

Phases (STYLE.md, text-dedup): shingle (``text_normalize.ngram_hashes``) ->
signature (``signatures``) -> LSH band keys (``band_keys``); the DataFrame side
(explode keys, group into buckets, pairs, components) lives in ``dedup.py`` and
``connected_components.py``. A whole Arrow batch is one numpy computation: no
Python loop over rows or permutations.

Permutations are the multiply-add family ``(a * x + b) mod 2**32`` (``a`` odd)
over the upper 32 bits of each shingle's 64-bit hash, seeded, so signatures are
the same on every engine and every run. Computing them as a
``(num_perm, shingles)`` block and reducing along the contiguous axis measured
0.12 s per million shingles at 128 permutations on one core here, 6x faster
than the transposed layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sftmix.transforms.decontaminate import NgramProbe
from sftmix.transforms.text_normalize import mix64, ngram_hashes, text_hashes, tokenize

_EMPTY = np.uint32(0xFFFFFFFF)
# Shingles per numpy block: (num_perm x this) uint32 stays within a few MB, in cache.
_BLOCK_SHINGLES = 16384


@dataclass(frozen=True)
class MinHashSpec:
    """What a fingerprint is made of; derived from ``DedupParams`` by the stage."""

    ngram: int
    num_perm: int
    bands: int
    rows: int
    max_shingles: int
    max_chars: int
    seed: int


def lsh_bands(threshold: float, num_perm: int, recall_at_threshold: float) -> tuple[int, int]:
    """Bands x rows: the most selective split whose collision chance at ``threshold`` stays >= the target.

    A pair of Jaccard ``s`` shares at least one band with probability ``1 - (1 - s**r)**b``. More rows
    per band cut the candidate pairs below the threshold (the exact-Jaccard check's work); this
    takes the largest ``r`` that still catches a pair exactly at the threshold with the target
    probability (pairs above it are caught more often). 128 permutations at 0.8 give 21 x 6:
    0.998 at J=0.8, 0.25 at J=0.5, 0.002 at J=0.2.
    """
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands < 1:
            break
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall_at_threshold:
            best = (bands, rows)
    return best


def collision_probability(jaccard: float, bands: int, rows: int) -> float:
    return 1.0 - (1.0 - jaccard**rows) ** bands


def permutations(seed: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, 2**32, num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    b = rng.integers(0, 2**32, num_perm, dtype=np.uint64).astype(np.uint32)
    return a, b


def signatures(offsets: np.ndarray, shingles: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash signatures; a doc without shingles gets all 0xFFFFFFFF."""
    n_docs = len(offsets) - 1
    out = np.full((n_docs, len(a)), _EMPTY, dtype=np.uint32)
    x = (shingles >> np.uint64(32)).astype(np.uint32)
    counts = np.diff(offsets)
    docs = np.flatnonzero(counts > 0)
    # One buffer reused for every block: a fresh 8 MB array per block cost more in page faults
    # than the arithmetic (measured 10x slower).
    buffer = np.empty((len(a), max(_BLOCK_SHINGLES, int(counts.max(initial=0)))), dtype=np.uint32)
    first = 0
    while first < len(docs):
        # Grow the block doc by doc up to _BLOCK_SHINGLES (at least one doc).
        limit = offsets[docs[first]] + max(_BLOCK_SHINGLES, counts[docs[first]])
        last = int(np.searchsorted(offsets[docs + 1], limit, side="right"))
        last = max(last, first + 1)
        block = docs[first:last]
        lo, hi = offsets[block[0]], offsets[block[-1] + 1]
        values = buffer[:, : hi - lo]
        np.multiply(a[:, None], x[None, lo:hi], out=values)
        values += b[:, None]
        out[block] = np.minimum.reduceat(values, offsets[block] - lo, axis=1).T
        first = last
    return out


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) int64 keys: band index and its rows hashed together (equal key = same band)."""
    n_docs = sig.shape[0]
    keys = np.empty((n_docs, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(n_docs, band + 1, dtype=np.uint64)
            for row in range(rows):
                acc = mix64(acc ^ sig[:, band * rows + row].astype(np.uint64))
            keys[:, band] = acc
    return keys.view(np.int64)


def shingles_of(texts: pa.Array, spec: MinHashSpec) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """(offsets, shingle hashes, normalized texts, token counts) of a batch."""
    tokens = tokenize(texts, spec.max_chars)
    offsets, hashes = ngram_hashes(tokens, spec.ngram, spec.max_shingles)
    return offsets, hashes, tokens.normalized, tokens.lengths


def fingerprint_batch(
    texts: list[str | None], spec: MinHashSpec, probe: NgramProbe | None = None
) -> dict[str, np.ndarray]:
    """norm_hash, n_tokens and LSH band keys of a batch of texts (a process-pool work item).

    With a (light) ``probe``, also the prompt's benchmark-sized n-grams that pass the probe's
    prefilter (``probe_offsets``, ``probe_hashes``), from the same tokens: decontamination costs
    no second pass over the text.
    """
    tokens = tokenize(pa.array(texts, pa.string()), spec.max_chars)
    offsets, hashes = ngram_hashes(tokens, spec.ngram, spec.max_shingles)
    a, b = permutations(spec.seed, spec.num_perm)
    sig = signatures(offsets, hashes, a, b)
    out = {
        "norm_hash": text_hashes(tokens.normalized),
        "n_tokens": tokens.lengths.astype(np.int32),
        "keys": band_keys(sig, spec.bands, spec.rows),
        "has_keys": np.diff(offsets) > 0,
    }
    if probe is not None:
        g_offsets, grams = ngram_hashes(tokens, probe.n, probe.max_ngrams)
        doc = np.repeat(np.arange(len(texts)), np.diff(g_offsets))
        # A text shorter than n got one shorter "n-gram": not comparable with the benchmark's.
        keep = (tokens.lengths[doc] >= probe.n) & probe.prefilter(grams)
        out["probe_offsets"] = np.concatenate([[0], np.cumsum(np.bincount(doc[keep], minlength=len(texts)))])
        out["probe_hashes"] = grams[keep].view(np.int64)
    return out


def pair_jaccard(left: list[str | None], right: list[str | None], spec: MinHashSpec) -> np.ndarray:
    """Exact Jaccard of the shingle sets of ``left[i]`` and ``right[i]`` (0.0 when both are empty)."""
    n = len(left)
    if n >= 1 << 24:
        raise ValueError("pair_jaccard takes at most 2**24 pairs per call")
    off_l, h_l, _, _ = shingles_of(pa.array(left, pa.string()), spec)
    off_r, h_r, _, _ = shingles_of(pa.array(right, pa.string()), spec)
    keys_l = _unique_pair_keys(off_l, h_l)
    keys_r = _unique_pair_keys(off_r, h_r)
    size_l = np.bincount((keys_l >> _PAIR_SHIFT).astype(np.int64), minlength=n)
    size_r = np.bincount((keys_r >> _PAIR_SHIFT).astype(np.int64), minlength=n)
    merged = np.sort(np.concatenate([keys_l, keys_r]))
    both = merged[1:][merged[1:] == merged[:-1]]
    inter = np.bincount((both >> _PAIR_SHIFT).astype(np.int64), minlength=n)
    union = size_l + size_r - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


# One sortable uint64 per (pair, shingle): pair index in the top 24 bits, 40 bits of the shingle hash
# below (two shingles of one capped doc share 40 bits with odds ~1e-6: harmless for a 0.8 threshold).
_PAIR_SHIFT = np.uint64(40)


def _unique_pair_keys(offsets: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    pair = np.repeat(np.arange(len(offsets) - 1, dtype=np.uint64), np.diff(offsets))
    keys = np.sort((pair << _PAIR_SHIFT) | (hashes >> np.uint64(24)))
    # np.unique (hash-based in numpy 2.4) measured 8x slower than sort + mask here.
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of equal signature slots: the MinHash estimate of Jaccard (used by tests)."""
    return float(np.mean(sig_a == sig_b)) if len(sig_a) else math.nan
