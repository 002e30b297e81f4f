"""Fixtures: which pyinit to run (source, frozen bundle or single file), in which PID-namespace
role, and a starter that kills everything a test started."""

from __future__ import annotations

import os
import subprocess

import pytest
from containers import Container
from helpers import FROZEN, SOURCE, Running, require_single

if os.geteuid() != 0:
    pytest.exit("the tests need root: they create PID namespaces and containers", 2)


@pytest.fixture(params=["source", "frozen", "single"])
def pyinit(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs pyinit: from source, or the frozen bundle or the single file when
    they are built (with CI set, a missing single file is a failure)."""
    if request.param == "frozen":
        if not os.access(FROZEN, os.X_OK):
            pytest.skip(f"no frozen bundle at {FROZEN} (scripts/build makes it)")
        return [str(FROZEN)]
    if request.param == "single":
        return [str(require_single())]
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


@pytest.fixture
def container(images):
    """container(args, **options) -> Container (runc; `images` comes from the test module);
    every one is `runc delete -f`'d at the end."""
    made: list[Container] = []

    def _make(args: list[str], **options: object) -> Container:
        made.append(Container(images, args, **options))
        return made[-1]

    yield _make
    for each in reversed(made):
        each.delete()
