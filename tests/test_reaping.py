"""Issue 2, behaviour 5 (and 7): every zombie is reaped as it appears, including thousands of
double-forked orphans, while the main child runs on and its status is kept exactly; an idle
pyinit never wakes up."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from helpers import (
    alive,
    child_of,
    in_namespace,
    namespace_processes,
    proc_status,
    read_line,
    wait_for,
    wait_idle,
    zombies,
)

pytestmark = pytest.mark.usefixtures("teardown_path")  # every teardown path: see conftest

ORPHANS = 3000
# Each iteration: a subshell forks `:` into the background and exits, so `:` is an orphan
# (re-parented to pyinit, as PID 1 or as subreaper). Two cheap dash forks, no exec.
STORM = f'i=0; while [ $i -lt {ORPHANS} ]; do (: &); i=$((i+1)); done'


def test_orphan_storm_leaves_no_zombie(pyinit, role, start):
    run = start(in_namespace([*pyinit, "--", "sh", "-c", f"{STORM}; echo done; exec sleep 1000"],
                             role))
    assert read_line(run.proc.stdout, 60) == b"done\n"
    wait_for(lambda: not zombies(namespace_processes(run)), 20, "no zombie in the namespace")
    # pyinit's first child may still be an orphan on its way out: its only one is the main
    # child once that has exec'd sleep
    wait_for(lambda: names(psutil.Process(run.pyinit_pid).children()) == ["sleep"], 20,
             "the main child, now sleep, as pyinit's only child")
    assert alive(run.pyinit_pid)
    # every orphan went to pyinit, none to the namespace's PID 1 shell (subreaper role): the
    # only processes left are PID 1 and pyinit with its child
    expected = sorted(["pyinit", "sleep"] + (["sh"] if role == "subreaper" else []))
    wait_for(lambda: names(namespace_processes(run)) == expected
             and not zombies(namespace_processes(run)), 20, f"only {expected} left")


def names(processes: list[psutil.Process]) -> list[str]:
    """The sorted names of those still there."""
    found = []
    for process in processes:
        try:
            found.append(process.name())
        except psutil.NoSuchProcess:
            pass
    return sorted(found)


def test_orphans_are_reparented_to_pyinit_and_reaped(pyinit, role, start):
    """setsid'd and double-forked orphans: pyinit is their parent once their own parent is gone,
    and reaps them when they exit (the test ends them with TERM once adopted)."""
    script = "(setsid sleep 999 &); (sleep 999 &); echo started; exec sleep 1000"
    run = start(in_namespace([*pyinit, "--", "sh", "-c", script], role))
    assert read_line(run.proc.stdout) == b"started\n"
    pyinit_pid = run.pyinit_pid

    def orphans() -> list[int]:
        found = []
        for process in psutil.Process(pyinit_pid).children():
            try:
                if process.cmdline() == ["sleep", "999"]:
                    found.append(process.pid)
            except psutil.Error:
                pass
        return found

    wait_for(lambda: len(orphans()) == 2, 10, "two orphans adopted by pyinit")
    adopted = orphans()
    for pid in adopted:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in adopted), 10,
             "the orphans to exit and be reaped")
    assert not zombies(namespace_processes(run))
    assert len(psutil.Process(pyinit_pid).children()) == 1  # the main child, still running


@pytest.mark.parametrize(("ending", "status"),
                         [("exit 42", 42), ("kill -USR1 $$", 128 + signal.SIGUSR1),
                          ("exit 0", 0), ("exit 255", 255)])
def test_main_status_kept_among_orphans(pyinit, role, start, ending, status):
    script = f'i=0; while [ $i -lt 300 ]; do (: &); i=$((i+1)); done; {ending}'
    run = start(in_namespace([*pyinit, "--", "sh", "-c", script], role))
    assert run.wait() == status


def test_idle_pyinit_does_not_wake_up(pyinit, role, start):
    run = start(in_namespace([*pyinit, "--", "sh", "-c", "echo ready; exec sleep 1000"], role))
    assert read_line(run.proc.stdout) == b"ready\n"
    main = child_of(run.pyinit_pid)
    wait_for(lambda: psutil.Process(main).name() == "sleep", what="the main child to exec sleep")
    wait_idle(run.pyinit_pid)  # a fixed pause could end too early

    def switches() -> tuple[str, str]:
        status = proc_status(run.pyinit_pid)
        return status["voluntary_ctxt_switches"], status["nonvoluntary_ctxt_switches"]

    before = switches()
    time.sleep(1.5)
    assert switches() == before
