"""Issue 2, behaviour 9: -v logs the lifecycle to stderr (child started, signal forwarded or
rewritten, orphan reaped with PID and name, teardown summary); by default pyinit says nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest
from helpers import TIMEOUT, in_namespace, read_line, read_until

# Ignores the signals it is sent; leaves a short-lived orphan and a setsid'd escapee; exits 7
# when a line arrives on stdin.
SCRIPT = 'trap "" USR1 USR2; (sleep 0.1 &); setsid sleep 1000 & echo ready; read line; exit 7'


def lifecycle(pyinit, role, start, args, env=None):
    run = start(in_namespace([*pyinit, *args, "--", "sh", "-c", SCRIPT], role),
                stdin=subprocess.PIPE, env={**os.environ, **(env or {})})
    assert read_line(run.proc.stdout) == b"ready\n"
    return run


def test_verbose_lifecycle(pyinit, role, start):
    run = lifecycle(pyinit, role, start, ["-v", "-r", "HUP:USR2"])
    err = run.proc.stderr
    started = read_line(err).decode()
    assert started.startswith("pyinit: started ") and "sh -c" in started
    reaped = read_until(err, lambda line: b"reaped" in line).decode()
    assert re.search(r"reaped orphan \d+ \(sleep\)", reaped), reaped
    run.signal(signal.SIGUSR1)
    line = read_until(err, lambda line: b"SIGUSR1" in line).decode()
    assert "forwarded SIGUSR1" in line
    run.signal(signal.SIGHUP)
    line = read_until(err, lambda line: b"SIGHUP" in line).decode()
    assert "rewrote SIGHUP to SIGUSR2" in line
    _, rest_bytes = run.proc.communicate(b"\n", timeout=TIMEOUT)
    rest = rest_bytes.decode()
    assert run.proc.returncode == 7
    assert re.search(r"main child \d+ exited: 7", rest), rest
    summary = [line for line in rest.splitlines() if line.startswith("pyinit: teardown:")]
    assert len(summary) == 1 and "SIGTERM" in summary[0] and "sleep 1000" in summary[0], rest


def test_silent_by_default(pyinit, role, start):
    run = lifecycle(pyinit, role, start, ["-r", "HUP:USR2"])
    run.signal(signal.SIGUSR1)
    run.signal(signal.SIGHUP)
    _, err = run.proc.communicate(b"\n", timeout=TIMEOUT)
    assert (run.proc.returncode, err) == (7, b"")


@pytest.mark.parametrize(("args", "env", "talks"), [
    ([], {"PYINIT_VERBOSE": "1"}, True),
    ([], {"PYINIT_VERBOSE": "yes"}, True),
    ([], {"PYINIT_VERBOSE": "0"}, False),
    ([], {"PYINIT_VERBOSE": "1", "PYINIT_QUIET": "1"}, False),
    (["-v"], {"PYINIT_QUIET": "1"}, True),  # the command line wins
    (["-q"], {"PYINIT_VERBOSE": "1"}, False),
    (["-v", "-q"], {}, False),
])
def test_verbosity_from_environment_and_options(pyinit, start, args, env, talks):
    run = start(in_namespace([*pyinit, *args, "--", "sh", "-c", "exit 0"], "pid1"),
                env={**os.environ, **env})
    _, err = run.communicate()
    assert run.proc.returncode == 0
    assert (b"pyinit: started" in err) is talks


def test_quiet_still_reports_errors(pyinit, start):
    run = start(in_namespace([*pyinit, "-q", "--", "pyinit-no-such-command"], "pid1"))
    _, err = run.communicate()
    assert run.proc.returncode == 127
    assert b"pyinit-no-such-command" in err


def test_json_lines(pyinit, start):
    """--log-format json: one object a line with time, level, event and the event's fields; a
    command line with a newline stays inside its string (no forged line)."""
    run = start(in_namespace([*pyinit, "-v", "--log-format", "json", "--", "sh", "-c",
                              "sh -c 'sleep 0 &'; setsid sleep 1000 & exit 5", "x\ny"], "pid1"))
    _, err = run.communicate()
    assert run.proc.returncode == 5
    records = [json.loads(line) for line in err.decode().splitlines()]
    events = [record["event"] for record in records]
    assert events[0] == "started" and "exited" in events and events[-1] == "teardown"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
               for record in records)
    started = records[0]
    assert started["level"] == "info" and started["command"].endswith("x\ny")
    exited = next(record for record in records if record["event"] == "exited")
    assert exited["status"] == 5 and exited["pid"] == started["pid"]
    # the orphan `sleep 0` is reaped on its own (0) or stopped by the teardown (143), the setsid
    # sleep by the teardown; either may not have exec'd sleep yet (still sh, or setsid)
    reaped = [record for record in records if record["event"] == "reaped"]
    assert reaped and all(record["command"] in ("sleep", "sh", "setsid")
                          and record["status"] in (0, 143) for record in reaped), records
    teardown = records[-1]
    # stopped: the setsid sleep, and `sleep 0` when the teardown came before it ran
    assert teardown["signal"] == "SIGTERM" and teardown["stopped"] in (1, 2)
    assert teardown["killed"] == 0 and teardown["seconds"] >= 0 and teardown["mechanism"]


def test_json_from_the_environment_and_bad_format(pyinit, start):
    run = start(in_namespace([*pyinit, "-v", "--", "true"], "pid1"),
                env={**os.environ, "PYINIT_LOG_FORMAT": "JSON"})
    _, err = run.communicate()
    assert [json.loads(line)["event"] for line in err.decode().splitlines()] == [
        "started", "exited"]
    bad = subprocess.run([*pyinit, "--log-format", "xml", "--", "true"], capture_output=True,
                         timeout=TIMEOUT)
    assert bad.returncode == 2
    assert bad.stderr.decode().splitlines() == [
        "pyinit: invalid log format 'xml': use text or json (see 'pyinit --help')"]


def test_orphan_rate_warning_once(pyinit, start):
    """More than 1000 orphans within 10 s is a leaking workload: one warning (rate-limited),
    even at the default level; a burst of a few hundred says nothing (test_unprivileged)."""
    storm = "i=0; while [ $i -lt 2500 ]; do (: &); i=$((i+1)); done; exit 0"
    run = start(in_namespace([*pyinit, "--", "sh", "-c", storm], "pid1"))
    _, err = run.communicate(timeout=120)
    assert run.proc.returncode == 0
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "the workload leaks processes" in lines[0], lines
