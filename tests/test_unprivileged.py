"""pyinit as uid 65534 (nobody) in its namespace: still a subreaper (orphans come to it),
still forwards and reaps, tears down, and has nothing to warn about."""

from __future__ import annotations

import signal

import psutil
from helpers import (
    in_namespace_audited,
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
