"""Run an untrusted program inside a fresh bubblewrap (``bwrap``) sandbox, with limits.

Every call starts a new ``bwrap`` with ``--unshare-all`` (own user, pid, net,
ipc, uts and cgroup namespaces: no network, no view of host processes),
``--die-with-parent`` and ``--new-session`` (no terminal injection). The
sandbox sees only ``/usr`` read-only (plus the merged-usr symlinks), a
minimal ``/dev``, and a private size-limited tmpfs work dir ``/work`` that
holds the files passed in; nothing of the host's ``/etc``, ``/root``,
``/home``, ``/tmp`` or the lake. There is no ``/proc`` either, so a program
cannot reach other processes' file descriptors.

Limits: ``prlimit`` (util-linux, in ``/usr``) sets rlimits inside the
namespace, just before the program starts: CPU seconds, address space,
processes, file size, no core files. Process-count rlimits do not bind uid 0
(the kernel exempts root), so when the caller is root the sandbox runs as an
unprivileged uid (``SANDBOX_UID``, nobody): the kernel then counts the
sandbox's processes per (user namespace, uid), so a fork bomb hits its own
limit without touching the host's count (tests/test_sandbox.py proves it).
The rlimit is set after the namespace exists, so the parent uid's other
processes (e.g. a Spark executor's threads) do not count against it. The wall
clock is watched here: past it, the sandbox's pid-namespace init is killed
(the kernel then kills every process in the namespace) and the ``bwrap``
process group after it, so nothing is left running. stdout and stderr are
read up to a cap; a program that writes more is stopped (``output_limit``).

Statuses: ``ok`` (exit 0), ``exit`` (another exit code), ``signal`` (killed by
a signal), ``timeout`` (wall clock or CPU limit), ``output_limit`` (stdout or
stderr cap, or the file-size rlimit), ``sandbox_error`` (bwrap itself failed:
no user namespaces, a bad mount). A failure to sandbox is never answered by
running the program without the sandbox.

The caller's argv names paths inside the sandbox. Python is the language:
``/usr/bin/python3`` (Debian's, stdlib only: the venv's interpreter lives
under /root, which the unprivileged sandbox uid cannot read), started with
``-I -S`` by the code harness. Tested with bubblewrap 0.8 (Debian 12).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# nobody: an unprivileged uid for the sandbox when the caller is root (rlimits on processes bind it).
SANDBOX_UID = 65534
SANDBOX_PYTHON = "/usr/bin/python3"
WORK_DIR = "/work"
_PRLIMIT = "/usr/bin/prlimit"
_READ_BYTES = 1 << 16
_PR_SET_CHILD_SUBREAPER = 36
STATUSES = ("ok", "exit", "signal", "timeout", "output_limit", "sandbox_error")


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. ``wall_s`` is the hard stop; ``cpu_s`` binds each process of the run."""

    wall_s: float = 20.0
    cpu_s: int = 20
    memory_mb: int = 1024  # address space per process; Python starts in ~30 MB of it
    processes: int = 32  # processes and threads in the sandbox's user namespace
    file_mb: int = 16  # largest file a process may write (stdio outputs go to files)
    tmpfs_mb: int = 64  # the whole private work dir
    output_bytes: int = 1 << 20  # stdout and stderr each, read from the pipes

    def __post_init__(self) -> None:
        if self.wall_s <= 0 or self.cpu_s < 1 or self.memory_mb < 64 or self.processes < 2:
            raise ValueError("sandbox limits: wall_s > 0, cpu_s >= 1, memory_mb >= 64, processes >= 2")
        if self.file_mb < 1 or self.tmpfs_mb < 1 or self.output_bytes < 1024:
            raise ValueError("sandbox limits: file_mb, tmpfs_mb >= 1 and output_bytes >= 1024")


@dataclass(frozen=True)
class RunResult:
    status: str
    exit_code: int | None  # the program's exit code (128 + n when killed by signal n)
    stdout: bytes
    stderr: bytes
    wall_s: float
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    detail: str = ""  # why a run ended other than by its own exit


class SandboxUnavailable(RuntimeError):
    """bwrap or user namespaces are missing: code verification cannot run here."""


def bwrap_path(bwrap: str | None = None) -> str | None:
    """The bwrap binary: ``bwrap`` (config ``code_verify.bwrap``) as given if it is executable, else None;
    without one, ``bwrap`` on PATH."""
    if bwrap is None:
        return shutil.which("bwrap")
    return bwrap if os.access(bwrap, os.X_OK) else None


def bwrap_argv(
    limits: SandboxLimits, file_fds: Mapping[str, int], status_fd: int, bwrap: str | None = None
) -> list[str]:
    """The bwrap command line up to (not including) the program: mounts, namespaces, rlimits."""
    argv = [
        bwrap or shutil.which("bwrap") or "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr",
    ]
    # Debian's merged /usr: the loader and interpreters are reached through these links.
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            argv += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    argv += ["--dev", "/dev", "--size", str(limits.tmpfs_mb << 20), "--tmpfs", WORK_DIR]
    argv += ["--size", str(limits.tmpfs_mb << 20), "--tmpfs", "/tmp"]
    for name, fd in file_fds.items():
        argv += ["--file", str(fd), f"{WORK_DIR}/{name}"]
    argv += [
        "--chdir", WORK_DIR,
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "HOME", WORK_DIR,
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "PYTHONIOENCODING", "utf-8",
        # A fixed hash seed: set and dict-of-str iteration orders, so outputs repeat run to run.
        "--setenv", "PYTHONHASHSEED", "0",
        "--json-status-fd", str(status_fd),
        _PRLIMIT,
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--as={limits.memory_mb << 20}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_mb << 20}",
        "--core=0",
        "--",
    ]
    return argv


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    _write_all(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _classify(exit_code: int | None, killed_for: str, wall_s: float, limits: SandboxLimits) -> tuple[str, str]:
    if killed_for:
        return ("timeout" if killed_for == "wall" else "output_limit"), killed_for
    if exit_code is None:
        return "sandbox_error", "bwrap ended before the program started"
    if exit_code == 0:
        return "ok", ""
    if exit_code > 128:
        number = exit_code - 128
        # CPU rlimit: SIGXCPU at the soft limit, SIGKILL at the hard one a second later. A SIGKILL
        # sooner than the CPU limit could be reached came from somewhere else (the program itself).
        if number == signal.SIGXCPU or (number == signal.SIGKILL and wall_s >= limits.cpu_s):
            return "timeout", f"killed by {signal.Signals(number).name} (CPU limit)"
        if number == signal.SIGXFSZ:
            return "output_limit", "SIGXFSZ (file size limit)"
        if number in {s.value for s in signal.Signals}:
            return "signal", f"killed by {signal.Signals(number).name}"
    return "exit", f"exit code {exit_code}"


def _kill(process: subprocess.Popen[bytes], child_pid: int | None) -> None:
    # The namespace's init first: its death makes the kernel kill the whole pid namespace and
    # lets bwrap reap it. Killing bwrap first would orphan the namespace (zombies under pid 1).
    if child_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_in_sandbox(
    argv: Sequence[str],
    *,
    files: Mapping[str, bytes | str] | None = None,
    stdin: bytes = b"",
    limits: SandboxLimits = SandboxLimits(),
    bwrap: str | None = None,
) -> RunResult:
    """Run ``argv`` (paths as seen inside the sandbox) in a fresh sandbox; ``files`` land in /work.

    ``bwrap``: the bubblewrap binary (None: ``bwrap`` on PATH)."""
    fds = {name: _memfd(name, data.encode() if isinstance(data, str) else data) for name, data in (files or {}).items()}
    stdin_fd = _memfd("stdin", stdin)
    status_read, status_write = os.pipe()
    _become_subreaper()
    started = time.monotonic()
    # Root would make the process rlimit void: run bwrap (and so the sandbox) as nobody.
    identity = {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []} if os.geteuid() == 0 else {}
    try:
        process = subprocess.Popen(
            [*bwrap_argv(limits, fds, status_write, bwrap), *argv],
            stdin=stdin_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(*fds.values(), status_write),
            start_new_session=True,  # its own process group: the wall-clock kill takes all of it
            env={"PATH": "/usr/bin:/bin"},
            **identity,  # type: ignore[arg-type]
        )
    except OSError as error:
        return RunResult("sandbox_error", None, b"", b"", 0.0, detail=f"cannot start bwrap: {error}")
    finally:
        for fd in (*fds.values(), stdin_fd, status_write):
            os.close(fd)
    with process:
        return _watch(process, status_read, limits, started)


@dataclass
class _Streams:
    buffers: dict[int, bytearray]
    truncated: dict[int, bool]
    status_text: bytearray
    killed_for: str = ""  # "wall" or "output cap" when this side stopped the run


def _pump(process: subprocess.Popen[bytes], status_read: int, limits: SandboxLimits, deadline: float) -> _Streams:
    """Read stdout, stderr (up to the cap) and bwrap's status until all close, the cap or the deadline."""
    assert process.stdout is not None and process.stderr is not None
    fds = (process.stdout.fileno(), process.stderr.fileno())
    streams = _Streams({fd: bytearray() for fd in fds}, {fd: False for fd in fds}, bytearray())
    with selectors.DefaultSelector() as selector:
        for fd in (*fds, status_read):
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and not streams.killed_for:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                streams.killed_for = "wall"
                break
            for key, _ in selector.select(timeout=remaining):
                fd = int(key.fd)
                chunk = os.read(fd, _READ_BYTES)
                if not chunk:
                    selector.unregister(fd)
                elif fd == status_read:
                    streams.status_text += chunk
                else:
                    room = limits.output_bytes - len(streams.buffers[fd])
                    streams.buffers[fd] += chunk[: max(0, room)]
                    if len(chunk) > room:
                        streams.truncated[fd] = True
                        streams.killed_for = "output cap"
    return streams


def _watch(process: subprocess.Popen[bytes], status_read: int, limits: SandboxLimits, started: float) -> RunResult:
    deadline = started + limits.wall_s
    try:
        streams = _pump(process, status_read, limits, deadline)
        if streams.killed_for:
            _kill(process, _child_pid(streams.status_text))
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            streams.killed_for = streams.killed_for or "wall"
            _kill(process, _child_pid(streams.status_text))
            process.wait()
        # Anything still in the group after bwrap ended (there should be nothing) goes too.
        _kill(process, None)
        streams.status_text += _drain(status_read)
        _reap(_child_pid(streams.status_text))
    finally:
        os.close(status_read)
    wall = time.monotonic() - started
    exit_code = _exit_code(streams.status_text)
    status, detail = _classify(exit_code, streams.killed_for, wall, limits)
    assert process.stdout is not None and process.stderr is not None
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    if status == "sandbox_error":
        detail = f"{detail}: {bytes(streams.buffers[err_fd][-500:]).decode(errors='replace').strip()}"
    if streams.killed_for == "wall":
        detail = f"wall clock {limits.wall_s:g} s"
    elif streams.killed_for:
        detail = f"output over {limits.output_bytes} bytes"
    return RunResult(
        status,
        exit_code,
        bytes(streams.buffers[out_fd]),
        bytes(streams.buffers[err_fd]),
        round(wall, 4),
        streams.truncated[out_fd],
        streams.truncated[err_fd],
        detail,
    )


_subreaper_pid = 0


def _become_subreaper() -> None:
    # bwrap exits without waiting for the namespace's init, which would sit as a zombie under
    # pid 1 until that reaps it; as a subreaper this process gets it and reaps it itself.
    global _subreaper_pid
    if _subreaper_pid != os.getpid():
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _subreaper_pid = os.getpid()


def _reap(pid: int | None) -> None:
    if pid is None:
        return
    for _ in range(100):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not ours (no subreaper) or already reaped
        if done:
            return
        time.sleep(0.01)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _drain(fd: int) -> bytes:
    data = bytearray()
    try:
        while chunk := os.read(fd, _READ_BYTES):
            data += chunk
    except BlockingIOError:
        pass
    return bytes(data)


def json_objects(text: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines output; other lines (a program's own prints) are skipped."""
    records = []
    for line in bytes(text).decode(errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _child_pid(text: bytes) -> int | None:
    for record in json_objects(text):
        if isinstance(record.get("child-pid"), int):
            return int(record["child-pid"])  # type: ignore[arg-type]
    return None


def _exit_code(text: bytes) -> int | None:
    for record in json_objects(text):
        if isinstance(record.get("exit-code"), int):
            return int(record["exit-code"])  # type: ignore[arg-type]
    return None


@lru_cache(maxsize=4)
def sandbox_problem(bwrap: str | None = None) -> str | None:
    """None when sandboxed runs work in this process's environment, else what is missing.

    ``bwrap``: the binary config names (``code_verify.bwrap``); None: ``bwrap`` on PATH."""
    binary = bwrap_path(bwrap)
    if binary is None:
        where = "on PATH" if bwrap is None else f"at {bwrap} (code_verify.bwrap)"
        return (
            f"bubblewrap (bwrap) is not installed {where}: install it (`make setup` runs apt-get install -y "
            "bubblewrap) or set code_verify.mode: external (code verdicts from outside)"
        )
    for path in (SANDBOX_PYTHON, _PRLIMIT):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: the sandbox runs programs with Debian's python3 and util-linux prlimit"
    probe = run_in_sandbox(
        [SANDBOX_PYTHON, "-I", "-S", "-c", "print(6 * 7)"], limits=SandboxLimits(wall_s=10.0), bwrap=binary
    )
    if probe.status != "ok" or probe.stdout.strip() != b"42":
        return (
            "bwrap cannot start a sandbox here (user namespaces may be disabled): "
            f"{probe.status} {probe.detail or probe.stderr[-300:].decode(errors='replace')}".strip()
            + "; set code_verify.mode: external to take code verdicts from outside"
        )
    return None


def sandbox_available(bwrap: str | None = None) -> bool:
    return sandbox_problem(bwrap) is None


def require_sandbox(bwrap: str | None = None) -> None:
    """Raise SandboxUnavailable with the reason when sandboxed runs cannot work here."""
    problem = sandbox_problem(bwrap)
    if problem is not None:
        raise SandboxUnavailable(problem)
