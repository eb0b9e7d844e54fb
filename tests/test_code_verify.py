"""Code verification: extraction, test shapes, verdicts from sandbox runs, the transform on both engines,
and HumanEval/MBPP canonical solutions (a sample; benchmarks/code_verify.py runs all 1,138)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sftmix.jobs.runtime.engine import Engine
from sftmix.transforms import process_pool
from sftmix.transforms.code_harness import normalize_output
from sftmix.transforms.code_tests import extract_program, fenced_blocks, parse_tests, program_for
from sftmix.transforms.code_verify import (
    CodeOutcome,
    CodeVerifyParams,
    interpret,
    verify_chunk,
    verify_code,
    verify_programs,
)
from sftmix.transforms.sandbox import SANDBOX_UID, RunResult, SandboxUnavailable, sandbox_problem

from .code_realdata import HUMANEVAL, MBPP, humaneval_items, humaneval_rows, mbpp_items, mbpp_rows

needs_sandbox = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox: {sandbox_problem()}")
# Short limits: hostile candidates must not stretch the suite.
FAST = CodeVerifyParams(test_timeout_s=1.0, run_timeout_s=4.0, memory_mb=512)

SQUARE_TESTS = json.dumps({"test_list": ["assert square(2) == 4", "assert square(3) == 9", "assert square(-1) == 1"]})
SUM_CASES = json.dumps([{"input": "1 2\n", "output": "3\n"}, {"input": "10 -4\n", "output": "6"}])


def answer(code: str, language: str = "python") -> str:
    return f"<think>...</think>\nThe solution:\n```{language}\n{code}\n```\nDone."


def test_fenced_blocks_and_program_extraction() -> None:
    text = "a\n```python\nx = 1\n```\nthen\n~~~py\ny = 2\n~~~\n```text\nout\n```\n"
    assert fenced_blocks(text) == [("python", "x = 1\n"), ("py", "y = 2\n"), ("text", "out\n")]
    assert extract_program(text) == "y = 2\n"  # the last block in the expected language
    assert extract_program(text, languages=["python"]) == "x = 1\n"
    assert extract_program("```\nz = 3\n```") == "z = 3\n"  # untagged fallback
    assert extract_program("```\nz = 3\n```", untagged=False) is None
    assert extract_program("```cpp\nint main(){}\n```") is None
    assert extract_program("no code here") is None and extract_program(None) is None
    assert extract_program("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"  # unclosed
    # A fence with an info string never closes a block: nested example fences stay inside.
    nested = "````python\nprint('```python')\n````"
    assert extract_program(nested) == "print('```python')\n"
    assert extract_program("  body", source="raw") == "  body"


def test_test_shapes() -> None:
    stdio = parse_tests(SUM_CASES)
    assert stdio is not None and stdio.style == "stdio" and stdio.total == 2
    assert parse_tests({"cases": [{"input": "1", "output": "1"}]}).total == 1  # type: ignore[union-attr]
    lcb = {"public_test_cases": json.dumps([
        {"input": "2\n", "output": "4\n", "testtype": "stdin"},
        {"input": "f(2)", "output": "4", "testtype": "functional"},
    ]), "private_test_cases": "eJzLSM3JyVcozy/KSQEAGgQEXQ=="}
    assert parse_tests(lcb).cases == (("2\n", "4\n"),)  # type: ignore[union-attr]
    apps = {"input_output": json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]})}
    assert parse_tests(apps).cases == (("1\n", "2\n"),)  # type: ignore[union-attr]
    mbpp = parse_tests({"test_list": ["assert f(1) == 2"], "test_setup_code": "import math"})
    assert mbpp is not None and mbpp.style == "asserts" and mbpp.setup == "import math"
    assert parse_tests(["assert f(1) == 2", "assert f(2) == 3"]).total == 2  # type: ignore[union-attr]
    for empty in (None, "", "not json", "[]", {"test_list": []}, {"other": 1}, 42):
        assert parse_tests(empty) is None


def test_humaneval_check_becomes_one_test_per_assert() -> None:
    test = (
        "\nMETADATA = {'author': 'jt'}\n\ndef check(candidate):\n    import math\n"
        "    assert candidate(1) == 2\n    for x in range(3):\n        assert candidate(x) == x + 1\n"
        "    value = candidate(5)\n    assert math.isclose(value, 6)\n"
    )
    spec = parse_tests({"prompt": "def inc(x):\n    \"\"\"doc\"\"\"\n", "test": test, "entry_point": "inc"})
    assert spec is not None and spec.total == 3 and spec.entry_point == "inc"
    assert spec.tests[0].startswith("import math") and "value = candidate(5)" in spec.tests[2]
    assert "METADATA" in spec.setup and "def check" not in spec.setup
    assert program_for(spec, "    return x + 1\n", "raw").endswith('"""doc"""\n    return x + 1\n')
    assert program_for(spec, "def inc(x):\n    return x + 1", "fenced").count("def inc") == 2


def test_output_normalization() -> None:
    assert normalize_output("3 \r\n4\n\n") == normalize_output("\n3\n4")
    assert normalize_output("3 4") != normalize_output("3\n4")


def _run(status: str, lines: list[dict[str, object]], detail: str = "") -> RunResult:
    stdout = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return RunResult(status, 0 if status == "ok" else None, stdout, b"", 0.1, detail=detail)


def test_interpret_harness_reports() -> None:
    passes = [{"test": i, "kind": "pass"} for i in range(3)]
    assert interpret(_run("ok", [*passes, {"done": True}]), 3).status == "pass"
    wrong = [passes[0], {"test": 1, "kind": "fail", "message": "assert f(2) == 3"}, passes[2], {"done": True}]
    outcome = interpret(_run("ok", wrong), 3)
    assert (outcome.tests_passed, outcome.status, outcome.failure) == (2, "fail", "test 2/3: assert f(2) == 3")
    hung = [passes[0], {"test": 1, "kind": "timeout", "message": "t"}, {"test": 2, "kind": "skipped"}, {"done": True}]
    assert interpret(_run("ok", hung), 3).status == "timeout"
    assert interpret(_run("ok", [{"fatal": "compile_error", "message": "SyntaxError"}, {"done": True}]), 3).status \
        == "compile_error"
    assert interpret(_run("ok", [{"fatal": "memory", "message": "m"}]), 3).status == "memory"
    cut = interpret(_run("timeout", [passes[0]], "wall clock 4 s"), 3)
    assert (cut.tests_passed, cut.status) == (1, "timeout") and "after 1 of 3" in str(cut.failure)
    ended = interpret(_run("exit", passes[:2]), 3)
    assert (ended.tests_passed, ended.status) == (2, "runtime_error")
    forged = interpret(_run("ok", [*passes, {"test": 7, "kind": "pass"}, {"done": True}]), 3)
    assert forged.tests_passed == 3  # indexes past the total never count
    assert interpret(_run("sandbox_error", [], "bwrap: no userns"), 3).status == "sandbox_error"
    long = interpret(_run("ok", [{"test": 0, "kind": "fail", "message": "x" * 2000}, {"done": True}]), 1, 100)
    assert len(str(long.failure)) == 100


@pytest.fixture
def pool() -> Iterator[None]:
    """Runs on two pool workers, as on the local engine; the previous size is restored after."""
    previous = process_pool.pool_size()
    process_pool.configure(2)
    yield None
    process_pool.shutdown()
    process_pool.configure(previous)


def outcomes_of(items: list[tuple[str | None, str]], params: CodeVerifyParams = FAST) -> list[CodeOutcome]:
    results = verify_programs(items, params)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


@needs_sandbox
def test_candidates_in_both_styles(pool: None) -> None:
    items = [
        (answer("def square(x):\n    return x * x"), SQUARE_TESTS),
        (answer("def square(x):\n    return x * abs(x)"), SQUARE_TESTS),  # wrong on negatives
        (answer("def square(x) return x"), SQUARE_TESTS),
        ("I think the answer is x squared.", SQUARE_TESTS),
        (answer("a, b = map(int, input().split())\nprint(a + b)"), SUM_CASES),
        (answer("a, b = map(int, input().split())\nprint(a + b + 1)"), SUM_CASES),  # off by one
        (answer("a, b = map(int, input().split())\nprint(f'{a + b}.0')"), SUM_CASES),  # wrong format
        (answer("print(1 // 0)"), SUM_CASES),
        (answer("int main() { return 0; }", "cpp"), SUM_CASES),
        (answer("def square(x):\n    return x * x"), None),  # no tests: not verified here
    ]
    results = verify_programs(items, FAST)
    summary = [(r.status, r.tests_passed, r.tests_total) if r else None for r in results]
    assert summary == [
        ("pass", 3, 3),
        ("fail", 2, 3),
        ("compile_error", 0, 3),
        ("no_code", 0, 3),
        ("pass", 2, 2),
        ("fail", 0, 2),
        ("fail", 0, 2),
        ("runtime_error", 0, 2),
        ("no_code", 0, 2),
        None,
    ]
    assert results[1] is not None and results[1].failure == "test 3/3: assert square(-1) == 1"
    assert results[7] is not None and "ZeroDivisionError" in str(results[7].failure)
    again = verify_programs(items, FAST)  # deterministic, wall times aside
    assert [(r.status, r.tests_passed, r.failure) for r in again if r] == [
        (r.status, r.tests_passed, r.failure) for r in results if r
    ]


@needs_sandbox
def test_the_same_program_and_tests_run_once(pool: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    real_map_chunks = process_pool.map_chunks

    def counting(work, items, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(len(items))
        return real_map_chunks(work, items, **kwargs)

    monkeypatch.setattr(process_pool, "map_chunks", counting)
    square = "def square(x):\n    return x * x"
    items = [
        (answer(square), SQUARE_TESTS),
        (f"Squares, so:\n```python\n{square}\n```", SQUARE_TESTS),  # other prose, the same program
        (answer(square), json.dumps({"test_list": ["assert square(2) == 5"]})),  # other tests
        (answer("def square(x):\n    return x * abs(x)"), SQUARE_TESTS),
        (answer(square), SQUARE_TESTS),
    ]
    known: dict[bytes, CodeOutcome] = {}
    results = verify_programs(items, FAST, known)
    assert ran == [3]
    assert [(r.status, r.tests_passed, r.tests_total) for r in results if r] == [
        ("pass", 3, 3), ("pass", 3, 3), ("fail", 0, 1), ("fail", 2, 3), ("pass", 3, 3),
    ]
    # Outcomes carry over to later batches of the partition through `known`.
    again = verify_programs([items[3], (answer("def square(x):\n    return x ** 2"), SQUARE_TESTS)], FAST, known)
    assert ran == [3, 1] and [r.status for r in again if r] == ["fail", "pass"]
    assert len(known) == 4


def sandbox_uid_processes() -> set[str]:
    """Live processes of the sandbox uid, as ``pid:start time`` (a reused pid is another process)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
            started = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[19] if status else ""
        except (OSError, IndexError):
            continue
        uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), None)
        if uid == str(SANDBOX_UID):
            found.add(f"{entry.name}:{started}")
    return found


# Looks for the expected outputs everywhere a case's process could: the spec files, every descriptor.
STEAL_EXPECTED = """import os
found = b""
for name in ("expected.marshal", "spec.marshal", "spec.json"):
    try:
        found += open(name, "rb").read()
    except OSError:
        pass
for fd in range(3, 256):
    try:
        os.lseek(fd, 0, 0)
    except OSError:
        pass
    try:
        found += os.read(fd, 1 << 16)
    except OSError:
        pass
print("3" if b"3" in found else "none")"""


# A stdio program sees the harness's modules (its process is a fork of the harness): none of the
# imports that cost a sandbox start ~26 ms, and prctl(PR_GET_DUMPABLE) says 0 (not ptraceable).
LEAN_HARNESS = """import sys
slow = sorted(m for m in ("typing", "re", "enum", "ctypes", "json", "signal") if m in sys.modules)
import ctypes
print(slow, ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"""


@needs_sandbox
def test_stdio_programs_run_as_a_fresh_interpreter_runs_them(pool: None) -> None:
    """Each case runs in a child forked from the harness; what a program sees must be what
    `python3 -I -S program.py < input` shows it."""
    threaded = (
        "import sys, threading\ndef main():\n    a, b = map(int, sys.stdin.readline().split())\n"
        "    print(a + b)\nthreading.stack_size(1 << 26)\nthreading.Thread(target=main).start()"
    )
    at_exit = "import atexit\na, b = map(int, input().split())\natexit.register(print, a + b)"
    main_guard = (
        "import sys\ndef main():\n    print(sum(map(int, sys.stdin.buffer.read().split())))\n"
        "if __name__ == '__main__':\n    main()"
    )
    items = [
        (answer(threaded), SUM_CASES),  # a non-daemon thread prints after the module ends
        (answer(at_exit), SUM_CASES),
        (answer(main_guard), SUM_CASES),
        (answer("import sys\nprint(sum(map(int, input().split())))\nsys.exit(0)"), SUM_CASES),
        (answer("import sys\nprint(sum(map(int, input().split())))\nsys.exit(3)"), SUM_CASES),
        (answer("import sys\nsys.exit('bad input')"), SUM_CASES),
        (answer("print(sum(map(int, input().split())), end='')\nraise KeyError('k')"), SUM_CASES),
        (answer("import sys\nprint(sys.argv, __file__, __name__)"), json.dumps(
            [{"input": "", "output": "['program.py'] program.py __main__"}]
        )),
        (answer(STEAL_EXPECTED), SUM_CASES),
        (answer(LEAN_HARNESS), json.dumps([{"input": "", "output": "[] 0"}])),
    ]
    outcomes = outcomes_of(items)
    assert [(r.status, r.tests_passed) for r in outcomes] == [
        ("pass", 2),
        ("pass", 2),
        ("pass", 2),
        ("pass", 2),
        ("runtime_error", 0),
        ("runtime_error", 0),
        ("runtime_error", 0),
        ("pass", 1),
        ("fail", 0),  # it found nothing to copy
        ("pass", 1),  # the harness imported none of the slow modules, and the case is not dumpable
    ]
    assert "exit code 3" in str(outcomes[4].failure)
    assert "exit code 1: bad input" in str(outcomes[5].failure)
    assert "exit code 1: KeyError: 'k'" in str(outcomes[6].failure)
    assert "got 'none\\n'" in str(outcomes[8].failure)


@needs_sandbox
def test_hostile_candidates_end_with_the_right_status(pool: None) -> None:
    before = sandbox_uid_processes()  # another run of this suite's sandboxes may be live: not ours
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    kill_parent = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(os.getpid(), signal.SIGKILL)"
    items = [
        (answer("def square(x):\n    while True:\n        pass"), SQUARE_TESTS),
        (answer("block = bytearray(10 * 1024**3)\ndef square(x):\n    return x * x"), SQUARE_TESTS),
        (answer(bomb), SQUARE_TESTS),
        (answer(kill_parent), SQUARE_TESTS),
        (answer("import sys\nfor _ in range(1600):\n    sys.stdout.write('x' * 65536)"), SUM_CASES),
        (answer("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)"), SUM_CASES),
        (answer("while True:\n    pass"), SUM_CASES),
        (answer(STEAL_EXPECTED), SUM_CASES),
        (answer("def square(x):\n    return x * x"), SQUARE_TESTS),  # the stage goes on
    ]
    statuses = [(r.status, r.tests_passed) for r in outcomes_of(items)]
    assert statuses == [
        ("timeout", 0),
        ("memory", 0),
        ("timeout", 0),
        ("runtime_error", 0),
        ("runtime_error", 0),
        ("runtime_error", 0),
        ("timeout", 0),
        ("fail", 0),  # the expected outputs are not there to copy
        ("pass", 3),
    ]
    if os.geteuid() == 0:  # as root the sandbox runs as its own uid: nothing of it may be left
        # The other pytest worker may be running sandboxes of its own, which come and go within their
        # time limits; a process that escaped one of ours stays. So: the processes seen now must end.
        left = sandbox_uid_processes() - before
        deadline = time.monotonic() + 30.0
        while left & sandbox_uid_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left & sandbox_uid_processes() == set()


@needs_sandbox
def test_verify_code_on_the_engine(engine: Engine) -> None:
    process_pool.configure(engine.udf_pool_size)
    rows = [
        ("c1", "code", answer("def square(x):\n    return x * x"), SQUARE_TESTS, "unverifiable"),
        ("c2", "code", answer("def square(x):\n    return x * 2"), SQUARE_TESTS, "unverifiable"),
        ("c3", "code", answer("a, b = map(int, input().split())\nprint(a + b)"), SUM_CASES, "unverifiable"),
        ("c4", "code", "no program", SUM_CASES, "unverifiable"),
        ("c5", "code", answer("while True:\n    pass"), SUM_CASES, "unverifiable"),
        ("h1", "code", answer("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                              "        pass"), SQUARE_TESTS, "unverifiable"),
        ("h2", "code", answer("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, 9)"),
         SUM_CASES, "unverifiable"),
        ("h3", "code", answer("block = bytearray(10 * 1024**3)"), SQUARE_TESTS, "unverifiable"),
        ("c6", "code", answer("print(1)"), None, "unverifiable"),
        ("m1", "math", answer("def square(x):\n    return 0"), SQUARE_TESTS, "correct"),
    ]
    schema = "candidate_id string, domain string, answer string, tests string, verdict string"
    df = engine.spark.createDataFrame(rows, schema).withColumn("verifier", F.lit("none"))
    out = {r["candidate_id"]: r.asDict() for r in verify_code(df, FAST).collect()}
    got = {k: (v["code_status"], v["tests_passed"], v["tests_total"], v["verdict"], v["verifier"]) for k, v in out.items()}
    assert got == {
        "c1": ("pass", 3, 3, "correct", "sandbox"),
        "c2": ("fail", 1, 3, "incorrect", "sandbox"),
        "c3": ("pass", 2, 2, "correct", "sandbox"),
        "c4": ("no_code", 0, 2, "incorrect", "sandbox"),
        "c5": ("timeout", 0, 2, "incorrect", "sandbox"),
        "h1": ("timeout", 0, 3, "incorrect", "sandbox"),  # the hostile ones end right; the stage goes on
        "h2": ("runtime_error", 0, 2, "incorrect", "sandbox"),
        "h3": ("memory", 0, 3, "incorrect", "sandbox"),
        "c6": (None, None, None, "unverifiable", "none"),
        "m1": (None, None, None, "correct", "none"),
    }
    assert out["c2"]["code_failure"] == "test 2/3: assert square(3) == 9"
    lenient = verify_code(df.filter("candidate_id = 'c2'"), CodeVerifyParams(pass_fraction=0.3)).first()
    assert lenient is not None and lenient["verdict"] == "correct"
    external = verify_code(df, CodeVerifyParams(mode="external"))
    assert external.schema["tests_passed"].dataType == T.LongType()
    kept = external.collect()
    assert {r["code_status"] for r in kept} == {None} and {r["verdict"] for r in kept} == {"unverifiable", "correct"}


def test_no_sandbox_stops_the_stage_and_never_runs_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import sftmix.transforms.sandbox as sandbox

    previous = process_pool.pool_size()
    process_pool.configure(0)  # inline: the patched probe is this process's
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_problem.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bwrap"):
            verify_code(None, CodeVerifyParams())  # type: ignore[arg-type]  # stops before reading df
        with pytest.raises(SandboxUnavailable, match="code_verify.mode: external"):
            verify_chunk(CodeVerifyParams(), [(answer("print(1)"), SUM_CASES)])
    finally:
        monkeypatch.undo()
        sandbox.sandbox_problem.cache_clear()
        process_pool.configure(previous)


def test_params_are_validated() -> None:
    for bad in ({"mode": "docker"}, {"pass_fraction": 0}, {"program_source": "ast"}, {"run_timeout_s": 0}):
        with pytest.raises(ValueError):
            CodeVerifyParams(**bad)  # type: ignore[arg-type]


realdata = pytest.mark.skipif(not (HUMANEVAL.exists() and MBPP.exists()), reason="no /work/shared real data")


@realdata
@needs_sandbox
def test_humaneval_and_mbpp_canonical_pass_and_broken_fail(pool: None) -> None:
    humaneval = humaneval_rows()[::8]  # 21 of 164, spread over the set
    mbpp = mbpp_rows()[::49]  # 20 of 974
    raw = CodeVerifyParams(program_source="raw")
    canonical = outcomes_of(humaneval_items(humaneval), raw) + outcomes_of(mbpp_items(mbpp), CodeVerifyParams())
    assert [(o.status, o.failure) for o in canonical if o.status != "pass"] == []
    broken = outcomes_of(humaneval_items(humaneval, broken_versions=True), raw) + outcomes_of(
        mbpp_items(mbpp, broken_versions=True), CodeVerifyParams()
    )
    assert [o for o in broken if o.status == "pass"] == []
    assert {o.status for o in broken} <= {"fail", "compile_error", "runtime_error"}
