"""Normalization, shingles, MinHash and LSH maths: pure Python, no engine."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from sftmix.transforms.dedup import DedupParams
from sftmix.transforms.minhash import (
    MinHashSpec,
    collision_probability,
    estimated_jaccard,
    lsh_bands,
    pair_jaccard,
    permutations,
    shingles_of,
    signatures,
)
from sftmix.transforms.text_normalize import ngram_hashes, normalize_text, tokenize

SPEC = MinHashSpec(ngram=5, num_perm=128, bands=21, rows=6, max_shingles=2048, max_chars=100_000, seed=7)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 2+2?", "  what IS 2 + 2 "),
        ("The total is 1,000,000 dollars.", "the total is 1000000 dollars"),
        ("x = 2.0 and y = 3.50", "x=2 and y=3.5"),
        ("Ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "fullwidth abc"),  # NFKC
        ("Straße", "STRASSE"),  # case folding
        ("a well-known  result;\n\tproved", "A well known result, proved!"),
        ("首先，我需要弄清楚。", "首先我需要弄清楚"),
    ],
)
def test_light_edits_normalize_equal(a: str, b: str) -> None:
    assert normalize_text(a) == normalize_text(b)


@pytest.mark.parametrize(("a", "b"), [("Compute 3+4", "Compute 3-4"), ("x < 5", "x > 5"), ("3.05", "3.5")])
def test_meaningful_differences_survive(a: str, b: str) -> None:
    assert normalize_text(a) != normalize_text(b)


def test_cjk_characters_are_tokens_and_empty_text_has_none() -> None:
    tokens = tokenize(pa.array(["我需要 abc", "", None, "one"], pa.string()))
    assert tokens.lengths.tolist() == [4, 0, 0, 1]
    offsets, hashes = ngram_hashes(tokens, 3)
    # 4 tokens -> 2 trigrams; a doc shorter than n still gets one shingle; empty docs none.
    assert np.diff(offsets).tolist() == [2, 0, 0, 1]
    assert len(set(hashes.tolist())) == 3


def test_shingle_cap_bounds_long_prompts() -> None:
    long_text = " ".join(f"w{i}" for i in range(50_000))
    spec = MinHashSpec(5, 16, 4, 4, max_shingles=100, max_chars=1_000_000, seed=1)
    offsets, hashes, _, _ = shingles_of(pa.array([long_text, "a b c d e f"]), spec)
    assert np.diff(offsets).tolist() == [100, 2]


def test_lsh_bands_meet_the_recall_target() -> None:
    bands, rows = lsh_bands(0.8, 128, 0.99)
    assert (bands, rows) == (21, 6)
    assert collision_probability(0.8, bands, rows) >= 0.99
    assert collision_probability(0.3, bands, rows) < 0.02
    assert DedupParams(bands=16, rows=8).lsh() == (16, 8)
    with pytest.raises(ValueError):
        DedupParams(bands=30, rows=8)


def test_pair_jaccard_is_exact_and_signatures_estimate_it() -> None:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(3000)]
    left, right = [], []
    for _ in range(200):
        doc = rng.choices(vocab, k=60)
        edited = list(doc)
        for _ in range(rng.randint(0, 6)):
            edited[rng.randrange(60)] = rng.choice(vocab)
        left.append(" ".join(doc))
        right.append(" ".join(edited))
    left.append("")
    right.append("")
    exact = pair_jaccard(left, right, SPEC)
    # A hand-checked pair: 10 words, one replaced in the middle -> 6 5-grams each, 1 shared of 11.
    words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    changed = list(words)
    changed[4] = "z"
    assert pair_jaccard([" ".join(words)], [" ".join(changed)], SPEC)[0] == pytest.approx(1 / 11)
    assert exact[-1] == 0.0
    offsets, hashes, _, _ = shingles_of(pa.array(left[:-1] + right[:-1]), SPEC)
    a, b = permutations(SPEC.seed, SPEC.num_perm)
    sig = signatures(offsets, hashes, a, b)
    estimates = np.array([estimated_jaccard(sig[i], sig[200 + i]) for i in range(200)])
    # MinHash's standard error at k=128 is <= 0.045: the mean error must sit well inside it.
    assert np.mean(np.abs(estimates - exact[:-1])) < 0.045
    assert np.all(sig[:200][exact[:-1] == 1.0] == sig[200:][exact[:-1] == 1.0])


def test_ngram_probe_finds_benchmark_ngrams_without_false_negatives() -> None:
    from sftmix.transforms.decontaminate import DecontaminateParams, NgramProbe

    params = DecontaminateParams(ngram=3)
    probe = NgramProbe.build(["alpha beta gamma delta", "tiny"], params, 10_000)
    assert len(probe.hashes) == 2  # two 3-grams; "tiny" is shorter than n and has none
    tokens = tokenize(pa.array(["x alpha beta gamma delta y", "beta gamma epsilon"]))
    _, grams = ngram_hashes(tokens, 3)
    assert probe.prefilter(grams).sum() >= 2
    assert probe.contains(grams.view(np.int64)).tolist() == [False, True, True, False, False]
