"""Unicode script histogram of letters, vectorised with numpy over code points.

Why not ``unicodedata`` per character: a Python loop over every character of
tens of MB is the slowest thing annotate could do. One lookup table of
letter ranges and ``np.searchsorted`` over the UTF-32 code points of a whole
chunk is fast enough to run on every row.

Only letters count (digits, punctuation, symbols and CJK punctuation fall in
no range). An alphabetic letter counts only inside a run of at least two
letters of its script: a lone ``π`` or ``Δ`` in an English formula is a
symbol, not Greek. Han, Kana and Hangul count per character (one character
is a word).
"""

from __future__ import annotations

import numpy as np

# (first, last, script): letter ranges only; overlaps are not allowed (sorted at import).
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x41, 0x5A, "Latin"),
    (0x61, 0x7A, "Latin"),
    (0xAA, 0xAA, "Latin"),
    (0xBA, 0xBA, "Latin"),
    (0xC0, 0xD6, "Latin"),
    (0xD8, 0xF6, "Latin"),
    (0xF8, 0x24F, "Latin"),
    (0x1E00, 0x1EFF, "Latin"),
    (0x2C60, 0x2C7F, "Latin"),
    (0xA720, 0xA7FF, "Latin"),
    (0xFF21, 0xFF3A, "Latin"),
    (0xFF41, 0xFF5A, "Latin"),
    (0x370, 0x3FF, "Greek"),
    (0x1F00, 0x1FFF, "Greek"),
    (0x400, 0x52F, "Cyrillic"),
    (0x1C80, 0x1C8F, "Cyrillic"),
    (0x2DE0, 0x2DFF, "Cyrillic"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0x531, 0x58F, "Armenian"),
    (0x5D0, 0x5F4, "Hebrew"),
    (0xFB1D, 0xFB4F, "Hebrew"),
    (0x620, 0x64A, "Arabic"),
    (0x66E, 0x6D3, "Arabic"),
    (0x6FA, 0x6FF, "Arabic"),
    (0x750, 0x77F, "Arabic"),
    (0x8A0, 0x8FF, "Arabic"),
    (0xFB50, 0xFDFF, "Arabic"),
    (0xFE70, 0xFEFF, "Arabic"),
    (0x700, 0x74F, "Syriac"),
    (0x780, 0x7BF, "Thaana"),
    (0x900, 0x97F, "Devanagari"),
    (0xA8E0, 0xA8FF, "Devanagari"),
    (0x980, 0x9FF, "Bengali"),
    (0xA00, 0xA7F, "Gurmukhi"),
    (0xA80, 0xAFF, "Gujarati"),
    (0xB00, 0xB7F, "Oriya"),
    (0xB80, 0xBFF, "Tamil"),
    (0xC00, 0xC7F, "Telugu"),
    (0xC80, 0xCFF, "Kannada"),
    (0xD00, 0xD7F, "Malayalam"),
    (0xD80, 0xDFF, "Sinhala"),
    (0xE00, 0xE7F, "Thai"),
    (0xE80, 0xEFF, "Lao"),
    (0xF00, 0xFFF, "Tibetan"),
    (0x1000, 0x109F, "Myanmar"),
    (0x10A0, 0x10FF, "Georgian"),
    (0x1C90, 0x1CBF, "Georgian"),
    (0x1100, 0x11FF, "Hangul"),
    (0x3130, 0x318F, "Hangul"),
    (0xA960, 0xA97F, "Hangul"),
    (0xAC00, 0xD7AF, "Hangul"),
    (0xD7B0, 0xD7FF, "Hangul"),
    (0xFFA0, 0xFFDC, "Hangul"),
    (0x1200, 0x139F, "Ethiopic"),
    (0x13A0, 0x13FF, "Cherokee"),
    (0x1780, 0x17FF, "Khmer"),
    (0x1800, 0x18AF, "Mongolian"),
    (0x3041, 0x309F, "Kana"),
    (0x30A1, 0x30FA, "Kana"),
    (0x30FC, 0x30FF, "Kana"),
    (0x31F0, 0x31FF, "Kana"),
    (0xFF66, 0xFF9F, "Kana"),
    (0x2E80, 0x2FDF, "Han"),
    (0x3005, 0x3005, "Han"),
    (0x3007, 0x3007, "Han"),
    (0x3021, 0x3029, "Han"),
    (0x3400, 0x4DBF, "Han"),
    (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"),
    (0x20000, 0x3134F, "Han"),
)

SCRIPTS: tuple[str, ...] = ("None",) + tuple(sorted({s for _, _, s in _RANGES}))
_SCRIPT_ID = {name: i for i, name in enumerate(SCRIPTS)}
# Scripts whose every character is a word: no two-letter run needed.
_IDEOGRAPHIC = np.array([name in ("Han", "Kana", "Hangul") for name in SCRIPTS])


def _table() -> tuple[np.ndarray, np.ndarray]:
    ranges = sorted(_RANGES)
    for (_, last, _), (first, _, _) in zip(ranges, ranges[1:], strict=False):
        if first <= last:
            raise ValueError(f"overlapping script ranges at {first:#x}")
    starts, ids = [0], [0]
    for first, last, name in ranges:
        if starts[-1] == first:  # adjacent range begins where a gap would have started
            ids[-1] = _SCRIPT_ID[name]
        else:
            starts.append(first)
            ids.append(_SCRIPT_ID[name])
        starts.append(last + 1)
        ids.append(0)
    return np.array(starts, dtype=np.uint32), np.array(ids, dtype=np.int16)


_STARTS, _IDS = _table()


def code_points(text: str) -> np.ndarray:
    """Code points of ``text``: index i is ``text[i]`` (UTF-32 has one unit per code point)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def script_ids(points: np.ndarray) -> np.ndarray:
    """Script id (index into SCRIPTS) of each code point that counts as a letter, else 0."""
    ids = _IDS[np.searchsorted(_STARTS, points, side="right") - 1]
    if len(ids) < 2:
        return ids if len(ids) == 0 or _IDEOGRAPHIC[ids[0]] else np.zeros_like(ids)
    same_prev = np.empty(len(ids), dtype=bool)
    same_prev[0] = False
    same_prev[1:] = ids[1:] == ids[:-1]
    same_next = np.empty(len(ids), dtype=bool)
    same_next[-1] = False
    same_next[:-1] = same_prev[1:]
    keep = same_prev | same_next | _IDEOGRAPHIC[ids]
    return np.where(keep, ids, 0).astype(np.int16)


def histogram(ids: np.ndarray) -> dict[str, int]:
    """Letters per script name (scripts with none are left out)."""
    counts = np.bincount(ids, minlength=len(SCRIPTS))
    return {SCRIPTS[i]: int(c) for i, c in enumerate(counts) if i and c}


def segment_counts(ids: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per segment (rows) and script (columns) letter counts; ``bounds`` are segment start offsets."""
    if len(ids) == 0 or len(bounds) == 0:
        return np.zeros((len(bounds), len(SCRIPTS)), dtype=np.int64)
    onehot_index = np.searchsorted(bounds, np.arange(len(ids)), side="right") - 1
    flat = onehot_index * len(SCRIPTS) + ids
    counts = np.bincount(flat, minlength=len(bounds) * len(SCRIPTS))
    return counts.reshape(len(bounds), len(SCRIPTS))


def script_id(name: str) -> int:
    return _SCRIPT_ID[name]
