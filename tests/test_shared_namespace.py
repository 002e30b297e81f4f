"""Kubernetes shareProcessNamespace: the namespace's PID 1 is a pause process that never reaps,
and pyinit joins it (nsenter) as an ordinary process. When its main child is SIGKILLed, pyinit
tears down every escapee (setsid'd, double-forked, TERM-ignoring), and afterwards the namespace
holds its PID 1 alone: nothing re-parented to it, alive or zombie."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

import psutil
import pytest
from helpers import NAMESPACE, TIMEOUT, Running, host_pid, read_line, wait_for

SCRIPT = r"""
setsid sleep 1000 &
(sleep 1000 &)
(setsid sh -c 'trap "" TERM; exec sleep 1000' &)
sh -c 'trap "" TERM; exec sleep 1000' &
echo "ready $$"
exec sleep 1000
"""


def in_pid_namespace(ns: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if os.readlink(f"/proc/{process.pid}/ns/pid") == ns:
                found.append(process)
        except OSError:
            pass
    return found


@contextlib.contextmanager
def pause_namespace(pause: str):
    """A PID namespace whose PID 1 never reaps; yields (PID 1's host PID, namespace link, the
    host PIDs in it before the test). Killed (with everything in it) at the end."""
    if pause == "busybox" and not shutil.which("busybox"):
        pytest.skip("busybox not installed")
    holder_cmd = ["busybox", "sleep", "1000"] if pause == "busybox" else \
        ["sh", "-c", "sleep 1000; :"]  # `; :` so sh does not exec sleep
    holder = subprocess.Popen([*NAMESPACE, *holder_cmd], start_new_session=True)
    try:
        wait_for(lambda: psutil.Process(holder.pid).children(), 10, "the pause process")
        pause_pid = psutil.Process(holder.pid).children()[0].pid
        ns = os.readlink(f"/proc/{pause_pid}/ns/pid")
        wait_for(lambda: len(in_pid_namespace(ns)) == (1 if pause == "busybox" else 2), 10,
                 "the pause process to settle")
        yield pause_pid, ns, {p.pid for p in in_pid_namespace(ns)}
    finally:
        holder.kill()  # --kill-child: the pause process and its namespace go with it
        holder.wait(TIMEOUT)


def test_exec_failure_leaves_no_zombie(pyinit):
    """The child that failed to exec is reaped by pyinit: with a PID 1 that never reaps, a
    zombie handed to it would stay visible."""
    with pause_namespace("busybox") as (pause_pid, ns, before):
        done = subprocess.run(["nsenter", "--target", str(pause_pid), "--pid", "--mount", "--",
                               *pyinit, "--", "/nonexistent/cmd"],
                              capture_output=True, timeout=TIMEOUT)
        assert done.returncode == 127
        assert b"/nonexistent/cmd" in done.stderr
        assert {p.pid for p in in_pid_namespace(ns)} == before


@pytest.mark.parametrize("pause", ["busybox", "sh"])
def test_shared_namespace_teardown(pyinit, pause):
    with pause_namespace(pause) as (pause_pid, ns, before):
        _teardown(pyinit, pause_pid, ns, before)


def _teardown(pyinit, pause_pid: int, ns: str, before: set[int]) -> None:
    run = None
    try:
        run = Running(["nsenter", "--target", str(pause_pid), "--pid", "--mount", "--",
                       *pyinit, "-t", "1", "--", "sh", "-c", SCRIPT],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = read_line(run.proc.stdout).decode().split()
        main = host_pid(int(ready[1]), run)
        assert psutil.Process(run.pyinit_pid).ppid() == run.proc.pid  # pyinit is not PID 1
        wait_for(lambda: len(in_pid_namespace(ns)) >= len(before) + 6, 10,
                 "pyinit, the main child and four escapees")
        wait_for(lambda: psutil.Process(main).name() == "sleep", what="the main child to exec")
        began = time.monotonic()
        os.kill(main, signal.SIGKILL)
        _, err = run.communicate()
        assert run.proc.returncode == 128 + signal.SIGKILL, err
        assert time.monotonic() - began < 1 + 10  # the TERM-ignoring ones waited for -t 1
        left = {p.pid for p in in_pid_namespace(ns)}
        assert left == before, [p.cmdline() for p in in_pid_namespace(ns)
                                if p.pid not in before]
        assert err == b""
    finally:
        if run is not None:
            run.close()
