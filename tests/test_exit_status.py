"""Issue 2, behaviour 7: pyinit exits with the main child's code, 128+N when it died from
signal N, and 0 for codes given to -e / PYINIT_EXPECT_EXIT; the parent-death signal (-p) is
taken and forwarded like any other."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

import psutil
import pytest
from helpers import NAMESPACE, TIMEOUT, alive, find_pyinit, in_namespace, read_line, wait_for

pytestmark = pytest.mark.usefixtures("teardown_path")  # every teardown path: see conftest


@pytest.mark.parametrize(("script", "status"), [
    ("exit 0", 0), ("exit 1", 1), ("exit 42", 42), ("exit 255", 255),
    ("kill -TERM $$", 128 + signal.SIGTERM),
    ("kill -KILL $$", 128 + signal.SIGKILL),
    ("ulimit -c 0; kill -SEGV $$", 128 + signal.SIGSEGV),
])
def test_status_of_main_child(pyinit, role, start, script, status):
    run = start(in_namespace([*pyinit, "--", "sh", "-c", script], role))
    _, err = run.communicate()
    assert run.proc.returncode == status
    assert err == b""


@pytest.mark.parametrize(("args", "env", "script", "status"), [
    (["-e", "3"], None, "exit 3", 0),
    (["-e", "3", "-e", "4"], None, "exit 4", 0),
    (["-e", "3"], None, "exit 5", 5),
    (["-e", "143"], None, "kill -TERM $$", 0),
    (["--expect-exit=0"], None, "exit 0", 0),
    ([], {"PYINIT_EXPECT_EXIT": "3, 143"}, "kill -TERM $$", 0),
    ([], {"PYINIT_EXPECT_EXIT": "3 143"}, "exit 3", 0),
    (["-e", "4"], {"PYINIT_EXPECT_EXIT": "3"}, "exit 3", 3),  # the command line wins
])
def test_expect_exit(pyinit, role, start, args, env, script, status):
    environ = {**os.environ, **(env or {})}
    run = start(in_namespace([*pyinit, *args, "--", "sh", "-c", script], role), env=environ)
    assert run.wait() == status


def test_main_child_killed_from_outside(pyinit, role, start):
    run = start(in_namespace([*pyinit, "--", "sh", "-c", "echo ready; exec sleep 1000"], role))
    assert read_line(run.proc.stdout) == b"ready\n"
    child = psutil.Process(run.pyinit_pid).children()[0]
    child.kill()
    assert run.wait() == 128 + signal.SIGKILL


@pytest.mark.parametrize("via", ["option", "environment"])
def test_pdeathsig_is_forwarded(pyinit, tmp_path, via):
    """pyinit's parent (a shell that is not PID 1) is SIGKILLed: pyinit gets USR1 and forwards
    it; the child's trap writes a marker and exits, and pyinit exits after it."""
    marker = tmp_path / "marker"
    # the marker appears whole (renamed into place): one seen while still empty ended the test
    child = (f"trap 'echo got-usr1 > {marker}.part; mv {marker}.part {marker}; exit 0' USR1; "
             "echo ready; sleep 1000 & wait")
    args = ["-p", "USR1"] if via == "option" else []
    inner = f"{shlex.join([*pyinit, *args, '--', 'sh', '-c', child])} & exec sleep 1000"
    env = {**os.environ, "PYINIT_PDEATHSIG": "USR1"} if via == "environment" else None
    # PID 1 of the namespace is a sleep that outlives all of this; pyinit's parent is `inner`
    argv = [*NAMESPACE, "sh", "-c", f"sh -c {shlex.quote(inner)} & exec sleep 1000"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, start_new_session=True)
    try:
        assert read_line(proc.stdout) == b"ready\n"
        pyinit_pid = find_pyinit(proc.pid)
        parent = psutil.Process(pyinit_pid).parent()
        wait_for(lambda: parent.name() == "sleep", TIMEOUT, "`inner` to exec sleep")
        parent.kill()
        wait_for(lambda: marker.exists(), TIMEOUT, "the child to get the parent-death signal")
        assert marker.read_text() == "got-usr1\n"
        wait_for(lambda: not alive(pyinit_pid), TIMEOUT, "pyinit to exit")
    finally:
        proc.kill()  # --kill-child: the namespace goes with it
        proc.wait(TIMEOUT)
