"""The single file as podman's init, the way a platform team switches a whole fleet:
`podman run --init --init-path FILE` bind-mounts that one file at /run/podman-init and runs
`/run/podman-init -- ENTRYPOINT CMD`. The image (tests/podman.py: busybox-static) gets its
entrypoint replaced, so nothing of pyinit in it runs. Rootful podman, runc.
"""

from __future__ import annotations

import os
import signal

import pytest
from helpers import REAPED_ORPHAN, SINGLE, require_single, wait_for
from podman import STORAGE_GROUP, Podman, missing, session

from pyinit import __version__

pytestmark = [pytest.mark.timeout(300), STORAGE_GROUP]

INIT = "/run/podman-init"
ESCAPEES = ('for n in 1 2; do setsid sh -c "trap \\"echo escapee got TERM; exit\\" TERM; '
            'echo escapee up; while :; do sleep 0.2; done" & done; ')


@pytest.fixture(scope="module")
def podman():
    require_single()
    why = missing(bundle=False)
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the podman tests must run in CI: {why}")
        pytest.skip(why)
    with session() as started:
        yield started


def init_run(podman: Podman, *options: str, command: list[str], check: bool = False):
    """`podman run --init --init-path SINGLE OPTIONS --entrypoint COMMAND[0] IMAGE COMMAND[1:]`"""
    name = podman.name("init")
    return name, podman("run", "--name", name, "--init", "--init-path", str(SINGLE),
                        *options, "--entrypoint", command[0], podman.image, *command[1:],
                        check=check)


def test_the_init_is_pid_1_under_the_engines_name(podman):
    _, done = init_run(podman, command=["cat", "/proc/1/cmdline"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\0") == [INIT, "--", "cat", "/proc/1/cmdline", ""]
    _, done = init_run(podman, command=[INIT, "--version"])
    assert (done.returncode, done.stdout) == (0, f"pyinit {__version__}\n"), done.stderr


@pytest.mark.parametrize(("script", "expected"), [
    ("exit 0", 0),
    ("exit 7", 7),
    ("kill -USR1 $$", 128 + signal.SIGUSR1),
])
def test_exit_status(podman, script, expected):
    _, done = init_run(podman, command=["sh", "-c", script])
    assert done.returncode == expected, done.stderr


def test_stop_tears_down_escapees(podman):
    name, _ = init_run(podman, "--detach", "--env", "PYINIT_VERBOSE=1",
                          command=["sh", "-c", ESCAPEES + "exec sleep 4242"], check=True)
    wait_for(lambda: podman.logs(name).count("escapee up\n") == 2, 15, "the escapees")
    podman("stop", "--time", "20", name)
    logs = podman.logs(name)
    assert logs.count("escapee got TERM\n") == 2, logs
    assert "teardown: SIGTERM to" in logs and "SIGKILL to 0" in logs, logs
    assert podman.exit_code(name) == 128 + signal.SIGTERM


def test_orphans_are_reaped(podman):
    script = REAPED_ORPHAN + "cat /proc/[0-9]*/stat | grep -c ') Z ' || true"
    _, done = init_run(podman, command=["sh", "-c", script])
    assert (done.returncode, done.stdout) == (0, "0\n"), done.stderr


def test_read_only_nobody_and_exact_environment(podman):
    env = ["--env", "PYTHONHOME=/nowhere", "--env", "PYTHONPATH=/nowhere", "--env", "LANG=C",
           "--hostname", "same"]
    name = podman.name("plain")
    plain = podman("run", "--name", name, *env, "--entrypoint", "env", podman.image)
    _, done = init_run(podman, "--read-only", "--user", "65534:65534", *env, command=["env"])
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(plain.stdout.splitlines())
