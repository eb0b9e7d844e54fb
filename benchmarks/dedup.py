"""Near-duplicate removal at scale: N short prompts with known near duplicates, on the embedded engine.

    .venv/bin/python benchmarks/dedup.py --rows 100000

Generates N prompts of 50-90 real words (~440 bytes, the size of the peer
figure's prompts: datatrove, 1M short prompts, 437 MB, 430 s, recall 0.991,
precision 0.983), of which ~10% are near copies of another prompt (one or
two small edits) and ~5% are hard negatives (several scattered edits, Jaccard
well under the threshold); ~20% open with one of a few shared instruction
templates, so unrelated prompts do share shingles. Ground truth is measured,
not assumed: every edited prompt's exact 5-gram Jaccard to its original is
computed, and it belongs to its original's cluster iff that is >= 0.8.

Runs the stage's own phases (fingerprint, exact keepers, LSH pairs, Jaccard
check, connected components with scratch tables, representatives) and
prints seconds, rows/s, peak RSS, bytes of the intermediate (scratch)
tables, and pair precision / recall of the clustering: a pair of prompts is
predicted when they land in one component, true when they share a
ground-truth cluster (all counted with aggregates, nothing collected).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from sftmix.jobs.dedup import Scratch, check_node_ids, near_duplicate_clusters
from sftmix.jobs.demo import words
from sftmix.jobs.runtime.context import open_runtime
from sftmix.transforms import process_pool
from sftmix.transforms.dedup import DedupParams, exact_keepers, fingerprint, with_node_ids
from sftmix.transforms.minhash import pair_jaccard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, WORK, peak_rss_gb, raw_bytes, report  # noqa: E402

TEMPLATES = [
    "Solve the following problem and explain every step of your reasoning carefully",
    "Answer the question below and put the final answer in a box at the end",
    "Read the passage and then answer the question that follows it",
    "Write a short story for children in which the main character learns a lesson",
    "You are a helpful assistant that answers questions about the world",
    "Please think step by step before you give the final answer to this question",
    "Translate the following text into French and keep the meaning exact",
    "Find the value of the unknown quantity described in the following situation",
]


def _vocabulary() -> np.ndarray:
    names = [n for n in dir(words) if n.isupper() and isinstance(getattr(words, n), tuple)]
    vocab = sorted({w for n in names for w in getattr(words, n) if " " not in w})
    return np.array(vocab, dtype=object)


def _edit(rng: random.Random, tokens: list[str], vocab: np.ndarray, edits: int, scattered: bool) -> list[str]:
    out = list(tokens)
    for _ in range(edits):
        kind = rng.random()
        if not scattered and kind < 0.3:  # append or prepend: touches few shingles
            word = str(vocab[rng.randrange(len(vocab))])
            out = out + [word] if rng.random() < 0.5 else [word] + out
        elif kind < 0.85 or len(out) < 10:
            out[rng.randrange(len(out))] = str(vocab[rng.randrange(len(vocab))])
        else:
            del out[rng.randrange(len(out))]
    return out


def generate(rows: int, seed: int, out: Path) -> dict[str, int]:
    """Write prompts (source, prompt_id, prompt, n_correct, n_selected, gt_cluster) as Parquet shards."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    vocab = _vocabulary()
    ids: list[str] = []
    texts: list[str] = []
    parents: list[int] = []  # index of the original for edited prompts, -1 otherwise
    hard: list[bool] = []
    while len(texts) < rows:
        roll = rng.random()
        if roll < 0.15 and len(texts) > 100:
            parent = rng.randrange(len(texts))
            while parents[parent] >= 0:  # edit an original, not a copy
                parent = rng.randrange(len(texts))
            is_hard = roll < 0.05
            tokens = texts[parent].split(" ")
            edits = rng.randint(4, 7) if is_hard else rng.choice([1, 1, 1, 2])
            texts.append(" ".join(_edit(rng, tokens, vocab, edits, scattered=is_hard)))
            parents.append(parent)
            hard.append(is_hard)
        else:
            length = int(nrng.integers(50, 91))
            body = " ".join(vocab[nrng.integers(0, len(vocab), length)])
            if rng.random() < 0.2:
                body = rng.choice(TEMPLATES) + " " + body
            texts.append(body)
            parents.append(-1)
            hard.append(False)
        ids.append(f"p{len(ids):08d}")
    edited = [i for i, p in enumerate(parents) if p >= 0]
    spec = DedupParams().spec(seed)
    jac = np.concatenate([
        pair_jaccard([texts[parents[i]] for i in chunk], [texts[i] for i in chunk], spec)
        for chunk in (edited[k : k + 20000] for k in range(0, len(edited), 20000))
    ]) if edited else np.zeros(0)
    gt = np.arange(rows)
    near = np.zeros(rows, dtype=bool)
    for i, j in zip(edited, jac, strict=True):
        if j >= 0.8:
            gt[i] = parents[i]
            near[i] = True
    shards = 8
    out.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        sl = slice(shard * rows // shards, (shard + 1) * rows // shards)
        table = pa.table({
            "source": pa.array(["bench"] * (sl.stop - sl.start)),
            "prompt_id": pa.array(ids[sl]),
            "prompt": pa.array(texts[sl]),
            "n_correct": pa.array(nrng.integers(0, 5, sl.stop - sl.start).astype(np.int32)),
            "n_selected": pa.array(np.ones(sl.stop - sl.start, dtype=np.int32)),
            "gt_cluster": pa.array(np.array(ids, dtype=object)[gt[sl]].tolist()),
        })
        pq.write_table(table, out / f"part-{shard}.parquet")
    return {
        "near_copies_ge_0_8": int(near.sum()),
        "edited_below_0_8": int(len(edited) - near.sum()),
        "hard_negatives": int(sum(hard)),
    }


def _pool_cpu_seconds() -> float:
    """CPU seconds of the live UDF pool workers (children of the forkserver, so not in RUSAGE_CHILDREN)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pool in list(process_pool._pools.values()):  # noqa: SLF001 - a benchmark may look inside
        for process in list(getattr(pool, "_processes", {}).values()):
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                continue
    return total


def pair_scores(labelled: Any) -> dict[str, float]:
    """Cluster-pair precision and recall, from group sizes only."""
    def pairs(*cols: str) -> int:
        sizes = labelled.groupBy(*cols).agg(F.count("*").alias("n"))
        value = sizes.agg(F.sum(F.col("n") * (F.col("n") - 1) / 2)).collect()[0][0]
        return int(value or 0)

    predicted, true, both = pairs("component"), pairs("gt_cluster"), pairs("component", "gt_cluster")
    return {
        "predicted_pairs": predicted,
        "true_pairs": true,
        "precision": round(both / predicted, 4) if predicted else 1.0,
        "recall": round(both / true, 4) if true else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--keep", action="store_true", help="reuse generated prompts from an earlier run")
    parser.add_argument("--generate-only", action="store_true", help="write the prompts and stop")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args()

    data = WORK / f"dedup-{args.rows}"
    lake = WORK / "dedup-lake"
    truth: dict[str, int] = {}
    if not (args.keep and data.exists()):
        shutil.rmtree(data, ignore_errors=True)
        started = time.perf_counter()
        truth = generate(args.rows, args.seed, data)
        print(f"generated {args.rows} prompts in {time.perf_counter() - started:.1f} s: {truth}", flush=True)
    if args.generate_only:
        return
    shutil.rmtree(lake, ignore_errors=True)
    overrides: dict[str, Any] = {"storage.root": str(lake)}
    for pair in args.set:
        key, _, value = pair.partition("=")
        overrides[key] = int(value) if value.isdigit() else value
    figures: dict[str, Any] = {"rows": args.rows, "input_mb": round(raw_bytes(data) / 1e6, 1), **truth}
    with open_runtime(str(REPO / "conf" / "base.yaml"), overrides) as rt:
        cfg, seed = rt.config.dedup, rt.config.seed
        scratch = Scratch(rt, "bench-dedup")
        details: dict[str, Any] = {}
        try:
            started = time.perf_counter()
            texts = with_node_ids(rt.spark.read.parquet(str(data)).drop("gt_cluster"))
            fp = scratch(fingerprint(texts, cfg, seed))
            fingerprint_s = time.perf_counter() - started
            exact = scratch(exact_keepers(fp, seed))
            keepers = exact.where(F.col("node") == F.col("exact_keeper"))
            clusters = scratch(near_duplicate_clusters(keepers, texts, cfg, seed, scratch, details))
            seconds = time.perf_counter() - started
            scratch_bytes = sum(raw_bytes(Path(p)) for p in scratch.paths)
            check_node_ids(fp)
            truth_frame = rt.spark.read.parquet(str(data)).select("source", "prompt_id", "gt_cluster")
            labelled = exact.select("source", "prompt_id", "node", "exact_keeper").join(
                clusters.select(F.col("node").alias("exact_keeper"), "component"), "exact_keeper"
            ).join(truth_frame, ["source", "prompt_id"])
            scores = pair_scores(labelled)
            removed = clusters.where(F.col("node") != F.col("representative")).count()
        finally:
            scratch.drop()
        pool_cpu = _pool_cpu_seconds()
        process_pool.shutdown()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures.update(
        engine="sail",
        seconds=round(seconds, 1),
        # CPU seconds of the run (engine threads + pool workers; generation too unless --keep): on a
        # shared machine the wall time depends on the others' load, this does not.
        cpu_s=round(usage.ru_utime + usage.ru_stime + pool_cpu, 1),
        load_avg_1m=round(os.getloadavg()[0], 1),
        rows_per_s=round(args.rows / seconds),
        fingerprint_s=round(fingerprint_s, 1),
        near_duplicates_removed=removed,
        scratch_mb=round(scratch_bytes / 1e6, 1),
        materialize_s=scratch.seconds,
        peak_rss_gb=round(peak_rss_gb(), 2),
        **details,
        **scores,
    )
    report(f"dedup-{args.rows}", figures)


if __name__ == "__main__":
    main()
