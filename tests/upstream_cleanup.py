"""A pytest plugin loaded into dumb-init's own suite (`-p upstream_cleanup`), not into pyinit's.

When one of its tests fails or runs slow, it leaves busy `yes | tail` pipelines and
print_signals processes behind, and every later test then times out on a loaded machine. After
each test's own teardown this kills everything left in the suite's throw-away PID namespace
except PID 1 (the shell) and pytest, its child.
"""

from __future__ import annotations

import os
import signal

import pytest


def _in_child_namespace() -> bool:
    """Act only where tests/upstream.py runs the suite: pytest a child of a shell that is PID 1."""
    try:
        with open("/proc/1/comm") as comm:
            return os.getppid() == 1 and comm.read() == "sh\n"
    except OSError:
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    yield
    if not _in_child_namespace():
        return
    keep = {1, os.getpid()}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in keep:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass
