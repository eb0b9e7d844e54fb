"""The test harness that runs INSIDE the sandbox: ``python3 -I -S harness.py`` in /work.

Standalone on purpose (stdlib only, no sftmix import): code_verify sends this
file's source into the sandbox with ``program.py``, ``spec.marshal`` (the
tests; stdio inputs) and for stdio ``expected.marshal`` (the expected
outputs). marshal (format 4, plain data only) and no ``json``/``signal``
imports: this process starts once per candidate, and those imports (re,
enum) took ~16 ms of a ~60 ms start. It reports one JSON line per test on the
stdout it inherited, then ``done``:

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
Codeforces): each case runs the program in a child process forked from this
one (as ``python3 -I -S program.py`` would run it, without a new interpreter's
start) with the input file as stdin; its stdout goes to a file bounded by the
file-size rlimit. The outputs are compared here only after the last case
ended, so no case's process can see or touch the comparison: the expected
outputs' file is unlinked at once and read (from a descriptor the children
close) only then, there is no /proc in the sandbox, this process and its
children are not dumpable (no ptrace), and after each case every other
process of the sandbox uid is killed. An assert-style program shares the harness's process: a
deliberately adversarial one could forge its report, as with HumanEval's own
harness; the sandbox contains damage, it does not referee cheating.
"""

from __future__ import annotations

import _signal as signal  # the C module: `signal` would import enum (~8 ms of every sandbox start)
import builtins
import marshal
import os
import sys

# Names for annotations only: importing typing imports re, enum, collections and contextlib (~17 ms
# of every sandbox start; from __future__ import annotations keeps annotations unevaluated).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# _ctypes and select are imported only by the stdio path: start-up time counts once per candidate.

MESSAGE_CHARS = 300
_PR_SET_DUMPABLE = 4


class TestTimeout(BaseException):
    """Raised by the per-test timer; a BaseException so ``except Exception`` in a program does not eat it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise TestTimeout


# JSON string escapes; the report is written without the json module (it imports re: ~8 ms per start).
_ESCAPES = {**{code: f"\\u{code:04x}" for code in range(32)}, ord('"'): '\\"', ord("\\"): "\\\\"}


def json_value(value: Any) -> str:
    """A report value (str, int, bool, None) as JSON."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).translate(_ESCAPES) + '"'


def emit(report: Any, record: dict[str, Any]) -> None:
    fields = ", ".join(f"{json_value(key)}: {json_value(value)}" for key, value in record.items())
    report.write("{" + fields + "}\n")
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


def set_not_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0) through the _ctypes C module: ``import ctypes`` costs ~9 ms a start.

    Best effort, as before: where _ctypes or prctl is missing, the cases run dumpable.
    """
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = Int

        class Libc:
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)

        Function(("prctl", Libc()))(*(Int(value) for value in (_PR_SET_DUMPABLE, 0, 0, 0, 0)))
    except (ImportError, OSError, AttributeError):
        return


def run_stdio(spec: dict[str, Any], source: str, report: Any) -> None:
    set_not_dumpable()  # not ptraceable by the program's processes (same uid); forked children inherit it
    # Held open and unlinked, read only after the last case ended: no case's process ever has the
    # expected outputs in its memory, and it cannot open the file.
    expected_fd = os.open("expected.marshal", os.O_RDONLY)
    os.unlink("expected.marshal")
    try:
        program = compile(source, "program.py", "exec")
    except (SyntaxError, ValueError) as error:
        emit(report, {"fatal": "compile_error", "message": describe(error)})
        return
    seconds = float(spec["test_timeout_s"])
    cap = int(spec["output_chars"])
    private = (expected_fd, report.fileno())
    ran: list[tuple[str, dict[str, str]]] = []  # (the case's input, its record, or its output to compare)
    timed_out = False
    for case_input in spec["inputs"]:
        if timed_out:
            ran.append((case_input, {"kind": "skipped", "message": "not run after a timeout"}))
            continue
        record = run_case(program, case_input, seconds, cap, private)
        timed_out = record["kind"] == "timeout"
        ran.append((case_input, record))
    with os.fdopen(expected_fd, "rb") as handle:
        expected = marshal.load(handle)
    for index, ((case_input, record), want) in enumerate(zip(ran, expected, strict=True)):
        if record["kind"] == "output":
            output = record["output"]
            if normalize_output(output) == normalize_output(want):
                record = {"kind": "pass"}
            else:
                label = f"input {short(case_input)!r}"
                record = {"kind": "fail", "message": short(f"{label}: expected {want!r}, got {output!r}")}
        emit(report, {"test": index, **record})


def run_case(program: Any, case_input: str, seconds: float, cap: int, private: tuple[int, ...]) -> dict[str, str]:
    """Run the program on one input in a forked child (no new interpreter: ~25 ms less per case).

    The child is what ``python3 -I -S program.py < input.txt`` would be: ``__main__`` module, argv,
    fresh standard streams on the case's files, SystemExit codes, non-daemon threads and atexit
    handlers finished before it exits, a traceback on stderr for an uncaught exception.
    """
    with open("input.txt", "w", encoding="utf-8") as handle:
        handle.write(case_input)
    stdio = (
        os.open("input.txt", os.O_RDONLY),
        os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        os.open("error.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    )
    pid = os.fork()
    if pid == 0:
        run_program(program, stdio, private)  # never returns
    for fd in stdio:
        os.close(fd)
    status = wait_for(pid, seconds)
    # Every other process this uid may signal in the namespace (init ignores it): the program's
    # children too, even those that left its session. Nothing outlives its case.
    try:  # noqa: SIM105 - contextlib would be one more import in every sandbox start
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if status is None:
        os.waitpid(pid, 0)
    with open("output.txt", "rb") as handle:
        output = handle.read(cap).decode("utf-8", errors="replace")
    with open("error.txt", "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - 2000))
        error_tail = handle.read().decode("utf-8", errors="replace")
    label = f"input {short(case_input)!r}"
    if status is None:
        return {"kind": "timeout", "message": f"{label}: no answer within {seconds:g} s"}
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        last = error_tail.strip().splitlines()[-1] if error_tail.strip() else ""
        if code == -signal.SIGXFSZ:
            last = "output over the file size limit"
        kind = "memory" if last.startswith("MemoryError") else "error"
        return {"kind": kind, "message": short(f"{label}: exit code {code}: {last}")}
    return {"kind": "output", "output": output}


def wait_for(pid: int, seconds: float) -> int | None:
    """The child's wait status, or None if it still runs after ``seconds`` (a pidfd: Linux >= 5.3)."""
    import select

    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(max(1, int(seconds * 1000)))
        done, status = os.waitpid(pid, os.WNOHANG)
        return status if done else None
    finally:
        os.close(pidfd)


def run_program(program: Any, stdio: tuple[int, int, int], private: tuple[int, ...]) -> None:
    """The forked child: become the program and exit with its exit code. Never returns."""
    code = 1
    try:
        os.setsid()
        for fd in private:
            os.close(fd)  # the report stream and the expected outputs stay with the harness
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
            2, "w", encoding="utf-8", errors="backslashreplace", closefd=False
        )
        sys.argv = ["program.py"]
        main = type(sys)("__main__")
        main.__file__ = "program.py"
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        try:
            exec(program, main.__dict__)
            code = 0
        except SystemExit as stop:
            code = exit_code(stop)
        except BaseException as error:  # noqa: BLE001 - what the interpreter would print, then exit 1
            report_uncaught(error)
        code = finish(code)
    finally:
        os._exit(code)


def exit_code(stop: SystemExit) -> int:
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code & 0xFF
    try:  # noqa: SIM105 - contextlib would be one more import in every sandbox start
        print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        pass
    return 1


def report_uncaught(error: BaseException) -> None:
    try:
        import traceback

        traceback.print_exception(error)
    except BaseException:  # noqa: BLE001 - e.g. no memory left for the traceback: the last line is enough
        os.write(2, f"\n{type(error).__name__}: {error}\n".encode("utf-8", errors="replace"))


def finish(code: int) -> int:
    """What the interpreter does at exit: join non-daemon threads, run atexit handlers, flush."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # type: ignore[attr-defined]
        import atexit

        atexit._run_exitfuncs()
    except SystemExit as stop:
        code = exit_code(stop)
    except BaseException as error:  # noqa: BLE001
        report_uncaught(error)
        code = code or 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - e.g. a broken pipe: the interpreter would exit 120
            code = code or 120
    return code


def main() -> None:
    # backslashreplace: a lone surrogate in a message becomes a \udXXXX escape, which JSON reads back.
    report = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # the program's own prints, errors and input() see /dev/null
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        with open("spec.marshal", "rb") as handle:
            spec = marshal.load(handle)
        os.unlink("spec.marshal")
        with open("program.py", encoding="utf-8", errors="replace") as handle:
            source = handle.read()
        (run_stdio if spec["style"] == "stdio" else run_asserts)(spec, source, report)
    except Exception as error:  # noqa: BLE001 - a harness fault is reported, not hidden in /dev/null
        emit(report, {"fatal": "harness_error", "message": describe(error)})
    emit(report, {"done": True})


if __name__ == "__main__":
    main()
