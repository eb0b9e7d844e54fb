"""The test harness that runs INSIDE the sandbox: ``python3 -I -S harness.py`` in /work.

Standalone on purpose (stdlib only, no sftmix import): code_verify sends this
file's source into the sandbox with ``program.py`` and ``spec.json``. It
reports one JSON line per test on the stdout it inherited, then ``done``:

    {"test": 0, "kind": "pass"}
    {"test": 1, "kind": "fail", "message": "assert f(2) == 3"}
    {"fatal": "compile_error", "message": "SyntaxError: ... (line 3)"}
    {"done": true}

kinds: pass, fail (wrong answer / assertion), error (an exception), timeout,
memory (MemoryError), skipped (not run after a timeout: a program that hung
once is not given the whole wall clock again).

Assert style (HumanEval, MBPP): the program runs once in a namespace, then
every test statement runs separately, each under its own timer, so
passed/total counts asserts. The program's own prints go to /dev/null, so
they can neither flood nor forge the report. Stdio style (LiveCodeBench,
Codeforces): each case runs the program as a child process with the input
file as stdin; its stdout goes to a file bounded by the file-size rlimit and
is compared here, after the child ended, so a child cannot touch the
comparison: spec.json (the expected outputs) is deleted once read, there is
no /proc in the sandbox, this process is not dumpable (no ptrace), and after
each case every other process of the sandbox uid is killed. An assert-style program shares the harness's process: a
deliberately adversarial one could forge its report, as with HumanEval's own
harness; the sandbox contains damage, it does not referee cheating.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
from typing import Any

# subprocess and ctypes are imported only by the stdio path: ~50 ms of a loaded machine's start-up.

MESSAGE_CHARS = 300
_PR_SET_DUMPABLE = 4


class TestTimeout(BaseException):
    """Raised by the per-test timer; a BaseException so ``except Exception`` in a program does not eat it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise TestTimeout


def emit(report: Any, record: dict[str, Any]) -> None:
    report.write(json.dumps(record) + "\n")
    report.flush()


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def describe(error: BaseException) -> str:
    if isinstance(error, TestTimeout):
        return "no result within the per-test time limit"
    return short(f"{type(error).__name__}: {error}")


def normalize_output(text: str) -> str:
    """Trailing spaces per line and leading/trailing blank lines do not count (LiveCodeBench's rule)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def timed_exec(code: Any, namespace: dict[str, Any], seconds: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        exec(code, namespace)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def failure_kind(error: BaseException) -> str:
    if isinstance(error, TestTimeout):
        return "timeout"
    if isinstance(error, MemoryError):
        return "memory"
    return "fail" if isinstance(error, AssertionError) else "error"


def run_asserts(spec: dict[str, Any], source: str, report: Any) -> None:
    seconds = float(spec["test_timeout_s"])
    try:
        program = compile(source, "program.py", "exec")
    except (SyntaxError, ValueError) as error:
        emit(report, {"fatal": "compile_error", "message": describe(error)})
        return
    # Not "__main__": a program's `if __name__ == "__main__":` demo (often reading input) stays off.
    namespace: dict[str, Any] = {"__name__": "candidate", "__builtins__": builtins}
    for code, label in ((program, "program"), (spec.get("setup") or "", "test setup")):
        try:
            timed_exec(code, namespace, seconds)
        except BaseException as error:  # noqa: BLE001 - the program may raise anything, SystemExit too
            kind = failure_kind(error)
            emit(report, {"fatal": "runtime_error" if kind in ("fail", "error") else kind,
                          "message": short(f"{label}: {describe(error)}")})
            return
        if label == "program" and spec.get("entry_point"):
            # HumanEval's check(candidate); the test setup may alias it.
            namespace["candidate"] = namespace.get(spec["entry_point"])
    timed_out = False
    for index, test in enumerate(spec["tests"]):
        if timed_out:
            emit(report, {"test": index, "kind": "skipped", "message": "not run after a timeout"})
            continue
        try:
            timed_exec(compile(test, f"test_{index}", "exec"), namespace, seconds)
            emit(report, {"test": index, "kind": "pass"})
        except BaseException as error:  # noqa: BLE001
            kind = failure_kind(error)
            timed_out = kind == "timeout"
            detail = f" ({describe(error)})" if kind != "fail" or str(error) else ""  # a bare assert: the test says it
            emit(report, {"test": index, "kind": kind, "message": short(f"{test}{detail}")})


def run_stdio(spec: dict[str, Any], source: str, report: Any) -> None:
    try:  # not ptraceable by the program's child processes (same uid)
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass
    try:
        compile(source, "program.py", "exec")
    except (SyntaxError, ValueError) as error:
        emit(report, {"fatal": "compile_error", "message": describe(error)})
        return
    seconds = float(spec["test_timeout_s"])
    cap = int(spec["output_chars"])
    timed_out = False
    for index, case in enumerate(spec["cases"]):
        if timed_out:
            emit(report, {"test": index, "kind": "skipped", "message": "not run after a timeout"})
            continue
        record = run_case(case, seconds, cap)
        timed_out = record["kind"] == "timeout"
        emit(report, {"test": index, **record})


def run_case(case: dict[str, str], seconds: float, cap: int) -> dict[str, str]:
    import subprocess

    with open("input.txt", "w", encoding="utf-8") as handle:
        handle.write(case["input"])
    with open("input.txt", "rb") as stdin, open("output.txt", "wb") as stdout, open("error.txt", "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "program.py"], stdin=stdin, stdout=stdout, stderr=stderr,
            start_new_session=True,
        )
        try:
            code = child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            # Every other process this uid may signal in the namespace (init ignores it): the
            # program's children too, even those that left its session. Nothing outlives its case.
            try:  # noqa: SIM105 - contextlib would be one more import in every sandbox start
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
    with open("output.txt", "rb") as handle:
        output = handle.read(cap).decode("utf-8", errors="replace")
    with open("error.txt", "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - 2000))
        error_tail = handle.read().decode("utf-8", errors="replace")
    label = f"input {short(case['input'])!r}"
    if code is None:
        return {"kind": "timeout", "message": f"{label}: no answer within {seconds:g} s"}
    if code != 0:
        last = error_tail.strip().splitlines()[-1] if error_tail.strip() else ""
        if code == -signal.SIGXFSZ:
            last = "output over the file size limit"
        kind = "memory" if last.startswith("MemoryError") else "error"
        return {"kind": kind, "message": short(f"{label}: exit code {code}: {last}")}
    if normalize_output(output) == normalize_output(case["output"]):
        return {"kind": "pass"}
    return {"kind": "fail", "message": short(f"{label}: expected {case['output']!r}, got {output!r}")}


def main() -> None:
    report = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # the program's own prints, errors and input() see /dev/null
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        with open("spec.json", encoding="utf-8") as handle:
            spec = json.load(handle)
        os.unlink("spec.json")  # the expected outputs stay in this process only, out of the program's reach
        with open("program.py", encoding="utf-8", errors="replace") as handle:
            source = handle.read()
        (run_stdio if spec["style"] == "stdio" else run_asserts)(spec, source, report)
    except Exception as error:  # noqa: BLE001 - a harness fault is reported, not hidden in /dev/null
        emit(report, {"fatal": "harness_error", "message": describe(error)})
    emit(report, {"done": True})


if __name__ == "__main__":
    main()
