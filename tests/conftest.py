"""Fixtures: which pyinit to run (source, frozen bundle or single file), in which PID-namespace
role, and a starter that kills everything a test started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import helpers
import pytest
from cgroups import cgroup2_mount, make_cgroup
from containers import Container
from helpers import FROZEN, SOURCE, Running, join_cgroup, require_single, tool_links

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


@pytest.fixture(params=["best", "cgroup", "fallbacks"])
def teardown_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """For behavioural modules that must pass on every path (`usefixtures("teardown_path")`).

    best: what pyinit picks here. On this kind of host (cgroup v1 controllers, tests in the root
    cgroup) that is the v1 pids hierarchy as PID 1 of a test namespace (its root cgroup lists
    only the namespace's processes, so pyinit is alone in it) and the process tree as a
    subreaper (the namespace's PID 1 shares the cgroup). cgroup: pyinit alone in a cgroup2
    directory of its own. fallbacks: no pidfd, no cgroups, and no subreaper where pyinit is
    PID 1 (PYINIT_TEST_DISABLE).
    """
    if request.param == "cgroup":
        if cgroup2_mount() is None:
            pytest.skip("no cgroup2 mount")
        with make_cgroup() as directory:
            monkeypatch.setattr(helpers, "JOIN", join_cgroup(directory))
            yield
        return
    if request.param == "fallbacks":
        disabled = ["pidfd", "cgroup2", "cgroup1"]
        if request.node.callspec.params.get("role") == "pid1":
            disabled.append("subreaper")
        monkeypatch.setenv("PYINIT_TEST_DISABLE", ",".join(disabled))
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The other paths run each behavioural test from source only: the frozen bundle runs the
    same Python, and the suite's time matters."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        if params.get("teardown_path", "best") != "best" and params.get("pyinit") != "source":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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


@pytest.fixture(params=["source", "frozen", "single"])
def compat_links(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """A directory with tini, docker-init and dumb-init running pyinit (helpers.tool_links)."""
    return tool_links(request.param, tmp_path_factory.mktemp("links"))
