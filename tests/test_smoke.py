"""The basics in both roles: exit status, signal forwarding, teardown of an escapee."""

from __future__ import annotations

import signal

from helpers import in_namespace


def test_exit_status_passes_through(pyinit, role, start):
    run = start(in_namespace([*pyinit, "--", "sh", "-c", "exit 7"], role))
    assert run.wait() == 7


def test_term_is_forwarded(pyinit, role, start):
    script = 'trap "echo got-term; exit 9" TERM; echo ready; while :; do sleep 0.05; done'
    run = start(in_namespace([*pyinit, "--", "sh", "-c", script], role))
    assert run.proc.stdout.readline() == b"ready\n"
    run.signal(signal.SIGTERM)
    out, _ = run.communicate()
    assert out == b"got-term\n"
    assert run.proc.returncode == 9
