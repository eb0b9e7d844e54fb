"""Split a completion into reasoning and answer.

R1-style models write ``<think>reasoning</think>answer``; chat templates that
open the think block in the prompt leave only ``</think>`` in the completion;
OpenAI-compatible servers return the reasoning apart (``reasoning_content``);
Sky-T1 writes ``<|begin_of_thought|>...<|end_of_thought|>`` and wraps the
answer in ``<|begin_of_solution|>...<|end_of_solution|>``. Tag pairs are
configured; the first pair found in a completion is the one used.

``think_format`` says what was found; decisions read it:
``separate`` (reasoning_content given), ``tagged`` (one open and one close),
``open_in_prompt`` (a close tag only), ``none`` (no tags), ``unclosed`` (an
open tag never closed: the model ran out of tokens), ``multiple`` (more than
one block) and ``misplaced`` (prose before the open tag, or a close before the
open).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_THINK_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
)
DEFAULT_ANSWER_WRAPPERS: tuple[tuple[str, str], ...] = (("<|begin_of_solution|>", "<|end_of_solution|>"),)


@dataclass(frozen=True)
class ThinkSplit:
    reasoning: str
    answer: str
    think_format: str
    think_blocks: int
    answer_offset: int  # where the answer starts in the completion (-1 with reasoning_content)


def split_think(
    completion: str | None,
    reasoning_content: str | None = None,
    tags: tuple[tuple[str, str], ...] = DEFAULT_THINK_TAGS,
    answer_wrappers: tuple[tuple[str, str], ...] = DEFAULT_ANSWER_WRAPPERS,
) -> ThinkSplit:
    text = completion or ""
    if reasoning_content:
        # Any think tag left in the content (a second block, a stray close) is malformed.
        blocks = max(sum(text.count(o) for o, _ in tags), sum(text.count(c) for _, c in tags))
        answer = _unwrap(text.strip(), answer_wrappers)
        return ThinkSplit(
            reasoning_content.strip(), answer, "multiple" if blocks else "separate", 1 + blocks, -1
        )
    open_tag, close_tag = next(((o, c) for o, c in tags if o in text or c in text), tags[0])
    opens, closes = text.count(open_tag), text.count(close_tag)
    first_open, first_close = text.find(open_tag), text.find(close_tag)
    if opens == 0 and closes == 0:
        return ThinkSplit("", _unwrap(text.strip(), answer_wrappers), "none", 0, 0)
    if opens == 0 and closes == 1:
        after = first_close + len(close_tag)
        return ThinkSplit(
            text[:first_close].strip(),
            _unwrap(text[after:].strip(), answer_wrappers),
            "open_in_prompt",
            1,
            after,
        )
    if opens >= 1 and closes == 0:
        return ThinkSplit(text[first_open + len(open_tag) :].strip(), "", "unclosed", opens, len(text))
    if opens == 1 and closes == 1 and first_open < first_close:
        after = first_close + len(close_tag)
        reasoning = text[first_open + len(open_tag) : first_close].strip()
        answer = _unwrap(text[after:].strip(), answer_wrappers)
        think_format = "tagged" if not text[:first_open].strip() else "misplaced"
        return ThinkSplit(reasoning, answer, think_format, 1, after)
    # Several blocks, or a close before the open: reasoning up to the last close, the rest is the answer.
    last_close = text.rfind(close_tag)
    start = first_open + len(open_tag) if 0 <= first_open < max(last_close, 0) else 0
    think_format = "multiple" if max(opens, closes) > 1 else "misplaced"
    if last_close < 0:
        return ThinkSplit(text[start:].strip(), "", think_format, opens, len(text))
    after = last_close + len(close_tag)
    return ThinkSplit(
        text[start:last_close].strip(),
        _unwrap(text[after:].strip(), answer_wrappers),
        think_format,
        max(opens, closes),
        after,
    )


def _unwrap(answer: str, wrappers: tuple[tuple[str, str], ...]) -> str:
    for open_tag, close_tag in wrappers:
        if answer.startswith(open_tag):
            answer = answer[len(open_tag) :]
            answer = answer[: -len(close_tag)] if answer.endswith(close_tag) else answer
            return answer.strip()
    return answer
