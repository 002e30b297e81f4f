"""Issue 2, behaviours 2, 3 and 8: how the main child is started. A new session with PATH
lookup; the signal mask and ignored signals pyinit got (PIPE and XFSZ back to default); the
controlling terminal when stdin is a TTY; 127/126 on exec failure; environment, cwd, rlimits
and stdio exactly as pyinit got them, with nothing interposed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import subprocess
import sys
import time

import psutil
import pytest
from helpers import (
    TIMEOUT,
    alive,
    child_of,
    in_namespace,
    in_namespace_audited,
    kill_namespace,
    read_line,
    sigset,
    state,
    survivors,
    wait_for,
)

# Starts the rest of its argv with an exact signal state: every disposition default but the
# ignored ones named in $IGNORE, the mask exactly $BLOCK (numbers, comma-separated).
WITH_SIGNALS = r"""
import os, signal, sys
for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
    signal.signal(sig, signal.SIG_DFL)
for sig in filter(None, os.environ.pop("IGNORE").split(",")):
    signal.signal(int(sig), signal.SIG_IGN)
block = {int(sig) for sig in os.environ.pop("BLOCK").split(",") if sig}
signal.pthread_sigmask(signal.SIG_SETMASK, block)
os.execvp(sys.argv[1], sys.argv[1:])
"""


def child_status(out: bytes) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in out.decode().splitlines() if ":\t" in line)


@pytest.mark.parametrize("ignore", [
    {signal.SIGHUP, signal.SIGUSR2, signal.SIGPIPE, signal.SIGXFSZ},
    {signal.SIGHUP, signal.SIGCHLD},  # an ignored SIGCHLD must not make pyinit lose the status
    set(),
], ids=["hup-usr2-pipe-xfsz", "hup-chld", "none"])
def test_child_gets_mask_and_ignored_signals_pyinit_got(pyinit, role, start, ignore):
    block = {signal.SIGUSR1, signal.SIGINT, signal.SIGRTMIN + 1}
    env = {**os.environ, "IGNORE": ",".join(map(str, ignore)), "BLOCK": ",".join(map(str, block))}
    # cat is the child itself (a shell would reset the mask); its exit status 1 (for the
    # missing second file) shows pyinit kept the status even with SIGCHLD ignored at start
    command = [sys.executable, "-c", WITH_SIGNALS, *pyinit, "--",
               "cat", "/proc/self/status", "/nonexistent-file"]
    run = start(in_namespace(command, role), env=env)
    out, err = run.communicate()
    assert run.proc.returncode == 1
    assert b"pyinit" not in err
    status = child_status(out)
    assert sigset(status["SigBlk"]) == block
    assert sigset(status["SigIgn"]) == ignore - {signal.SIGPIPE, signal.SIGXFSZ}
    assert sigset(status["SigCgt"]) == set()


def test_nohup_still_ignores_hup(pyinit, role, start):
    run = start(in_namespace(["nohup", *pyinit, "--", "cat", "/proc/self/status"], role))
    out, _ = run.communicate()
    assert run.proc.returncode == 0
    assert signal.SIGHUP in sigset(child_status(out)["SigIgn"])
    assert sigset(child_status(out)["SigBlk"]) == set()


def test_new_session_and_path_lookup(pyinit, role, start, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "pyinit-test-tool"
    tool.write_text('#!/bin/sh\necho "args $*"\nexec cat /proc/self/stat\n')
    tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = start(in_namespace([*pyinit, "--", "pyinit-test-tool", "a", "b c"], role), env=env)
    out, err = run.communicate()
    assert run.proc.returncode == 0, err
    first, stat = out.decode().splitlines()
    assert first == "args a b c"
    fields = stat.rsplit(")", 1)[1].split()
    pid = int(stat.split()[0])
    ppid, pgrp, session = map(int, fields[1:4])
    assert session == pid and pgrp == pid
    assert ppid == (1 if role == "pid1" else 2)  # pyinit is PID 2 below the shell
    assert int(fields[4]) == 0  # tty_nr: no controlling terminal without a TTY


@pytest.mark.parametrize(("command", "status"), [
    (["pyinit-no-such-command"], 127),
    (["/nonexistent/dir/cmd"], 127),
    (["/etc/passwd"], 126),  # not executable
    (["/etc"], 126),  # a directory
])
def test_exec_failure(pyinit, role, start, command, status):
    run = start(in_namespace_audited([*pyinit, "--", *command, "arg"], role))
    out, err = run.communicate()
    assert run.proc.returncode == status
    assert out == b""
    text = err.decode()
    assert survivors(err) == []  # the failed child was reaped (no zombie handed to PID 1)
    assert len(text.splitlines()) == 1, text
    assert command[0] in text
    assert "Traceback" not in text


def test_environment_passed_exactly(pyinit, role, start):
    run = start(in_namespace(["env", "-i", "A=1", *pyinit, "--", "/usr/bin/env"], role))
    out, err = run.communicate()
    assert (out, err, run.proc.returncode) == (b"A=1\n", b"", 0)


def test_environment_with_path_and_locale(pyinit, role, start):
    env = ["env", "-i", "PATH=/usr/bin:/bin", "LANG=C", "B=two words", "EMPTY="]
    run = start(in_namespace([*env, *pyinit, "--", "env"], role))
    out, _ = run.communicate()
    assert sorted(out.decode().splitlines()) == sorted(
        ["PATH=/usr/bin:/bin", "LANG=C", "B=two words", "EMPTY="])


def test_cwd_and_rlimits_inherited(pyinit, role, start, tmp_path):
    script = "pwd -P; ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc"
    run = start(in_namespace(["prlimit", "--nofile=321:654", "--core=0:12345", "--",
                              *pyinit, "--", "sh", "-c", script], role), cwd=tmp_path)
    out, err = run.communicate()
    assert run.proc.returncode == 0, err
    cwd, soft_n, hard_n, soft_c, hard_c = out.decode().split()
    assert cwd == os.path.realpath(tmp_path)
    assert (soft_n, hard_n) == ("321", "654")
    # ulimit -c counts 512-byte blocks in dash (1024 in bash): compare via prlimit's bytes
    assert soft_c == "0" and hard_c in ("12345", str(12345 // 512), str(12345 // 1024))


def test_stdio_is_the_same_files_and_nothing_else_leaks(pyinit, role, start, tmp_path):
    stdin_path, stderr_path = tmp_path / "in", tmp_path / "err"
    stdin_path.write_text("")
    with open(stdin_path, "rb") as stdin, open(stderr_path, "wb") as stderr:
        run = start(in_namespace([*pyinit, "--", "sh", "-c", "echo ready; exec sleep 1000"],
                                 role), stdin=stdin, stderr=stderr)
    assert read_line(run.proc.stdout) == b"ready\n"
    child = child_of(run.pyinit_pid)
    wait_for(lambda: psutil.Process(child).name() == "sleep", what="the child to exec sleep")
    expected = [str(stdin_path), f"pipe:[{os.fstat(run.proc.stdout.fileno()).st_ino}]",
                str(stderr_path)]
    for fd in range(3):
        assert os.readlink(f"/proc/{run.pyinit_pid}/fd/{fd}") == expected[fd]
        assert os.readlink(f"/proc/{child}/fd/{fd}") == expected[fd]
    assert sorted(os.listdir(f"/proc/{child}/fd")) == ["0", "1", "2"]


def test_megabytes_through_stdin_and_stdout(pyinit, role, start):
    data = os.urandom(20_000_000)
    run = start(in_namespace([*pyinit, "--", "cat"], role), stdin=subprocess.PIPE)
    out, err = run.proc.communicate(data, timeout=TIMEOUT)
    assert run.proc.returncode == 0
    assert err == b""
    assert len(out) == len(data)
    assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest()


def test_megabytes_from_head(pyinit, role, start, tmp_path):
    source = tmp_path / "data"
    source.write_bytes(os.urandom(21_000_000))
    run = start(in_namespace([*pyinit, "--", "head", "-c", "20000000", str(source)], role))
    out, _ = run.communicate()
    assert run.proc.returncode == 0
    assert hashlib.sha256(out).digest() == \
        hashlib.sha256(source.read_bytes()[:20_000_000]).digest()


# --- the controlling terminal -------------------------------------------------------------

def read_pty(master: int, want: bytes, timeout: float = TIMEOUT) -> bytes:
    """Everything from the pty until want appears (bounded)."""
    deadline = time.monotonic() + timeout
    seen = b""
    while want not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([master], [], [], remaining)[0]:
            raise AssertionError(f"timed out waiting for {want!r}; got {seen!r}")
        try:
            seen += os.read(master, 4096)
        except OSError:  # EIO: every slave closed
            raise AssertionError(f"terminal closed waiting for {want!r}; got {seen!r}") from None
    return seen


INTERACTIVE = r"""
trap 'echo got-hup' HUP
trap 'echo got-cont' CONT
read -r s < /proc/$$/stat
echo "stat $s"
trap 'echo got-int; exit 3' INT
echo ready
sleep 1000 & wait
"""


def test_child_takes_the_terminal_and_gets_ctrl_c(pyinit, role, start):
    """pyinit started as a session leader on a pty (setsid -c, like a shell's login session):
    the child gets the terminal as its controlling terminal and is its foreground group, so
    Ctrl-C typed on it reaches the child straight from the kernel. The SIGHUP and SIGCONT the
    kernel sends pyinit when it gives the terminal up are pyinit's own doing: never forwarded."""
    master, slave = os.openpty()
    try:
        run = start(in_namespace(["setsid", "-c", *pyinit, "--", "sh", "-c", INTERACTIVE], role),
                    stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        slave = -1
        seen = read_pty(master, b"ready")
        stat = next(line for line in seen.decode().splitlines() if line.startswith("stat "))
        fields = stat.rsplit(")", 1)[1].split()
        pgrp, session, tty_nr, tpgid = map(int, fields[2:6])
        pid = int(stat.split()[1])
        assert session == pid and tty_nr != 0 and tpgid == pgrp == pid
        os.write(master, b"\x03")
        seen += read_pty(master, b"got-int")
        assert run.wait() == 3
        assert b"got-hup" not in seen and b"got-cont" not in seen
    finally:
        if slave >= 0:
            os.close(slave)
        with contextlib.suppress(OSError):
            os.close(master)


def test_closed_stdio_stays_closed(pyinit, role, start):
    """pyinit opens nothing in their place: the child finds fd 0 and 2 closed as pyinit did."""
    closing = ["sh", "-c", 'exec 0<&- 2>&-; exec "$@"', "sh"]
    run = start(in_namespace([*closing, *pyinit, "--", "readlink", "/proc/self/fd/0",
                              "/proc/self/fd/1", "/proc/self/fd/2"], role))
    pipe = f"pipe:[{os.fstat(run.proc.stdout.fileno()).st_ino}]\n".encode()
    out, _ = run.communicate()
    assert out == pipe
    assert run.proc.returncode == 1  # readlink: the other two do not exist


def test_script_without_shebang_runs_with_sh(pyinit, role, start, tmp_path):
    """execvp(3) semantics, as tini and dumb-init have them: ENOEXEC falls back to /bin/sh."""
    script = tmp_path / "no-shebang"
    script.write_text('echo "ran $0 $*"; exit 4\n')
    script.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for command in (str(script), "no-shebang"):
        run = start(in_namespace([*pyinit, "--", command, "a", "b"], role), env=env)
        out, err = run.communicate()
        assert (run.proc.returncode, out, err) == (4, f"ran {script} a b\n".encode(), b"")


def test_fork_failure_is_125(pyinit, role, start):
    """RLIMIT_NPROC of 1 for a uid nothing else runs as: pyinit runs, its fork fails (EAGAIN).
    (Not nobody's: the limit counts every process of the uid, and other tests running beside
    this one under pytest-xdist use it.)"""
    uid = str(100000 + os.getpid())  # a pytest-xdist worker runs one test at a time
    limited = ["prlimit", "--nproc=1", "--", "setpriv", "--reuid", uid, "--regid", uid,
               "--clear-groups"]
    run = start(in_namespace([*limited, *pyinit, "--", "true"], role))
    try:
        _, err = run.communicate()
        assert run.proc.returncode == 125
        assert len(err.splitlines()) == 1 and b"fork" in err, err
    finally:
        kill_namespace(run)  # setpriv cleared the parent-death signal --kill-child relies on


@pytest.mark.parametrize("mode", [[], ["--compat=dumb-init", "-c"]], ids=["own", "dumb-init-c"])
def test_job_control_under_an_interactive_shell(pyinit, start, mode):
    """pyinit as a job of an interactive bash (not a session leader, so its child gets no
    terminal): Ctrl-Z stops pyinit and its child (bash reports the job stopped), fg resumes
    both, and Ctrl-C reaches pyinit, which forwards it: the job ends with 130. The same as
    dumb-init -c, where the child stays in the job's own process group."""
    master, slave = os.openpty()
    try:
        run = start(in_namespace(["setsid", "-c", "bash", "--norc", "--noprofile", "-i"],
                                 "pid1"),
                    stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                    env={**os.environ, "PS1": "$ ", "TERM": "dumb"})
        os.close(slave)
        slave = -1
        os.write(master, b"echo hello\n")
        read_pty(master, b"hello\r\n")
        command = " ".join(pyinit + mode) + " -- sh -c 'echo started; sleep 1000'"
        os.write(master, command.encode() + b"\n")
        read_pty(master, b"started\r\n")
        pyinit_pid = run.pyinit_pid
        child = child_of(pyinit_pid)
        # Ctrl-Z while sh is still vfork()ing sleep would leave sh in D state until its child
        # execs, which the stop prevents: wait until sleep is running.
        wait_for(lambda: [p.name() for p in psutil.Process(child).children()] == ["sleep"],
                 what="sleep to run")
        os.write(master, b"\x1a")  # Ctrl-Z
        read_pty(master, b"Stopped")
        wait_for(lambda: state(pyinit_pid) == "T" and state(child) == "T",
                 what="pyinit and its child to stop")
        os.write(master, b"fg\n")
        wait_for(lambda: state(pyinit_pid) in ("S", "R") and state(child) in ("S", "R"),
                 what="pyinit and its child to resume")
        os.write(master, b"\x03")  # Ctrl-C
        os.write(master, b"echo rc=$?\n")
        assert b"rc=130" in read_pty(master, b"rc=130")
        wait_for(lambda: not alive(pyinit_pid), what="pyinit to exit")
    finally:
        if slave >= 0:
            os.close(slave)
        with contextlib.suppress(OSError):
            os.close(master)
