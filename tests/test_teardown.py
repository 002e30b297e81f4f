"""Issue 2, behaviour 6: when the main child exits, pyinit stops everything left (setsid'd,
double-forked, backgrounded, stopped, TERM-ignoring), within the grace period, and exits with
the main child's status.

"Gone" is checked with PIDs, never by sleeping: as subreaper, the namespace's PID 1 lists every
process that outlived pyinit (helpers.AUDIT_SHELL); as PID 1 the kernel kills whatever is left
when pyinit exits, so there the escapees prove pyinit's part by writing markers from their TERM
handlers (a process SIGKILLed by the kernel writes none)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from helpers import (
    TIMEOUT,
    in_namespace_audited,
    lines,
    read_line,
    read_until,
    survivors,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("teardown_path")  # every teardown path: see conftest

# An escapee: handles the stop signal by writing a marker (slowly when asked), reports ready
# once its own child runs sleep (a TERM that lands between that child's fork and its exec would
# run this shell's trap in it and be lost; teardown on the cgroup path is that fast).
ESCAPEE = r"""
F=$1 delay=${2:-0}
exec 2>/dev/null  # no "Terminated" from this shell about its sleep: stderr is pyinit's to check
trap 'sleep $delay; echo "term $$" >> "$F"; exit 0' TERM
trap 'echo "usr1 $$" >> "$F"; exit 0' USR1
sleep 1000 &
until [ "$(cat /proc/$!/comm 2>/dev/null)" = sleep ]; do sleep 0.01; done
echo "ready $$" >> "$F"
wait
"""

# The main child: leaves a setsid'd child, a double-forked daemon and a background child,
# waits until all three are ready, then exits with $3.
LEAVER = r"""
F=$1 E=$2 code=$3 delay=${4:-0}
setsid sh "$E" "$F" "$delay" &
( sh "$E" "$F" "$delay" & )
sh "$E" "$F" "$delay" &
until [ "$(grep -c ready "$F")" -ge 3 ]; do sleep 0.02; done
exit "$code"
"""


@pytest.fixture
def scripts(tmp_path):
    escapee, leaver = tmp_path / "escapee.sh", tmp_path / "leaver.sh"
    escapee.write_text(ESCAPEE)
    leaver.write_text(LEAVER)
    marker = tmp_path / "marker"
    marker.touch()
    return escapee, leaver, marker


def pids(marker, word: str) -> set[str]:
    return {line.split()[1] for line in lines(marker) if line.split()[0] == word}


def test_escapees_are_torn_down_and_status_kept(pyinit, role, start, scripts):
    escapee, leaver, marker = scripts
    run = start(in_namespace_audited(
        [*pyinit, "-t", "20", "--", "sh", str(leaver), str(marker), str(escapee), "5"], role))
    began = time.monotonic()
    _, err = run.communicate()
    assert run.proc.returncode == 5
    assert len(pids(marker, "ready")) == 3
    assert pids(marker, "term") == pids(marker, "ready")  # each got TERM from pyinit
    assert survivors(err) == []
    assert err == b""  # silent by default
    assert time.monotonic() - began < 15  # all handled TERM: no waiting for the grace period


def test_stop_signal_follows_term_rewrite(pyinit, role, start, scripts):
    escapee, leaver, marker = scripts
    run = start(in_namespace_audited(
        [*pyinit, "-t", "20", "-r", "TERM:USR1", "--",
         "sh", str(leaver), str(marker), str(escapee), "0"], role))
    _, err = run.communicate()
    assert run.proc.returncode == 0
    assert pids(marker, "usr1") == pids(marker, "ready")
    assert pids(marker, "term") == set()
    assert survivors(err) == []


@pytest.mark.parametrize(("role", "via"),
                         [("pid1", "option"), ("subreaper", "option"), ("pid1", "environment")])
def test_term_ignoring_descendant_is_killed_at_grace(pyinit, role, start, tmp_path, via):
    grace = 2.0
    marker = tmp_path / "marker"
    script = (f'sh -c \'trap "" TERM; echo "ready $$" >> {marker}; exec sleep 1000\' & '
              f'until [ -s {marker} ]; do sleep 0.02; done; exit 3')
    args = ["-t", str(grace)] if via == "option" else []
    env = {**os.environ, "PYINIT_GRACE": str(grace)} if via == "environment" else None
    began = time.monotonic()
    run = start(in_namespace_audited([*pyinit, *args, "--", "sh", "-c", script], role), env=env)
    _, err = run.communicate()
    took = time.monotonic() - began
    assert run.proc.returncode == 3
    assert len(lines(marker)) == 1
    assert grace <= took < grace + 10
    assert survivors(err) == []


# Its main thread exits (pthread_exit from main) while another thread sleeps on: /proc shows it
# as a zombie (state Z, no command line), but it is alive, and as pyinit's child it cannot be
# reaped until it is stopped.
HEADLESS = ("import ctypes, threading, time; "
            "threading.Thread(target=time.sleep, args=(1000,)).start(); "
            "ctypes.CDLL(None).pthread_exit(None)")


@pytest.mark.parametrize("role", ["pid1", "subreaper"])
def test_process_without_its_main_thread_is_stopped(pyinit, role, start):
    """A scan that trusted /proc's state letter never signalled it, and pyinit then waited
    forever to reap it: now it gets TERM like any process, and dies of it."""
    script = (f"{shlex.join([sys.executable, '-c', HEADLESS])} & "
              "until grep -q '^State:.*Z' /proc/$!/status; do sleep 0.02; done; exit 3")
    run = start(in_namespace_audited([*pyinit, "-v", "-t", "20", "--", "sh", "-c", script],
                                     role))
    _, err = run.communicate()
    assert run.proc.returncode == 3, err
    assert re.search(rb"teardown: SIGTERM to (1|kill -1)\b.*; SIGKILL to (0|kill -1)\b", err), err
    assert survivors(err) == []


def test_command_line_grace_wins_over_environment(pyinit, start, tmp_path):
    marker = tmp_path / "marker"
    script = (f'sh -c \'trap "" TERM; echo "ready $$" >> {marker}; exec sleep 1000\' & '
              f'until [ -s {marker} ]; do sleep 0.02; done')
    began = time.monotonic()
    run = start(in_namespace_audited([*pyinit, "-t", "0.5", "--", "sh", "-c", script], "pid1"),
                env={**os.environ, "PYINIT_GRACE": "60"})
    run.communicate()
    assert 0.5 <= time.monotonic() - began < 10


def test_stopped_descendants_go_at_once(pyinit, role, start, scripts):
    """A stopped process acts on TERM only once continued: pyinit sends CONT with it, so the
    teardown ends long before the 20 s grace period."""
    escapee, _, marker = scripts
    script = (f'sleep 1000 & kill -STOP $!; echo "stopped $!" >> {marker}; '
              f'sh {escapee} {marker} & E=$!; '
              f'until grep -q ready {marker}; do sleep 0.02; done; kill -STOP $E; exit 4')
    began = time.monotonic()
    run = start(in_namespace_audited([*pyinit, "-t", "20", "--", "sh", "-c", script], role),
                env={**os.environ, "PYINIT_VERBOSE": "1"})
    _, err = run.communicate()
    assert run.proc.returncode == 4
    assert time.monotonic() - began < 10, err
    assert pids(marker, "term") == pids(marker, "ready")  # the stopped handler ran
    assert survivors(err) == []


def test_term_to_pyinit_with_slow_handlers(pyinit, role, start, scripts):
    """TERM reaches the main child's group; the main child takes 1 s to exit, its escapees too;
    pyinit waits for every one of them (each writes "term" after its 1 s), well within grace."""
    escapee, leaver, marker = scripts
    main = (f'trap \'sleep 1; echo "term $$" >> {marker}; exit 0\' TERM; '
            f'echo "ready $$" >> {marker}; '
            f'sh {leaver} {marker} {escapee} 0 1 & '  # the leaver: three slow escapees
            'sleep 1000 & wait')
    run = start(in_namespace_audited([*pyinit, "-t", "20", "--", "sh", "-c", main], role))
    wait_for(lambda: len(pids(marker, "ready")) == 4, TIMEOUT, "four ready processes")
    began = time.monotonic()
    run.signal(signal.SIGTERM)
    _, err = run.communicate()
    assert run.proc.returncode == 0
    assert time.monotonic() - began < 15
    assert pids(marker, "term") == pids(marker, "ready")
    assert survivors(err) == []


def test_nothing_left_means_no_teardown_delay(pyinit, role, start):
    began = time.monotonic()
    run = start(in_namespace_audited([*pyinit, "-t", "20", "--", "sh", "-c", "exit 0"], role))
    assert run.wait() == 0
    assert time.monotonic() - began < 10


# Spawns a new TERM-ignoring sleeper each time it gets TERM, so every TERM makes more to stop.
RESPAWNER = r"""
F=$1
exec 2>/dev/null
trap 'sh -c "trap \"\" TERM; exec sleep 1000" & echo spawned >> "$F"' TERM
echo "ready $$" >> "$F"
while :; do sleep 0.1; done
"""


def test_processes_forked_during_teardown_are_killed(pyinit, role, start, tmp_path):
    """A descendant answers TERM by forking a TERM-ignoring process: rescans during the grace
    period and the KILL pass catch the late forks; nothing outlives pyinit."""
    grace = 3.0  # time for the respawner to take its TERM under load (its trap waits out a sleep)
    respawner, marker = tmp_path / "respawner.sh", tmp_path / "marker"
    respawner.write_text(RESPAWNER)
    script = (f"sh {respawner} {marker} & "
              f"until grep -q ready {marker} 2>/dev/null; do sleep 0.02; done; exit 0")
    began = time.monotonic()
    run = start(in_namespace_audited([*pyinit, "-t", str(grace), "--", "sh", "-c", script],
                                     role))
    _, err = run.communicate()
    assert run.proc.returncode == 0
    assert grace <= time.monotonic() - began < grace + 10
    assert "spawned" in lines(marker)  # the TERM did make a late fork
    assert survivors(err) == []


def test_dropped_term_still_stops_at_teardown(pyinit, role, start, scripts):
    """-r TERM:0 drops a forwarded TERM; the teardown still stops what is left with TERM."""
    escapee, _, marker = scripts
    main = (f"trap 'echo main-term >> {marker}' TERM; sh {escapee} {marker} & "
            f"until grep -q ready {marker}; do sleep 0.02; done; echo ready; read line; exit 0")
    run = start(in_namespace_audited([*pyinit, "-v", "-r", "TERM:0", "--", "sh", "-c", main],
                                     role), stdin=subprocess.PIPE)
    assert read_line(run.proc.stdout) == b"ready\n"
    run.signal(signal.SIGTERM)
    read_until(run.proc.stderr, lambda line: b"dropped SIGTERM" in line)
    _, err = run.proc.communicate(b"\n", timeout=TIMEOUT)
    assert run.proc.returncode == 0
    assert "main-term" not in lines(marker)
    assert pids(marker, "term") == pids(marker, "ready")
    assert survivors(err) == []
