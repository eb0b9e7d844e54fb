"""The signal pass on real long chain-of-thought: Sky-T1 candidates from ../shared/realdata.

    .venv/bin/python benchmarks/signals_realdata.py [--repeats 3]

Demo data is generated: its reasoning has ~15 paragraphs of ~450 characters a
candidate, and its sentences repeat (the fastText verdict cache hits often).
Real long CoT is written in short paragraphs: Sky-T1's candidates here hold
~140 of ~95 characters each, and few sentences repeat. This script times
the signal pass (``candidate_signals.text_signals_for_rows``: everything
annotate computes per candidate after the think split) over every candidate
of every ``novasky_skythought`` file, one process, CPU seconds, and reports
per candidate, MB/s of text, how many sentences reached fastText (verdict
cache emptied before each repeat) and fastText's share of the CPU.
Skips (exit 0) when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sftmix.transforms import candidate_signals, language, paragraphs, think_split
from sftmix.transforms.annotate import AnnotateParams, signal_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, report  # noqa: E402

SKYTHOUGHT = REPO.parent / "shared" / "realdata" / "novasky_skythought"


def load_candidates(settings: candidate_signals.SignalSettings) -> list[tuple[str, str, str]]:
    """(reasoning, answer, "en") of every candidate (the ``code`` list of each record) in the files."""
    items = []
    for path in sorted(SKYTHOUGHT.glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                for completion in json.loads(line).get("code") or []:
                    split = think_split.split_think(completion, None, settings.think_tags, settings.answer_wrappers)
                    items.append((split.reasoning or "", split.answer or "", "en"))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SKYTHOUGHT.is_dir():
        print(f"skipped: {SKYTHOUGHT} is absent")
        return
    settings = signal_settings(AnnotateParams())
    items = load_candidates(settings)
    text_bytes = sum(len(r.encode()) + len(a.encode()) for r, a, _ in items)
    paragraph_counts = [len(paragraphs.paragraph_spans(r)) for r, _, _ in items]
    candidate_signals.text_signals_for_rows(items[:20], settings)  # model load, compiled code

    identify = language.identify
    fasttext = {"calls": 0, "chars": 0, "seconds": 0.0}

    def timed_identify(model: object, text: str) -> tuple[str, float]:
        started = time.process_time()
        verdict = identify(model, text)
        fasttext["seconds"] += time.process_time() - started
        fasttext["calls"] += 1
        fasttext["chars"] += len(text)
        return verdict

    runs = []
    for repeat in range(args.repeats):
        language._VERDICTS.clear()  # every repeat judges its sentences afresh
        language.identify = timed_identify if repeat == 0 else identify  # type: ignore[assignment]
        started = time.process_time()
        candidate_signals.text_signals_for_rows(items, settings)
        runs.append(time.process_time() - started)
    language.identify = identify  # type: ignore[assignment]
    best = min(runs)
    figures = {
        "candidates": len(items),
        "text_mb": round(text_bytes / 1e6, 1),
        "mean_kb": round(text_bytes / len(items) / 1e3, 1),
        "paragraphs_per_candidate": round(sum(paragraph_counts) / len(items), 1),
        "cpu_s_runs": [round(s, 2) for s in runs],
        "ms_per_candidate": round(best / len(items) * 1000, 2),
        "mb_per_s_one_core": round(text_bytes / 1e6 / best, 2),
        "fasttext_calls_per_candidate": round(fasttext["calls"] / len(items), 1),
        "fasttext_text_share": round(fasttext["chars"] / max(1, text_bytes), 3),
        "fasttext_cpu_share": round(fasttext["seconds"] / runs[0], 3),
    }
    report("signals_realdata", figures)


if __name__ == "__main__":
    main()
