"""End to end: the single file as an engine's init. runc containers get nothing from pyinit but
that one file, bind-mounted read-only at a path of the engine's choosing (podman's
/run/podman-init, dockerd's /sbin/docker-init): into a bare rootfs that holds nothing else, and
into a busybox image for the tests that need a shell. Read-only root, no /tmp, uid 65534.
Skipped when runc or the single file is missing; with CI set, missing is a failure.
"""

from __future__ import annotations

import shutil
import signal
import subprocess

import containers
import pytest
from containers import LOOP, children_of, cmdlines, no_zombie_below, state_of, tree
from helpers import require_single, wait_for

from pyinit import __version__

pytestmark = pytest.mark.timeout(120)

PODMAN = "/run/podman-init"
DOCKER = "/sbin/docker-init"
VERSION = f"pyinit {__version__}\n".encode()


@pytest.fixture(scope="module")
def single():
    return require_single()


@pytest.fixture(scope="module")
def images(single):
    with containers.made_images(bundle=False) as made:
        yield made


@pytest.fixture
def engine(container, single):
    """engine(args, at=PODMAN, **options): a container whose init is the single file mounted at
    `at`, running `at -- args...` as an engine's --init does."""
    def _make(args: list[str], at: str = PODMAN, **options: object) -> containers.Container:
        return container([at, "--", *args], binds={at: single}, **options)
    return _make


def run(box: containers.Container) -> tuple[int, bytes, bytes]:
    box.run()
    return box.wait()


@pytest.mark.parametrize(("at", "version", "usage_status"), [
    (PODMAN, VERSION, 2),
    # by that name the file takes tini's command line, which is what dockerd passes its init
    (DOCKER, b"tini version 0.19.0 - " + VERSION, 1),
])
def test_bare_rootfs_holds_only_the_file(engine, at, version, usage_status):
    """No libc, no shell, no /tmp: the file runs itself as the command, under the name given."""
    assert run(engine([at, "--version"], at=at, rootfs="bare"))[:2] == (0, version)
    status, _, err = run(engine(["/no/such/command"], at=at, rootfs="bare"))
    assert status == 127, err
    assert b"cannot execute '/no/such/command'" in err
    status, _, err = run(engine([at, "--no-such-option"], at=at, rootfs="bare"))
    assert status == usage_status, err
    assert b"Traceback" not in err


def test_copied_alone_into_a_scratch_image(container, images, single):
    scratch = images.root / "single-scratch"
    scratch.mkdir()
    shutil.copy2(single, scratch / "pyinit")
    assert run(container(["/pyinit", "--", "/pyinit", "--version"], rootfs=scratch))[:2] == (
        0, VERSION)


@pytest.mark.parametrize("argv0", ["tini", "docker-init", "/no/such/path/podman-init"])
def test_any_argv0_no_environment(single, argv0):
    """argv[0] is only a name: it need not lead back to the file (no PATH, no /proc needed)."""
    done = subprocess.run([argv0, "--", str(single), "--version"], executable=single, env={},
                          capture_output=True, timeout=30, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, VERSION, b"")


def test_bare_rootfs_without_proc(images, single):
    proc = containers.no_proc(images.bare, [PODMAN, "--", PODMAN, "--version"],
                              binds={PODMAN: single})
    status, out, err = containers.finish(proc)
    assert (status, out) == (0, VERSION), err


def test_without_proc_forwards_reaps_and_tears_down(images, single):
    script = "sleep 100 & setsid sleep 100 & exit 5"
    proc = containers.no_proc(images.busybox, [PODMAN, "-v", "--", "sh", "-c", script],
                              binds={PODMAN: single})
    status, _, err = containers.finish(proc)
    assert status == 5, err
    assert b"Traceback" not in err, err
    assert b"teardown: SIGTERM to" in err, err


@pytest.mark.parametrize("at", [PODMAN, DOCKER])
def test_signals_and_exit_status(engine, at):
    script = f'trap "echo HUP" HUP; trap "echo TERM; exit 3" TERM; echo ready; {LOOP}'
    box = engine(["sh", "-c", script], at=at)
    box.run()
    box.expect_line(b"ready\n")
    box.kill("HUP")
    box.expect_line(b"HUP\n")
    pyinit = box.init_pid()
    (child,) = children_of(pyinit)
    box.kill("TSTP")  # forwarded as SIGSTOP
    wait_for(lambda: state_of(child.pid) == "T", what="the child to stop")
    assert state_of(pyinit) != "T"
    box.kill("CONT")
    wait_for(lambda: state_of(child.pid) in ("S", "R"), what="the child to resume")
    box.kill("TERM")
    box.expect_line(b"TERM\n")
    status, _, err = box.wait()
    assert status == 3, err
    assert [p.name() for p in tree(pyinit)] == []


@pytest.mark.parametrize(("script", "expected"), [
    ("exit 7", 7),
    ("kill -USR1 $$", 128 + signal.SIGUSR1),
])
def test_exit_status(engine, script, expected):
    status, _, err = run(engine(["sh", "-c", script]))
    assert status == expected, err


def test_orphans_reaped_and_left_over_torn_down(engine):
    box = engine(["sh", "-c", f"(sleep 0.2 &); setsid sleep 100 & echo ready; {LOOP}"])
    box.run()
    box.expect_line(b"ready\n")
    pyinit = box.init_pid()
    # the orphan is pyinit's from `ready` on (its subshell has exited); `setsid` does not fork
    # (sleep is not a group leader), so the sleep 100 stays the shell's
    wait_for(lambda: ["sleep", "0.2"] not in cmdlines(pyinit) and no_zombie_below(pyinit),
             what="the orphan to be reaped")
    box.kill("TERM")
    status, _, err = box.wait()
    assert status == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err, err


def test_child_gets_exactly_the_environment(engine, container):
    """Nothing added (no LC_CTYPE from locale coercion), nothing taken; PYTHON* variables are
    the workload's: they neither reach pyinit's interpreter nor get lost."""
    env = ["PATH=/bin", "LANG=C", "FOO=bar baz", "PYTHONHOME=/nowhere", "PYTHONPATH=/nowhere",
           "PYTHONSTARTUP=/nowhere", "PYTHONINSPECT=1", "PYTHONVERBOSE=1", "PYTHONDEVMODE=1",
           "LD_LIBRARY_PATH=/usr/local/lib"]
    _, expected, _ = run(container(["env"], env=env))
    status, out, err = run(engine(["env"], env=env))
    assert (status, err) == (0, b"")
    assert sorted(out.splitlines()) == sorted(expected.splitlines())
