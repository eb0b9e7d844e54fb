"""The program in an answer and the tests of its prompt, as plain data for the sandbox harness.

Program: the last fenced block whose info string names the expected language
(``python``, ``py``, ``python3`` by default); without one, the last untagged
block (configurable); or the raw text (``program_source: raw``, for
HumanEval-style completions that continue the prompt). An answer whose only
fence is unclosed (a truncated answer) still gives its block: the compile
step judges it.

Tests, from a JSON value (a string or an already parsed dict/list), in the
shapes the common code sets ship:

- stdin/stdout cases: a list of ``{"input", "output"}``; ``{"cases": [...]}``;
  LiveCodeBench's ``public_test_cases`` (``testtype: stdin`` rows; its
  compressed ``private_test_cases`` are never unpickled); APPS/TACO's
  ``{"inputs": [...], "outputs": [...]}`` or ``input_output``;
- MBPP: ``{"test_list": [...], "test_setup_code": "..."}`` or a bare list of
  assert strings;
- HumanEval: ``{"prompt", "test", "entry_point"}``: the program is
  ``prompt + completion``, and ``check(candidate)``'s body is split into one
  test per top-level statement holding an ``assert`` (statements between
  asserts run before the next one), so passed/total counts asserts.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PYTHON_FENCES = ("python", "py", "python3")
_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\n`]*)$", re.MULTILINE)


@dataclass(frozen=True)
class TestSpec:
    """What the harness runs: assert statements or stdin/stdout cases."""

    style: str  # "asserts" | "stdio"
    tests: tuple[str, ...] = ()
    setup: str = ""
    entry_point: str | None = None
    prefix: str = ""  # HumanEval's prompt: the program is prefix + completion
    cases: tuple[tuple[str, str], ...] = ()

    @property
    def total(self) -> int:
        return len(self.cases) if self.style == "stdio" else len(self.tests)

    def harness_spec(self, test_timeout_s: float, output_chars: int) -> dict[str, Any]:
        return {
            "style": self.style,
            "tests": list(self.tests),
            "setup": self.setup,
            "entry_point": self.entry_point,
            "inputs": [i for i, _ in self.cases],
            "test_timeout_s": test_timeout_s,
            "output_chars": output_chars,
        }

    def expected_outputs(self) -> list[str]:
        """The stdio cases' outputs: a file of their own, which the harness reads only after every case ran."""
        return [o for _, o in self.cases]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info language, body) of every fenced block, in order; an unclosed last fence runs to the end."""
    blocks: list[tuple[str, str]] = []
    fences = list(_FENCE_LINE.finditer(text))
    index = 0
    while index < len(fences):
        opening = fences[index]
        marker = opening.group(1)
        # A closing fence: same character, at least as long, and no info string.
        closing = next(
            (
                i
                for i in range(index + 1, len(fences))
                if fences[i].group(1)[0] == marker[0]
                and len(fences[i].group(1)) >= len(marker)
                and not fences[i].group(2).strip()
            ),
            None,
        )
        body_end = fences[closing].start() if closing is not None else len(text)
        info = (opening.group(2).strip().split() or [""])[0].lower()
        blocks.append((info, text[opening.end() + 1 : body_end]))
        index = closing + 1 if closing is not None else len(fences)
    return blocks


def extract_program(
    text: str | None,
    languages: Sequence[str] = PYTHON_FENCES,
    untagged: bool = True,
    source: str = "fenced",
) -> str | None:
    """The program to run, or None (no code in the answer)."""
    if not text or not text.strip():
        return None
    if source == "raw":
        return text
    blocks = fenced_blocks(text)
    wanted = {language.lower() for language in languages}
    for info, body in reversed(blocks):
        if info in wanted and body.strip():
            return body
    if untagged:
        for info, body in reversed(blocks):
            if not info and body.strip():
                return body
    return None


def program_for(spec: TestSpec, code: str, source: str = "fenced") -> str:
    """HumanEval continues the prompt; a fenced full program after the prompt simply redefines it."""
    if not spec.prefix:
        return code
    return spec.prefix + code if source == "raw" else spec.prefix + "\n" + code


def parse_tests(value: Any) -> TestSpec | None:
    """A TestSpec from a tests field, or None when it holds no test this module knows."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    spec: TestSpec | None = None
    if isinstance(value, list):
        spec = _from_list(value)
    elif isinstance(value, dict):
        spec = _from_dict(value)
    return spec if spec is not None and spec.total > 0 else None


def _from_list(items: list[Any]) -> TestSpec | None:
    if all(isinstance(item, str) for item in items):
        return TestSpec("asserts", tests=tuple(items))
    cases = _cases(items)
    return TestSpec("stdio", cases=cases) if cases is not None else None


def _cases(items: list[Any]) -> tuple[tuple[str, str], ...] | None:
    cases = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            return None
        if not isinstance(item.get("output"), str):
            return None
        if item.get("testtype", "stdin") != "stdin":
            continue  # LiveCodeBench "functional" cases call a method: not a stdin program
        cases.append((item["input"], item["output"]))
    return tuple(cases)


def _from_dict(value: dict[str, Any]) -> TestSpec | None:
    if isinstance(value.get("test"), str) and value.get("entry_point"):
        return humaneval_spec(str(value.get("prompt") or ""), value["test"], str(value["entry_point"]))
    if isinstance(value.get("test_list"), list):
        tests = tuple(t for t in value["test_list"] if isinstance(t, str))
        return TestSpec("asserts", tests=tests, setup=str(value.get("test_setup_code") or ""))
    if isinstance(value.get("cases"), list):
        cases = _cases(value["cases"])
        return TestSpec("stdio", cases=cases) if cases is not None else None
    if "public_test_cases" in value:
        public = value["public_test_cases"]
        items = json.loads(public) if isinstance(public, str) else public
        cases = _cases(items) if isinstance(items, list) else None
        return TestSpec("stdio", cases=cases) if cases is not None else None
    if isinstance(value.get("input_output"), str):
        return _from_dict(json.loads(value["input_output"]))
    inputs, outputs = value.get("inputs"), value.get("outputs")
    if isinstance(inputs, list) and isinstance(outputs, list) and len(inputs) == len(outputs) and all(
        isinstance(x, str) for x in inputs + outputs
    ):
        return TestSpec("stdio", cases=tuple(zip(inputs, outputs, strict=True)))
    return None


def humaneval_spec(prompt: str, test: str, entry_point: str) -> TestSpec:
    """Module-level test code as setup, ``check``'s body as one test per assert statement."""
    try:
        module = ast.parse(test)
    except (SyntaxError, ValueError, RecursionError):
        return TestSpec("asserts", tests=(f"{test}\ncheck({entry_point})",), entry_point=entry_point, prefix=prompt)
    check = next(
        (node for node in module.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None
    )
    if check is None:
        return TestSpec("asserts", tests=(f"{test}\ncheck({entry_point})",), entry_point=entry_point, prefix=prompt)
    setup = ast.unparse(ast.Module(body=[node for node in module.body if node is not check], type_ignores=[]))
    # check(candidate): its parameter name is what the body calls.
    parameter = check.args.args[0].arg if check.args.args else "candidate"
    if parameter != "candidate":
        setup += f"\n{parameter} = candidate"
    tests: list[str] = []
    pending: list[str] = []
    for statement in check.body:
        pending.append(ast.unparse(statement))
        if any(isinstance(node, ast.Assert) for node in ast.walk(statement)):
            tests.append("\n".join(pending))
            pending = []
    if pending and tests:
        tests[-1] += "\n" + "\n".join(pending)
    if not tests:  # a check without asserts (it raises on failure): one test
        tests = ["\n".join(ast.unparse(s) for s in check.body)]
    return TestSpec("asserts", tests=tuple(tests), setup=setup, entry_point=entry_point, prefix=prompt)
