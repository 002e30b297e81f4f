"""Fixtures: which pyinit to run (source or frozen bundle), in which PID-namespace role, and a
starter that kills everything a test started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import FROZEN, SOURCE, Running, tool_links

if os.geteuid() != 0:
    pytest.exit("the tests need root: they create PID namespaces and containers", 2)


@pytest.fixture(params=["source", "frozen"])
def pyinit(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs pyinit: from source, or the frozen bundle when it is built."""
    if request.param == "frozen":
        if not os.access(FROZEN, os.X_OK):
            pytest.skip(f"no frozen bundle at {FROZEN} (scripts/build makes it)")
        return [str(FROZEN)]
    return list(SOURCE)


@pytest.fixture(params=["pid1", "subreaper"])
def role(request: pytest.FixtureRequest) -> str:
    """pyinit as PID 1 of its namespace, or as a subreaper below a shell that is PID 1."""
    return request.param


@pytest.fixture
def start():
    """start(argv, **popen) -> Running; every namespace started is killed at the end."""
    started: list[Running] = []

    def _start(argv: list[str], **popen: object) -> Running:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        running = Running(argv, **popen)
        started.append(running)
        return running

    yield _start
    for running in started:
        running.close()



@pytest.fixture(params=["source", "frozen"])
def compat_links(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """A directory with tini, docker-init and dumb-init running pyinit (helpers.tool_links)."""
    return tool_links(request.param, tmp_path_factory.mktemp("links"))
