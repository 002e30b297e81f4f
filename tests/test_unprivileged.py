"""pyinit as uid 65534 (nobody) in its namespace: still a subreaper (orphans come to it),
still forwards and reaps, tears down, and has nothing to warn about."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from helpers import (
    TIMEOUT,
    alive,
    in_namespace_audited,
    kill_namespace,
    namespace_processes,
    read_line,
    survivors,
    wait_for,
    zombies,
)

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
SCRIPT = ("i=0; while [ $i -lt 200 ]; do (: &); i=$((i+1)); done; "
          "(sleep 999 &); "
          "trap 'echo got-term; exit 9' TERM; echo ready; sleep 1000 & wait")


def test_as_nobody(pyinit, role, start):
    run = start(in_namespace_audited([*NOBODY, *pyinit, "--", "sh", "-c", SCRIPT], role))
    try:
        _as_nobody(run)
    finally:
        kill_namespace(run)


def _as_nobody(run) -> None:
    assert read_line(run.proc.stdout) == b"ready\n"
    pyinit_pid = run.pyinit_pid
    assert psutil.Process(pyinit_pid).uids().real == 65534

    def adopted() -> list[psutil.Process]:
        found = []
        for process in psutil.Process(pyinit_pid).children():
            try:
                if process.cmdline() == ["sleep", "999"]:
                    found.append(process)
            except psutil.Error:
                pass
        return found

    # the double-forked orphan's parent is pyinit: the subreaper flag took as nobody too
    wait_for(lambda: len(adopted()) == 1, 10, "the orphan to be adopted by pyinit")
    wait_for(lambda: not zombies(namespace_processes(run)), 10, "every orphan reaped")
    run.signal(signal.SIGTERM)
    out, err = run.communicate()
    assert out == b"got-term\n"
    assert run.proc.returncode == 9
    assert survivors(err) == []  # the adopted orphan was torn down
    assert err == b""  # no warning (subreaper worked), nothing else


# --- a descendant pyinit may not signal --------------------------------------------------------

# A setuid-root copy of python: as nobody it runs with euid 0 and makes itself fully root, so
# pyinit (nobody) gets EPERM signalling it, as with a child that ran sudo or su.
BECOME_ROOT = "import os, sys, time; os.setresuid(0, 0, 0); os.write(1, b'ready\\n'); "


@pytest.fixture(scope="module")
def setuid_python():
    directory = Path(tempfile.mkdtemp(prefix="pyinit-suid-", dir="/var/tmp"))
    try:
        directory.chmod(0o755)
        python = directory / "python3"
        shutil.copy(os.path.realpath(sys.executable), python)
        python.chmod(0o4755)
        if os.statvfs(directory).f_flag & os.ST_NOSUID:
            pytest.skip("/var/tmp is mounted nosuid")
        yield str(python)
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("single", [False, True])
def test_signal_pyinit_may_not_send_is_not_fatal(pyinit, start, setuid_python, single):
    child = BECOME_ROOT + "sys.stdin.readline(); sys.exit(5)"
    run = start(in_namespace_audited(
        [*NOBODY, *pyinit, *(["-c"] if single else []), "--", setuid_python, "-c", child],
        "subreaper"), stdin=subprocess.PIPE)
    try:
        assert read_line(run.proc.stdout) == b"ready\n"
        run.signal(signal.SIGUSR1)
        warning = read_line(run.proc.stderr)
        assert b"SIGUSR1" in warning and b"permission denied" in warning
        assert alive(run.pyinit_pid)
        _, err = run.proc.communicate(b"\n", timeout=TIMEOUT)
        assert run.proc.returncode == 5, err
        assert b"Traceback" not in err
    finally:
        kill_namespace(run)


def test_teardown_with_a_descendant_pyinit_may_not_signal(pyinit, role, start, setuid_python):
    """The main child leaves a root escapee behind: pyinit warns and exits (no traceback, no
    hang); as PID 1 its exit takes the namespace down, as subreaper the escapee outlives it."""
    escapee = BECOME_ROOT + "time.sleep(1000)"
    script = f"({shlex.quote(setuid_python)} -c {shlex.quote(escapee)} &); read line; exit 3"
    run = start(in_namespace_audited([*NOBODY, *pyinit, "-t", "20", "--", "sh", "-c", script],
                                     role), stdin=subprocess.PIPE)  # `read line` waits for us
    try:
        assert read_line(run.proc.stdout) == b"ready\n"
        began = time.monotonic()
        _, err = run.proc.communicate(b"\n", timeout=TIMEOUT)
        assert run.proc.returncode == 3, err
        assert time.monotonic() - began < 15  # no waiting for what cannot be signalled
        text = err.decode()
        assert "Traceback" not in text
        assert "permission denied" in text
        if role == "subreaper":
            assert len(survivors(err)) == 1 and "python3" in survivors(err)[0]
    finally:
        kill_namespace(run)
