"""Issue 2, behaviour 4 and 7: every catchable signal is forwarded (rewritten when asked) to the
child's process group or, with -c, to the child alone; job-control stops become SIGSTOP; signals
that are fatal by default never kill pyinit."""

from __future__ import annotations

import os
import shutil
import signal
import time

import psutil
import pytest
from helpers import (
    TIMEOUT,
    alive,
    child_of,
    in_namespace,
    read_line,
    read_until,
    state,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("teardown_path")  # every teardown path: see conftest

# A child that reports every signal it gets, one line each: "<tag> got <number>". With the
# argument "grandchild" it forks first, and both processes (same process group) report.
REPORTER = r"""
import os, signal, sys
sigs = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
tag = "child"
if sys.argv[1:] == ["grandchild"] and os.fork() == 0:
    tag = "grandchild"
os.write(1, f"{tag} ready {os.getpid()}\n".encode())  # one write: lines never interleave
while True:
    number = signal.sigwaitinfo(sigs).si_signo
    os.write(1, f"{tag} got {number}\n".encode())
    if number == signal.SIGTERM and tag == "child":
        sys.exit(0)
"""

FORWARDED = [
    "HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "PIPE", "CONT", "URG", "IO", "PWR",
    "VTALRM", "PROF", "XCPU", "XFSZ", "STKFLT", "SEGV", "ABRT", "ILL", "BUS", "FPE", "TRAP", "SYS",
    "RTMIN", "RTMIN+5", "RTMAX-1", "RTMAX",
]


def number(name: str) -> int:
    for base, first in (("RTMIN", signal.SIGRTMIN), ("RTMAX", signal.SIGRTMAX)):
        if name.startswith(base):
            return first + int(name[len(base):] or 0)
    return getattr(signal, "SIG" + name, None) or _BEFORE_PY311[name]


_BEFORE_PY311 = {"STKFLT": 16}  # signal.SIGSTKFLT exists from Python 3.11 (x86 and arm: 16)


def reporter(run, tags=("child",)) -> dict[str, int]:
    """Wait for the reporters to be ready; their host PIDs by tag."""
    pids = {}
    while set(pids) != set(tags):
        line = read_line(run.proc.stdout).decode()
        assert line.count(" ") == 2, line
        tag, _, pid = line.split()
        pids[tag] = pid
    return {tag: int(pid) for tag, pid in pids.items()}


def got(run, tag: str = "child") -> int:
    """The next signal the reporter tagged tag got; lines of the other reporter are kept."""
    kept = run.__dict__.setdefault("kept_lines", [])
    prefix = tag.encode() + b" got"
    for line in kept:
        if line.startswith(prefix):
            kept.remove(line)
            return int(line.split()[-1])

    def mine(line: bytes) -> bool:
        if line.startswith(prefix):
            return True
        kept.append(line)
        return False

    return int(read_until(run.proc.stdout, mine).split()[-1])


def test_every_catchable_signal_is_forwarded_and_none_kills_pyinit(pyinit, role, start):
    run = start(in_namespace([*pyinit, "--", "python3", "-c", REPORTER], role))
    reporter(run)
    for name in FORWARDED:
        run.signal(number(name))
        assert got(run) == number(name), name
        assert alive(run.pyinit_pid), f"pyinit died from SIG{name}"
    run.signal(signal.SIGTERM)
    assert got(run) == signal.SIGTERM
    _, err = run.communicate()
    assert run.proc.returncode == 0
    assert err == b""


@pytest.mark.parametrize("spelling", ["USR1:USR2", "sigusr1:SigUsr2", "10:12", "SIGUSR1:12"])
def test_rewrite_spellings(pyinit, start, spelling):
    run = start(in_namespace([*pyinit, "-r", spelling, "--", "python3", "-c", REPORTER], "pid1"))
    reporter(run)
    run.signal(signal.SIGUSR1)
    assert got(run) == signal.SIGUSR2
    run.signal(signal.SIGHUP)  # not rewritten
    assert got(run) == signal.SIGHUP


@pytest.mark.parametrize("via", ["option", "environment"])
def test_rewrites_and_drop(pyinit, role, start, via):
    rules = ["INT:TERM", "HUP:0", "RTMIN+2:USR2", "TERM:INT"]
    if via == "option":
        args = [a for rule in rules for a in ("-r", rule)]
        env = None
    else:
        args = []
        env = {**os.environ, "PYINIT_REWRITE": "INT:TERM, HUP:0 RTMIN+2:USR2,TERM:INT"}
    run = start(in_namespace([*pyinit, *args, "--", "python3", "-c", REPORTER], role), env=env)
    reporter(run)
    run.signal(signal.SIGHUP)  # dropped: the next line must be about the next signal
    run.signal(signal.SIGRTMIN + 2)
    assert got(run) == signal.SIGUSR2
    run.signal(signal.SIGTERM)
    assert got(run) == signal.SIGINT
    run.signal(signal.SIGINT)
    assert got(run) == signal.SIGTERM
    run.communicate()
    assert run.proc.returncode == 0


def test_command_line_rewrite_wins_over_environment(pyinit, start):
    env = {**os.environ, "PYINIT_REWRITE": "USR1:HUP"}
    run = start(in_namespace([*pyinit, "-r", "USR1:USR2", "--", "python3", "-c", REPORTER],
                             "pid1"), env=env)
    reporter(run)
    run.signal(signal.SIGUSR1)
    assert got(run) == signal.SIGUSR2


@pytest.mark.parametrize("single", [None, "option", "environment"])
def test_group_or_single_child(pyinit, role, start, single):
    """By default the whole process group gets the signal; with -c only the child does.
    Ordering trick: pyinit's USR1 is sent before the child reports it; then USR2 goes straight to
    the grandchild, which takes the lowest pending signal first: USR1 if it got one, else USR2."""
    args = ["-c"] if single == "option" else []
    env = {**os.environ, "PYINIT_SINGLE_CHILD": "1"} if single == "environment" else None
    run = start(in_namespace([*pyinit, *args, "--", "python3", "-c", REPORTER, "grandchild"],
                             role), env=env)
    pids = reporter(run, ("child", "grandchild"))
    run.signal(signal.SIGUSR1)
    assert got(run, "child") == signal.SIGUSR1
    # host PID of the grandchild: the only child of the main child
    grandchild = child_of(child_of(run.pyinit_pid))
    assert pids["grandchild"] != pids["child"]
    os.kill(grandchild, signal.SIGUSR2)
    expected = signal.SIGUSR2 if single else signal.SIGUSR1
    assert got(run, "grandchild") == expected


@pytest.mark.parametrize("stop", ["TSTP", "TTIN", "TTOU"])
def test_job_control_stops_child_and_cont_resumes(pyinit, role, start, stop):
    run = start(in_namespace([*pyinit, "--", "sh", "-c", "echo ready; exec sleep 1000"], role))
    assert read_line(run.proc.stdout) == b"ready\n"
    child = child_of(run.pyinit_pid)
    wait_for(lambda: psutil.Process(child).name() == "sleep", what="the child to exec sleep")
    run.signal(number(stop))
    wait_for(lambda: state(child) == "T", what="the child to stop")
    if role == "subreaper":
        # not PID 1: pyinit stops with its child, as dumb-init does, so a shell sees it stopped
        wait_for(lambda: state(run.pyinit_pid) == "T", what="pyinit to stop")
    run.signal(signal.SIGCONT)
    wait_for(lambda: state(child) in ("S", "R"), what="the child to resume")
    assert state(run.pyinit_pid) in ("S", "R")
    # still forwarding after the stop: TERM ends the child (default action), pyinit exits 143
    run.signal(signal.SIGTERM)
    run.communicate()
    assert run.proc.returncode == 128 + signal.SIGTERM


def test_stop_rewrite_can_be_turned_off(pyinit, start):
    """-r TSTP:TSTP forwards TSTP as itself; the child (orphaned process group) ignores it."""
    run = start(in_namespace([*pyinit, "-r", "TSTP:TSTP", "--", "python3", "-c", REPORTER],
                             "pid1"))
    reporter(run)
    run.signal(signal.SIGTSTP)
    assert got(run) == signal.SIGTSTP


@pytest.mark.parametrize("sig", ["SEGV", "ABRT", "ILL", "BUS", "FPE", "TRAP", "SYS"])
def test_fatal_signals_by_kill_do_not_kill_pyinit(pyinit, start, sig):
    """Not PID 1 (where the kernel would protect an init anyway): pyinit survives, forwards."""
    run = start(in_namespace([*pyinit, "--", "sh", "-c", "echo ready; exec sleep 1000"],
                             "subreaper"))
    assert read_line(run.proc.stdout) == b"ready\n"
    run.signal(number(sig))  # forwarded: sleep dies from it
    run.communicate()
    assert run.proc.returncode == 128 + number(sig)


@pytest.mark.skipif(not shutil.which("tini"), reason="tini not installed")
def test_contrast_tini_dies_from_segv(start):
    """The anchor: the same kill -SEGV kills tini (when not PID 1)."""
    run = start(in_namespace(["tini", "-s", "--", "sh", "-c", "echo ready; exec sleep 1000"],
                             "subreaper"))
    assert read_line(run.proc.stdout) == b"ready\n"
    tini = next(p for p in psutil.Process(run.proc.pid).children(recursive=True)
                if p.name() == "tini")
    os.kill(tini.pid, signal.SIGSEGV)
    deadline = time.monotonic() + TIMEOUT
    while alive(tini.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(tini.pid)

