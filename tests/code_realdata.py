"""HumanEval and MBPP as code-verify items: canonical solutions and mechanically broken versions.

Used by tests/test_code_verify.py (a sample) and benchmarks/code_verify.py (all 164 + 974).
An item is (program text, tests value) as ``verify_programs`` takes it; HumanEval items are raw
completions (``program_source: raw``: prompt + completion), MBPP items are fenced answers.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
HUMANEVAL = SHARED / "realdata" / "openai_human-eval" / "HumanEval.jsonl.gz"
MBPP = SHARED / "realdata" / "ockbench_mbpp-copy" / "mbpp.jsonl"

# Appended to a program: every tested function returns a changed value (off by one, negated,
# extended), so a broken version fails any test that looks at the result.
_BREAK = '''

def _sftmix_break(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "?"
    if isinstance(value, (list, tuple)):
        return type(value)([*value, "?"])
    if isinstance(value, set):
        return value | {"?"}
    if isinstance(value, dict):
        return {**value, "?": 0}
    return "?" if value is None else None


def _sftmix_wrap(function):
    def broken(*args, **kwargs):
        return _sftmix_break(function(*args, **kwargs))
    return broken
'''


def humaneval_rows() -> list[dict[str, Any]]:
    with gzip.open(HUMANEVAL, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def mbpp_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in MBPP.read_text(encoding="utf-8").splitlines() if line.strip()]


def humaneval_tests(row: dict[str, Any]) -> str:
    return json.dumps({"prompt": row["prompt"], "test": row["test"], "entry_point": row["entry_point"]})


def mbpp_tests(row: dict[str, Any]) -> str:
    return json.dumps({"test_list": row["test_list"], "test_setup_code": row["test_setup_code"]})


def fenced(code: str) -> str:
    return f"Here is the function.\n\n```python\n{code}\n```\n"


def tested_functions(code: str, tests: list[str]) -> list[str]:
    """Top-level functions of ``code`` that the tests call."""
    try:
        names = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return []
    joined = "\n".join(tests)
    return [name for name in names if re.search(rf"\b{re.escape(name)}\s*\(", joined)]


def broken(code: str, functions: list[str], index: int) -> str:
    """Every third a syntax error (a cut line), the rest a changed return value."""
    if index % 3 == 0:
        return code + "\n    return (\n"
    wraps = "".join(f"\n{name} = _sftmix_wrap({name})\n" for name in functions)
    return code + _BREAK + wraps


def humaneval_items(rows: list[dict[str, Any]], *, broken_versions: bool = False) -> list[tuple[str, str]]:
    items = []
    for index, row in enumerate(rows):
        completion = row["canonical_solution"]
        if broken_versions:
            completion = broken(completion, [row["entry_point"]], index)
        items.append((completion, humaneval_tests(row)))
    return items


def mbpp_items(rows: list[dict[str, Any]], *, broken_versions: bool = False) -> list[tuple[str, str]]:
    items = []
    for index, row in enumerate(rows):
        code = row["code"].replace("\r\n", "\n")
        if broken_versions:
            code = broken(code, tested_functions(code, row["test_list"]), index)
        items.append((fenced(code), mbpp_tests(row)))
    return items
