"""Code in a text: fenced blocks, indented or bare code-like lines, and a language guess.

Prose in reasoning is full of ``x = 3`` and ``f(x)``: those are math, not
code. A line counts as code only on a strong sign: a statement keyword at its
start followed by code shape (``def f(``, ``for i in range(n):``,
``#include``), or a line ending in ``;``, ``{`` or ``}`` that holds no LaTeX
command. Every line of a fenced block counts. Outside fences, a run of lines
(at most one blank line apart) is an unfenced code block when it holds at
least three code lines, or is indented like Markdown code (two or more lines)
and holds at least one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\n`]*)$", re.MULTILINE)
# The line patterns below start with a newline, not "^", and run over "\n" + text: the regex engine
# then jumps from newline to newline instead of trying every character as a line start, and match
# offsets in the padded text are line-start offsets in the original text (a third of annotate's
# code-detection time). Their ends are one past, so ``match.end() - 1``.
CODE_LINE = re.compile(
    r"\n(?:[ \t]*(?:def \w+\(|class \w+[(:]|import \w|from [\w.]+ import |#include\b|return\b[^\n]*[^.\s]$|"
    r"elif\b[^\n]*:$|else:$|for \w+(?:, ?\w+)* in [^\n]*:$|for ?\(|"
    r"(?:if|while) [^\n]*(?:==|!=|<=|>=|[<>(]| not | in | is )[^\n]*:$|try:$|except\b[^\n]*:$|"
    r"public |private |static |func \w|fn \w|let mut |"
    r"const \w+ ?=|var \w+ ?=|print\(|console\.log|System\.out|std::)[^\n]*$"
    # a line ending in ; { or } that carries no LaTeX command (\end{aligned} is math)
    r"|(?![^\n]*\\[a-zA-Z])[^\n]*[;{}][ \t]*$)",
    re.MULTILINE,
)
# Markdown indented code: 4+ spaces or a tab, not a nested list item.
_INDENTED_LINE = re.compile(r"\n(?: {4}|\t)[ \t]*(?![-*+] |\d+[.)] )\S[^\n]*$", re.MULTILINE)
_NON_BLANK_LINE = re.compile(r"\n[ \t]*\S")
MIN_RUN_LINES = 3

# Keyword votes for the language guess; the fence info string wins when present.
_LANGUAGE_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("python", re.compile(r"^\s*(?:def |import |from \S+ import |elif |print\()|self\.|:\s*$", re.MULTILINE)),
    ("cpp", re.compile(r"#include|std::|cout\s*<<|int main\(")),
    ("java", re.compile(r"public (?:static |class )|System\.out|import java\.")),
    ("javascript", re.compile(r"console\.log|function \w*\(|=>|\bconst \w+ =|\blet \w+ =")),
    ("rust", re.compile(r"\bfn \w+\(|let mut |println!|impl ")),
    ("go", re.compile(r"\bfunc \w+\(|package main|fmt\.")),
    ("sql", re.compile(r"\bSELECT\b[\s\S]*\bFROM\b", re.IGNORECASE)),
)


@dataclass
class CodeFigures:
    fenced_blocks: int = 0
    code_lines: int = 0
    lines: int = 0  # non-blank lines
    language: str = ""
    # (start, end, detail) of each fenced block and each unfenced run of code lines
    blocks: list[tuple[int, int, str]] = field(default_factory=list)
    fenced_regions: list[tuple[int, int]] = field(default_factory=list)


def find_code(text: str) -> CodeFigures:
    figures = CodeFigures()
    if not text:
        return figures
    padded = "\n" + text
    figures.lines = len(_NON_BLANK_LINE.findall(padded))
    info_language = ""
    fences = list(_FENCE_LINE.finditer(text)) if "```" in text or "~~~" in text else []
    index = 0
    while index < len(fences):
        opening = fences[index]
        marker = opening.group(1)[0]
        closing_index = next(
            (i for i in range(index + 1, len(fences)) if fences[i].group(1)[0] == marker), None
        )
        end = fences[closing_index].end() if closing_index is not None else len(text)
        info = opening.group(2).strip().split(" ")[0].lower()
        info_language = info_language or info
        body_lines = max(0, text.count("\n", opening.end(), end) - (1 if closing_index is not None else 0))
        figures.fenced_blocks += 1
        figures.code_lines += body_lines
        figures.fenced_regions.append((opening.start(), end))
        figures.blocks.append((opening.start(), end, f"fenced {info or 'code'} block, {body_lines} lines"))
        index = closing_index + 1 if closing_index is not None else len(fences)
    _unfenced_runs(text, padded, figures)
    figures.blocks.sort()
    figures.language = info_language or _guess_language(text, figures)
    return figures


def _unfenced_runs(text: str, padded: str, figures: CodeFigures) -> None:
    regions = figures.fenced_regions

    def outside(position: int) -> bool:
        return not regions or not any(start <= position < end for start, end in regions)

    lines: dict[int, list] = {}  # line start -> [end, is_code, is_indented]
    for match in CODE_LINE.finditer(padded):
        if outside(match.start()):
            figures.code_lines += 1
            lines[match.start()] = [match.end() - 1, True, False]
    for match in _INDENTED_LINE.finditer(padded):
        if outside(match.start()):
            lines.setdefault(match.start(), [match.end() - 1, False, False])[2] = True
    run: list[tuple[int, int, bool, bool]] = []

    def close_run() -> None:
        code = sum(1 for line in run if line[2])
        indented = sum(1 for line in run if line[3])
        if code >= MIN_RUN_LINES or (indented >= 2 and code >= 1):
            kind = "indented" if indented >= 2 else "unfenced"
            figures.blocks.append((run[0][0], run[-1][1], f"{kind} code, {len(run)} lines"))
        run.clear()

    for start in sorted(lines):
        end, is_code, is_indented = lines[start]
        if run and text.count("\n", run[-1][1], start) > 2:  # more than one blank line apart
            close_run()
        run.append((start, end, is_code, is_indented))
    if run:
        close_run()


def _guess_language(text: str, figures: CodeFigures) -> str:
    if not figures.blocks:
        return ""
    code = "\n".join(text[start:end] for start, end, _ in figures.blocks)
    votes = {name: len(pattern.findall(code)) for name, pattern in _LANGUAGE_HINTS}
    best = max(votes.items(), key=lambda kv: kv[1])
    return best[0] if best[1] > 0 else "unknown"
