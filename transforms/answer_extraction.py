"""Find the final answer in a completion: cheap string work, no parser, no model.

Order of preference, as graders of R1-style data read an answer: the last
``\\boxed{...}`` or ``\\fbox{...}`` (braces nested to any depth), then the
last "final answer is ..." / "the answer is ..." / "Answer: ..." phrase, then
a short answer that is the whole final segment ("42", "$\\frac{1}{2}$").
For multiple-choice references a letter is read from those places and from a
last standalone "(C)". Offsets are character positions in the text searched,
so a reject span can point at the answer (issue 11).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_CLOSE = "</think>"

# A one-line final segment without prose is the answer itself ("42", "$x=3$", a matrix).
WHOLE_ANSWER_MAX_CHARS = 300

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)\b")
_PHRASE = re.compile(
    r"(?:final\s+answer\s*(?:is|:)|the\s+answer\s+is|\banswer\s*:|\banswer\s+is)\s*:?\s*",
    re.IGNORECASE,
)
# A phrase's answer ends at a line break or at a sentence end (". " or "." at the end), not at "3.5".
_PHRASE_END = re.compile(r"\n|\.(?:\s|$)")
_CHOICE_IN_TEXT = re.compile(r"\(([A-J])\)")
_CHOICE_BARE = re.compile(r"^\(?\s*([A-J])\s*\)?(?:[.:)]|\s|$)")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
_MATH_REGION = re.compile(r"\$\$?([^$]+)\$\$?|\\\((.+?)\\\)")
_CONNECTORS = {"and", "or", "for", "part", "parts", "a", "b", "c", "d", "i", "ii", "iii", "iv"}
_MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


@dataclass(frozen=True)
class Extraction:
    """An answer found in ``text``: ``text[start:end]`` holds it (before cleaning)."""

    answer: str
    start: int
    end: int
    method: str  # boxed | phrase | choice | whole


def final_segment(completion: str | None) -> str:
    """The text after the last ``</think>``, or the whole completion when there is none."""
    if not completion:
        return ""
    cut = completion.rfind(THINK_CLOSE)
    return completion[cut + len(THINK_CLOSE) :] if cut >= 0 else completion


def boxes(text: str) -> list[Extraction]:
    """Every complete ``\\boxed{...}``/``\\fbox{...}`` (or ``\\boxed 5``), in order; cut-off ones are not."""
    found = []
    for match in _BOX_COMMAND.finditer(text):
        position = match.end()
        while position < len(text) and text[position] == " ":
            position += 1
        if position < len(text) and text[position] == "{":
            close = _matching_brace(text, position)
            if close is not None:
                found.append(Extraction(text[position + 1 : close].strip(), position + 1, close, "boxed"))
        elif position < len(text) and position > match.end():
            # `\boxed 5`: the argument is one token up to the next space or `$`.
            token = re.match(r"[^\s$]+", text[position:])
            if token:
                found.append(Extraction(token.group(0), position, position + token.end(), "boxed"))
    return found


def last_boxed(text: str) -> Extraction | None:
    """The last box; boxes just before it that only connectors separate ("and", ",") join it.

    Multi-answer problems end with ``\\boxed{-2} \\quad\\text{and}\\quad \\boxed{1}``: the answer is both.
    A box followed by prose ("first \\boxed{3}, but correcting: \\boxed{4}") stays a superseded box.
    """
    found = boxes(text)
    if not found:
        return None
    joined = [found[-1]]
    for earlier in reversed(found[:-1]):
        if not _only_connectors(text[earlier.end + 1 : joined[0].start - 1]):
            break
        joined.insert(0, earlier)
    if len(joined) == 1:
        return joined[0]
    return Extraction(", ".join(b.answer for b in joined), joined[0].start, joined[-1].end, "boxed")


def _only_connectors(gap: str) -> bool:
    # The gap starts after a box's closing brace and ends at the next `\boxed`/`\fbox`.
    words = re.sub(r"\\(?:text|mbox|textbf|mathrm)\s*\{([^{}]*)\}", r" \1 ", gap)
    words = re.sub(r"\\[a-zA-Z]+|\\[,;:! ()\[\]]|[$,;.()\s]", " ", words)
    return all(w.lower() in _CONNECTORS for w in words.split()) and len(gap) <= 80


def _matching_brace(text: str, open_at: int) -> int | None:
    depth = 0
    position = open_at
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2  # `\{` and `\}` are literal braces in LaTeX
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return None


def last_phrase(text: str) -> Extraction | None:
    """The answer after the last "final answer is" / "answer:" phrase, up to the line or sentence end."""
    matches = list(_PHRASE.finditer(text))
    for match in reversed(matches):
        start = match.end()
        end_match = _PHRASE_END.search(text, start)
        end = end_match.start() if end_match else len(text)
        candidate = text[start:end]
        cleaned = strip_math_delimiters(candidate.strip().rstrip(".").strip().strip("*").strip())
        if cleaned:
            lead = len(candidate) - len(candidate.lstrip())
            return Extraction(cleaned, start + lead, start + len(candidate.rstrip()), "phrase")
    return None


def strip_math_delimiters(text: str) -> str:
    """``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]`` -> ``x`` (repeatedly, outermost first)."""
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for left, right in _MATH_DELIMITERS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left) : len(text) - len(right)].strip()
                changed = True
                break
    return text


def unwrap_text(text: str) -> str:
    """``\\text{C}`` -> ``C`` (also textbf, mathrm, mbox), so letters and words compare as plain text."""
    previous = None
    while previous != text:
        previous = text
        text = _TEXT_WRAPPER.sub(lambda m: m.group(1), text)
    return text


def choice_letter(text: str | None) -> str | None:
    """The option letter a short answer names: "C", "(C)", "\\text{(C)}", "C) 12" -> "C"."""
    if not text:
        return None
    cleaned = unwrap_text(strip_math_delimiters(text)).strip().strip("*").strip()
    match = _CHOICE_BARE.match(cleaned)
    return match.group(1) if match else None


def extract_final_answer(text: str | None) -> Extraction | None:
    """The final answer of an answer text: the last box or answer phrase, else a short whole segment."""
    if not text:
        return None
    box = last_boxed(text)
    phrase = last_phrase(text)
    if phrase is not None and _is_prose(phrase.answer):
        phrase = None  # "Final Answer: The largest $n$ is 34." is a sentence: Math-Verify scans it
    if box is not None and (phrase is None or phrase.start < box.end):
        return box
    if phrase is not None:
        return phrase
    return _whole_answer(text)


def _whole_answer(text: str) -> Extraction | None:
    # One line without prose is the answer; "Special matrix: $M$" is the one math region in it.
    stripped = text.strip()
    if not stripped or len(stripped) > WHOLE_ANSWER_MAX_CHARS or "\n" in stripped or _is_prose(stripped):
        return None
    regions = list(_MATH_REGION.finditer(text))
    if len(regions) > 1:
        return None
    if len(regions) == 1 and strip_math_delimiters(stripped) != stripped.strip("$"):
        region = regions[0]
        inner = region.group(1) if region.group(1) is not None else region.group(2)
        return Extraction(inner.strip(), region.start(), region.end(), "whole") if inner.strip() else None
    start = text.find(stripped)
    cleaned = strip_math_delimiters(stripped.rstrip(".").strip())
    return Extraction(cleaned, start, start + len(stripped), "whole") if cleaned else None


def _is_prose(text: str) -> bool:
    # "5 cm", "x = 3", "twenty apples" are answers; "I think it is $6/2$" is prose for Math-Verify to scan.
    outside_math = re.sub(r"\$[^$]*\$|\\\(.*?\\\)|\\[a-zA-Z]+", " ", text)
    return len(re.findall(r"[A-Za-z]{2,}", outside_math)) > 2


def extract_choice(text: str | None) -> Extraction | None:
    """A multiple-choice letter: from the boxed/phrase/whole answer, else the last standalone "(C)"."""
    if not text:
        return None
    found = extract_final_answer(text)
    if found is not None:
        letter = choice_letter(found.answer)
        if letter:
            return Extraction(letter, found.start, found.end, "choice")
    last = None
    for match in _CHOICE_IN_TEXT.finditer(text):
        last = match
    if last is not None:
        return Extraction(last.group(1), last.start(), last.end(), "choice")
    return None
