"""Hostile conditions: a dead or stuck log reader, signal floods, self-inflicted signals, fork and
descriptor exhaustion, memory too tight for psutil, stdio closed. In each, pyinit must keep
reaping, exit with the main child's status and leave nothing behind."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import (
    NAMESPACE,
    REAPED_ORPHAN,
    TIMEOUT,
    in_namespace,
    proc_status,
    read_line,
    wait_for,
    wait_idle,
)

# Marks any forwarded SIGPIPE or SIGXFSZ on stdout: pyinit must never pass its own on.
TRAPPING = "trap 'echo got-PIPE' PIPE; trap 'echo got-XFSZ' XFSZ; "
# Orphans by the hundred: each `sh -c 'sleep 0 &'` leaves its sleep to pyinit. Capped count.
ORPHANS = "i=0; while [ $i -lt {n} ]; do sh -c 'sleep 0 &'; i=$((i+1)); done; "
PIDS = Path("/sys/fs/cgroup/pids")


def test_dead_reader_at_verbose_reaps_and_exits(pyinit, start) -> None:
    """stderr's reader goes away mid-run (a log shipper died): every line after that raises
    SIGPIPE at pyinit. It must not be forwarded, nor starve reaping (it used to loop at 100 % CPU
    forwarding SIGPIPE and logging that it did)."""
    read_end, write_end = os.pipe()
    script = TRAPPING + "read go; " + ORPHANS.format(n=50) + "exit 7"
    running = start(in_namespace([*pyinit, "-v", "--", "sh", "-c", script], "pid1"),
                    stdin=subprocess.PIPE, stderr=write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        assert b"started" in read_line(reader)
    running.proc.stdin.write(b"go\n")
    running.proc.stdin.close()
    assert running.wait() == 7
    assert b"got-" not in running.proc.stdout.read()


def test_dead_reader_from_the_start_default_level(pyinit, start) -> None:
    """A single warning (no /proc of its own namespace at teardown) into a pipe nobody will ever
    read: pyinit still tears down and exits with the child's status."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    no_proc = ["unshare", "--pid", "--fork", "--kill-child"]  # /proc stays the parent's
    script = TRAPPING + "setsid sleep 30 & sleep 30 & exit 3"
    running = start([*no_proc, *pyinit, "-t", "1", "--", "sh", "-c", script], stderr=write_end)
    os.close(write_end)
    assert running.wait() == 3
    assert b"got-" not in running.proc.stdout.read()


def test_stuck_reader_never_blocks_and_reports_drops(pyinit, start) -> None:
    """stderr is a pipe nobody reads: once it is full, lines are dropped, not waited for; when the
    reader catches up, the next line is preceded by how many were lost."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, 1031, 4096)  # F_SETPIPE_SZ: one page fills after ~70 lines
    script = ORPHANS.format(n=300) + "echo made; read go; " + REAPED_ORPHAN + "exit 4"
    running = start(in_namespace([*pyinit, "-v", "--", "sh", "-c", script], "pid1"),
                    stdin=subprocess.PIPE, stderr=write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        assert read_line(running.proc.stdout) == b"made\n"  # pyinit kept reaping meanwhile
        os.set_blocking(read_end, False)
        backlog = reader.read() or b""
        running.proc.stdin.write(b"go\n")
        running.proc.stdin.close()
        assert running.wait() == 4
        os.set_blocking(read_end, True)
        rest = reader.read()
    assert backlog.endswith(b"\n")  # only whole lines: a pipe takes a short write whole or not
    assert b"earlier lines were dropped: stderr was not writable" in rest
    assert rest.count(b"pyinit: reaped orphan") >= 1


def test_signal_flood_does_not_starve_reaping(pyinit, start) -> None:
    """HUP (1) is taken before CHLD (17) by sigwaitinfo: a flood that outlasts the child must
    still let pyinit see the child's exit and leave."""
    script = "trap '' HUP; echo up; read go; " + ORPHANS.format(n=20) + "sleep 0.3; exit 5"
    running = start(in_namespace([*pyinit, "--", "sh", "-c", script], "pid1"),
                    stdin=subprocess.PIPE)
    assert read_line(running.proc.stdout) == b"up\n"
    flood = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        "end = time.monotonic() + 20\n"
        "while time.monotonic() < end:\n"
        "    try: os.kill(int(sys.argv[1]), 1)\n"
        "    except ProcessLookupError: break\n"), str(running.pyinit_pid)])
    try:
        running.proc.stdin.write(b"go\n")  # the child exits only once the flood is on
        running.proc.stdin.close()
        started = time.monotonic()
        assert running.wait(timeout=15) == 5
        assert flood.poll() is None or time.monotonic() - started < 15
    finally:
        flood.kill()
        flood.wait(TIMEOUT)


def test_sigxfsz_from_its_own_log_is_not_forwarded(pyinit, start, tmp_path) -> None:
    """stderr is a file already at RLIMIT_FSIZE: each line pyinit writes raises SIGXFSZ at it."""
    log = tmp_path / "stderr"
    log.write_bytes(b"x" * 4096)
    script = TRAPPING + ORPHANS.format(n=5) + "exit 6"
    with open(log, "ab") as stderr:
        running = start(in_namespace(["prlimit", "--fsize=4096", *pyinit, "-v", "--",
                                      "sh", "-c", script], "pid1"), stderr=stderr)
        assert running.wait() == 6
    assert b"got-" not in running.proc.stdout.read()
    assert log.stat().st_size == 4096


@pytest.fixture
def pids_cgroup():
    """A pids cgroup (v1) of the test's own, removed afterwards."""
    if not (PIDS / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 pids controller at /sys/fs/cgroup/pids")
    path = PIDS / f"pyinit-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
        wait_for(lambda: not (path / "cgroup.procs").read_text().strip(), what="cgroup empty")
        path.rmdir()


def test_fork_fails_at_start_under_pids_limit(pyinit, start, pids_cgroup) -> None:
    (pids_cgroup / "pids.max").write_text("1")
    join = f'echo $$ > {pids_cgroup}/cgroup.procs && exec "$@"'
    running = start([*NAMESPACE, "sh", "-c", join, "sh", *pyinit, "--", "true"])
    _, err = running.communicate()
    assert running.proc.returncode == 125
    assert err.decode().splitlines() == ["pyinit: cannot fork: Resource temporarily unavailable"]


def test_teardown_under_pids_limit(pyinit, start, pids_cgroup) -> None:
    """Nothing may fork any more when the main child exits: teardown still stops everything, a
    TERM-ignoring escapee with KILL after the grace period."""
    join = f'echo $$ > {pids_cgroup}/cgroup.procs && exec "$@"'
    script = ("setsid sh -c 'trap \"\" TERM; exec sleep 60' & sleep 60 & "
              "echo ready; read go; exit 9")
    running = start([*NAMESPACE, "sh", "-c", join, "sh", *pyinit, "-t", "0.5", "--",
                     "sh", "-c", script], stdin=subprocess.PIPE)
    assert read_line(running.proc.stdout) == b"ready\n"
    current = (pids_cgroup / "pids.current").read_text().strip()
    (pids_cgroup / "pids.max").write_text(current)
    running.proc.stdin.write(b"go\n")
    running.proc.stdin.close()
    assert running.wait() == 9
    assert not (pids_cgroup / "cgroup.procs").read_text().strip()


@pytest.mark.parametrize("limit", ["nofile", "as"])
def test_teardown_when_proc_or_psutil_is_out_of_reach(pyinit, start, limit) -> None:
    """The limit is put on the running pyinit: with no descriptor left it cannot read /proc or
    open pidfds; with its address space capped it cannot load psutil. As PID 1 it falls back to
    kill -1, and the escapees (one in a session of its own) are stopped all the same."""
    script = ("setsid sh -c 'trap \"\" TERM; exec sleep 60' & sleep 60 & "
              "echo ready; read go; exit 8")
    # psutil is what the address-space limit keeps out: on the cgroup path it is never needed
    env = {**os.environ, "PYINIT_TEST_DISABLE": "cgroup1,cgroup2"} if limit == "as" else None
    running = start(in_namespace([*pyinit, "-t", "0.5", "--", "sh", "-c", script], "pid1"),
                    stdin=subprocess.PIPE, env=env)
    assert read_line(running.proc.stdout) == b"ready\n"
    pid = running.pyinit_pid
    wait_idle(pid)  # its exec error pipe closed: counted, it would leave one descriptor spare
    if limit == "nofile":
        value = str(len(os.listdir(f"/proc/{pid}/fd")))
    else:
        value = str(int(proc_status(pid)["VmSize"].split()[0]) * 1024 + (1 << 20))
    subprocess.run(["prlimit", f"--pid={pid}", f"--{limit}={value}"], check=True)
    _, err = running.proc.communicate(b"go\n", timeout=TIMEOUT)
    assert running.proc.returncode == 8
    assert b"cannot walk the process tree" in err
    assert b"Traceback" not in err


def test_teardown_with_few_descriptors_spare(pyinit, start) -> None:
    """More TERM-ignoring processes than pyinit has descriptors to spare: the pidfds it keeps to
    wake on must leave room to read /proc and cgroup.procs, or the processes past the limit are
    skipped as if gone and the next scan fails into the fallback. Capped at 100 processes."""
    script = ("i=0; while [ $i -lt 100 ]; do (trap '' TERM; exec sleep 60) & i=$((i+1)); done; "
              "echo ready; read go; exit 8")
    running = start(in_namespace([*pyinit, "-t", "0.5", "--", "sh", "-c", script], "pid1"),
                    stdin=subprocess.PIPE)
    assert read_line(running.proc.stdout) == b"ready\n"
    pid = running.pyinit_pid
    wait_idle(pid)
    spare = len(os.listdir(f"/proc/{pid}/fd")) + 16
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={spare}"], check=True)
    _, err = running.proc.communicate(b"go\n", timeout=TIMEOUT)
    assert running.proc.returncode == 8
    assert err == b"", err  # no fallback, no warning


def test_stdio_closed_at_start(pyinit, start, tmp_path) -> None:
    """pyinit's own descriptors (error pipe, log) never land on 0-2: the child sees them closed,
    as pyinit got them, and pyinit at -v writes nowhere."""
    report = tmp_path / "fds"
    probe = (f'exec 9>{report}; for fd in 0 1 2; do [ -L /proc/$$/fd/$fd ] && echo $fd >&9; '
             'done; exit 0')
    closed = 'exec 0<&- 1>&- 2>&- "$@"'
    running = start(in_namespace(["sh", "-c", closed, "sh", *pyinit, "-v", "--",
                                  "sh", "-c", probe], "pid1"))
    out, err = running.communicate()
    assert running.proc.returncode == 0
    assert report.read_text() == ""
    assert out == err == b""


@pytest.mark.parametrize("open_fds", ["0", "2"])
def test_only_some_stdio_closed(pyinit, start, tmp_path, open_fds) -> None:
    report = tmp_path / "fds"
    probe = (f'exec 9>{report}; for fd in 0 1 2; do [ -L /proc/$$/fd/$fd ] && echo $fd >&9; '
             'done; exit 0')
    close = " ".join(f"{fd}>&-" for fd in "012" if fd not in open_fds)
    running = start(in_namespace(["sh", "-c", f'exec {close} "$@"', "sh", *pyinit, "-v", "--",
                                  "sh", "-c", probe], "pid1"))
    _, err = running.communicate()
    assert running.proc.returncode == 0
    assert report.read_text().split() == list(open_fds)
    if "2" in open_fds:
        assert b"pyinit: started" in err


def test_log_lines_escape_control_characters(pyinit, start) -> None:
    running = start(in_namespace([*pyinit, "-v", "--", "sh", "-c", "exit 0", "a\nb\x1b"],
                                 "pid1"))
    _, err = running.communicate()
    started = [line for line in err.decode().splitlines() if "started" in line]
    assert len(started) == 1 and "a\\nb\\x1b" in started[0]
