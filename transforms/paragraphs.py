"""Paragraphs of a text with their character offsets.

A paragraph is a run of text between blank lines, trimmed. Offsets index the
Python string (code points), the unit the audit page highlights with.
"""

from __future__ import annotations

import re

_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every non-blank paragraph of ``text``, in order."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _BREAK.finditer(text):
        _append_trimmed(text, position, match.start(), spans)
        position = match.end()
    _append_trimmed(text, position, len(text), spans)
    return spans


def paragraph_lengths(text: str | None) -> list[int]:
    """The length in characters of every non-blank paragraph of ``text``, in order."""
    return [end - start for start, end in paragraph_spans(text or "")]


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if stripped:
        lead = len(chunk) - len(chunk.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))


def inside_any(start: int, end: int, regions: list[tuple[int, int]]) -> bool:
    """Whether [start, end) lies wholly inside one of ``regions`` (sorted, non-overlapping)."""
    for region_start, region_end in regions:
        if region_start <= start and end <= region_end:
            return True
        if region_start >= end:
            break
    return False
