"""The bwrap sandbox: plain runs, limits, and a hostile set that must end right and leave nothing behind.

Each hostile program ends with the expected status within its limits (2 s wall, 2 s CPU);
the host file, the secret and this (test) process are unaffected; no process of the sandbox
uid is left afterwards. Skipped where bwrap cannot start a sandbox.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sftmix.transforms.sandbox import (
    SANDBOX_PYTHON,
    SANDBOX_UID,
    RunResult,
    SandboxLimits,
    SandboxUnavailable,
    require_sandbox,
    run_in_sandbox,
    sandbox_problem,
)

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox: {sandbox_problem()}")

LIMITS = SandboxLimits(wall_s=2.0, cpu_s=2, memory_mb=512, processes=16, file_mb=4, output_bytes=1 << 16)
# Start-up of a loaded 2-core machine on top of the wall clock: the bound a run must end within.
SLACK_S = 3.0


def run_python(source: str, stdin: bytes = b"", limits: SandboxLimits = LIMITS) -> RunResult:
    return run_in_sandbox([SANDBOX_PYTHON, "-I", "-S", "main.py"], files={"main.py": source}, stdin=stdin,
                          limits=limits)


def leftovers() -> list[str]:
    """Processes left by this process's sandbox runs.

    This process is the runs' child subreaper: a sandbox process that outlived its parent would
    be re-parented here, so any leftover is a child of ours running as the sandbox uid (other
    children of a test run, the Spark JVM or the pool's forkserver, run as us).
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "-1").split()[0])
        if int(fields.get("PPid", "0")) == os.getpid() and (uid == SANDBOX_UID or os.geteuid() != 0):
            found.append(f"{entry.name} {fields.get('Name', '').strip()} {fields.get('State', '').strip()}")
    return found


@pytest.fixture
def no_leftovers() -> object:
    yield None
    if os.geteuid() != 0:
        return  # the sandbox then runs as our own uid, like our other children
    assert leftovers() == []


def test_plain_run_stdin_files_and_environment(no_leftovers: object) -> None:
    result = run_python(
        "import os, sys\nprint(sys.stdin.read().upper(), os.getcwd(), sorted(os.listdir('.')), "
        "os.environ.get('PYTHONHASHSEED'), os.path.exists('/proc/1'))",
        stdin=b"abc",
    )
    assert result.status == "ok" and result.exit_code == 0
    assert result.stdout.decode().split() == ["ABC", "/work", "['main.py']", "0", "False"]
    assert run_python("raise SystemExit(3)").status == "exit"
    assert run_python("raise SystemExit(3)").exit_code == 3
    crashed = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert (crashed.status, crashed.exit_code) == ("signal", 128 + 11)


def test_no_host_descriptor_reaches_the_program(no_leftovers: object) -> None:
    # bwrap's status pipe and the files' memfds stay outside: a program could otherwise forge its status.
    result = run_python(
        "import os\nfor fd in range(3, 256):\n    try:\n        os.fstat(fd)\n        print(fd)\n"
        "    except OSError:\n        pass\n"
    )
    assert (result.status, result.stdout) == ("ok", b"")


def test_network_is_unreachable(no_leftovers: object) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    program = f"""
import socket
for address in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("10.0.0.1", 22)]:
    try:
        socket.create_connection(address, timeout=1).close()
        print("connected", address)
    except OSError as error:
        print("blocked", address, error.errno)
try:
    socket.getaddrinfo("example.com", 80)
    print("resolved")
except OSError:
    print("no dns")
"""
    try:
        result = run_python(program)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing from the sandbox reached the host's loopback
    finally:
        listener.close()
    lines = result.stdout.decode().splitlines()
    assert result.status == "ok" and len(lines) == 4
    assert all(line.startswith("blocked") for line in lines[:3]) and lines[3] == "no dns"


def test_writes_outside_the_work_dir_do_not_reach_the_host(tmp_path: Path, no_leftovers: object) -> None:
    host_file = tmp_path / "host.txt"
    host_file.write_text("original")
    marker = f"sftmix-sandbox-{os.getpid()}"
    program = f"""
import os
for path in [{str(host_file)!r}, "/usr/{marker}", "/etc/passwd", "/{marker}", "/tmp/{marker}"]:
    try:
        with open(path, "w") as handle:
            handle.write("overwritten")
        print("wrote", path)
    except OSError as error:
        print("refused", path, type(error).__name__)
"""
    result = run_python(program)
    assert result.status == "ok"
    out = result.stdout.decode()
    assert f"refused {host_file}" in out and f"refused /usr/{marker}" in out and "refused /etc/passwd" in out
    # The sandbox's own / and /tmp are private tmpfs: writable inside, gone with the run.
    assert host_file.read_text() == "original"
    assert not Path(f"/tmp/{marker}").exists() and not Path(f"/{marker}").exists()
    assert not Path(f"/usr/{marker}").exists()


def test_a_secret_outside_the_sandbox_cannot_be_read(tmp_path: Path, no_leftovers: object) -> None:
    secret = tmp_path / "secret.txt"
    token = f"TOKEN-{os.getpid()}-{time.time_ns()}"
    secret.write_text(token)
    program = f"""
import os
for path in [{str(secret)!r}, "/proc/1/environ", "/root/.bash_history", "/etc/shadow"]:
    try:
        print("read", path, open(path).read())
    except OSError as error:
        print("refused", path, type(error).__name__)
seen = []
for folder, folders, files in os.walk("/"):
    if folder == "/":
        folders.remove("usr")  # the read-only system: big, and holds no host data
    seen += [os.path.join(folder, f) for f in files if "secret" in f]
print("found", seen, os.listdir("/"))
"""
    result = run_python(program)
    assert result.status == "ok"
    assert token not in result.stdout.decode() and "read " not in result.stdout.decode()
    assert "found []" in result.stdout.decode()


def test_fork_bomb_is_contained_and_cleaned_up(no_leftovers: object) -> None:
    started = time.monotonic()
    result = run_python(
        "import os\nforks = 0\nwhile True:\n    try:\n        os.fork()\n        forks += 1\n"
        "    except OSError:\n        pass\n"
    )
    assert result.status == "timeout"
    assert time.monotonic() - started < LIMITS.wall_s + SLACK_S
    # The host can still start processes: the bomb hit its own namespace's limit, not ours.
    assert subprocess.run(["true"], check=False).returncode == 0


def test_fork_bomb_hits_the_process_limit() -> None:
    # Counting what fork allows: the limit binds (root's exemption is gone: the sandbox runs as nobody).
    program = (
        "import os, time\nchildren = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n"
        "    children += 1\nprint(children, flush=True)\nos._exit(0)\n"
    )
    result = run_python(program)
    assert result.status == "ok"
    assert int(result.stdout) < LIMITS.processes


def test_endless_loop_times_out(no_leftovers: object) -> None:
    started = time.monotonic()
    result = run_python("while True:\n    pass\n")
    assert result.status == "timeout"
    assert time.monotonic() - started < LIMITS.wall_s + SLACK_S


def test_ten_gigabytes_is_a_memory_error(no_leftovers: object) -> None:
    result = run_python("block = bytearray(10 * 1024**3)\n")
    assert result.status == "exit" and b"MemoryError" in result.stderr
    assert result.wall_s < LIMITS.wall_s


def test_stdout_flood_is_cut_at_the_cap(no_leftovers: object) -> None:
    started = time.monotonic()
    result = run_python("import sys\nchunk = 'x' * 65536\nfor _ in range(1600):\n    sys.stdout.write(chunk)\n")
    assert result.status == "output_limit" and result.stdout_truncated
    assert len(result.stdout) == LIMITS.output_bytes
    assert time.monotonic() - started < LIMITS.wall_s + SLACK_S
    # The same flood into a file stops at the file-size rlimit.
    to_file = run_python("with open('big', 'w') as f:\n    f.write('x' * (100 * 1024 * 1024))\n")
    assert to_file.status == "exit" and b"File too large" in to_file.stderr


def test_killing_the_parent_leaves_the_host_alive(no_leftovers: object) -> None:
    program = (
        "import os, signal\nfor target in (os.getppid(), 1, -1):\n    try:\n"
        "        os.kill(target, signal.SIGKILL)\n        print('sent', target)\n"
        "    except OSError as error:\n        print('refused', target, type(error).__name__)\nprint('alive')\n"
    )
    parent = os.getppid()
    result = run_python(program)
    # Only the namespace's init is visible, and it ignores signals from inside; nothing else to hit.
    assert result.status == "ok" and result.stdout.decode().splitlines()[-1] == "alive"
    assert os.getppid() == parent
    suicide = run_python("import os, signal\nos.killpg(0, signal.SIGKILL)\n")
    assert suicide.status == "signal"


def test_missing_bwrap_is_reported_not_worked_around(monkeypatch: pytest.MonkeyPatch) -> None:
    import sftmix.transforms.sandbox as sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_problem.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            require_sandbox()
    finally:
        monkeypatch.undo()
        sandbox.sandbox_problem.cache_clear()
    assert sandbox_problem() is None


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SandboxLimits(wall_s=0)
    with pytest.raises(ValueError):
        SandboxLimits(processes=1)
