"""End to end: the frozen bundle in real runc containers, as users run it. Read-only root, no
/tmp, uid 65534, no terminal; a busybox-static rootfs, and an empty one (scratch-like: nothing
but /opt/pyinit). Skipped when runc or the bundle is missing; with CI set, missing is a failure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import containers
import pytest
from containers import (
    ENTRYPOINT,
    LOOP,
    Images,
    children_of,
    cmdlines,
    exists,
    no_zombie_below,
    state_of,
    tree,
)
from helpers import FROZEN, wait_for

pytestmark = pytest.mark.timeout(120)

@pytest.fixture(scope="module")
def images():
    with containers.made_images() as made:
        yield made


# --- 1. pyinit as PID 1 of the container -------------------------------------------------

def test_signals_reach_the_child(container):
    traps = "; ".join(f'trap "echo {name}" {name}' for name in ("HUP", "USR1", "WINCH", "INT"))
    script = f'{traps}; trap "echo TERM; exit 3" TERM; echo ready; {LOOP}'
    box = container([*ENTRYPOINT, "sh", "-c", script])
    box.run()
    box.expect_line(b"ready\n")
    for name in ("HUP", "USR1", "WINCH", "INT"):
        box.kill(name)
        box.expect_line(f"{name}\n".encode())
    box.kill("TERM")
    box.expect_line(b"TERM\n")
    status, _, err = box.wait()
    assert status == 3, err


def test_tstp_stops_the_child_and_cont_resumes_it(container):
    box = container([*ENTRYPOINT, "sh", "-c", f"echo ready; {LOOP}"])
    box.run()
    box.expect_line(b"ready\n")
    pyinit = box.init_pid()
    (child,) = children_of(pyinit)
    box.kill("TSTP")  # forwarded as SIGSTOP: a job-control stop would be discarded
    wait_for(lambda: state_of(child.pid) == "T", what="the child to stop")
    assert state_of(pyinit) != "T"  # PID 1 does not stop itself
    box.kill("CONT")
    wait_for(lambda: state_of(child.pid) in ("S", "R"), what="the child to resume")
    box.kill("TERM")
    status, _, err = box.wait()
    assert status == 128 + signal.SIGTERM, err


@pytest.mark.parametrize(("script", "expected"), [
    ("exit 0", 0),
    ("exit 7", 7),
    ("kill -USR1 $$", 128 + signal.SIGUSR1),
    ("kill -KILL $$", 128 + signal.SIGKILL),
])
def test_exit_status_comes_out_of_runc_run(container, script, expected):
    box = container([*ENTRYPOINT, "sh", "-c", script])
    box.run()
    status, _, err = box.wait()
    assert status == expected, err


def test_orphan_inside_is_reaped(container):
    script = f"(sleep 0.2 &); echo ready; {LOOP}"
    box = container(["/opt/pyinit/pyinit", "-v", "--", "sh", "-c", script])
    box.run()
    box.expect_line(b"ready\n")
    pyinit = box.init_pid()
    time.sleep(0.5)
    wait_for(lambda: len(children_of(pyinit)) == 1 and no_zombie_below(pyinit),
             what="the orphan to be reaped")
    box.kill("TERM")
    status, _, err = box.wait()
    assert status == 128 + signal.SIGTERM
    assert b"reaped orphan" in err, err


def test_runc_exec_orphans_leave_no_zombie(container):
    box = container([*ENTRYPOINT, "sh", "-c", f"echo ready; {LOOP}"])
    box.run()
    box.expect_line(b"ready\n")
    pyinit = box.init_pid()
    # The exec'd shell exits at once; its background sleeps are orphans whose only reaper is
    # the namespace's init.
    result = box.exec("sh", "-c", "sleep 0.2 & sleep 0.3 & echo $!")
    assert result.returncode == 0, result.stderr
    time.sleep(0.6)
    wait_for(lambda: len(children_of(pyinit)) == 1 and no_zombie_below(pyinit),
             what="the exec'd orphans to be reaped")
    box.kill("TERM")
    assert box.wait()[0] == 128 + signal.SIGTERM


def test_scratch_image_non_root_read_only(container):
    """An empty rootfs (no libc, no shell, no /tmp) with only /opt/pyinit; uid 65534."""
    box = container([*ENTRYPOINT, "/opt/pyinit/pyinit", "--version"], rootfs="empty")
    box.run()
    status, out, err = box.wait()
    assert (status, out) == (0, b"pyinit 0.1.0\n"), err
    missing = container([*ENTRYPOINT, "/no/such/command"], rootfs="empty")
    missing.run()
    status, _, err = missing.wait()
    assert status == 127
    assert b"cannot execute '/no/such/command'" in err


def test_child_gets_exactly_the_environment_and_fds(container):
    """The bootloader's LD_LIBRARY_PATH/_PYI_* and Python's locale coercion must not leak;
    a user's LD_LIBRARY_PATH must come through unchanged; only fds 0-2 are inherited."""
    env = ["PATH=/bin", "LD_LIBRARY_PATH=/usr/local/lib", "LANG=C", "FOO=bar baz"]
    bare = container(["env"], env=env)
    bare.run()
    _, expected, _ = bare.wait()
    box = container([*ENTRYPOINT, "env"], env=env)
    box.run()
    status, out, err = box.wait()
    assert status == 0, err
    assert sorted(out.splitlines()) == sorted(expected.splitlines())
    fds = container([*ENTRYPOINT, "sh", "-c", "echo ready; exec sleep 100"], env=env)
    fds.run()
    fds.expect_line(b"ready\n")
    (child,) = children_of(fds.init_pid())
    assert sorted(os.listdir(f"/proc/{child.pid}/fd")) == ["0", "1", "2"]


# --- 2. Kubernetes shareProcessNamespace: pyinit is not PID 1 -----------------------------

ESCAPEES = ("sleep 1002 & setsid sleep 1003 & (sleep 1004 &); "
            "trap 'exit 0' TERM; echo ready; exec sleep 1001")
ESCAPED = [["sleep", str(n)] for n in (1001, 1002, 1003, 1004)]


def test_shared_pid_namespace_teardown(container):
    # The pause container: busybox sleep as PID 1 of the pod's namespace, which never reaps.
    pause = container(["sleep", "100000"])
    pause_pid = pause.run_detached()
    namespace = containers.pid_namespace(pause_pid)
    box = container(["/opt/pyinit/pyinit", "-v", "--", "sh", "-c", ESCAPEES],
                    pid_ns=f"/proc/{pause_pid}/ns/pid")
    box.run()
    box.expect_line(b"ready\n")
    pyinit = box.init_pid()
    wait_for(lambda: sorted(cmdlines(pyinit)) == ESCAPED, what="main + 3 escapees")
    (main,) = [p for p in tree(pyinit) if p.cmdline() == ["sleep", "1001"]]
    os.kill(main.pid, signal.SIGKILL)
    status, _, err = box.wait()
    assert status == 128 + signal.SIGKILL
    assert b"teardown: SIGTERM to 3" in err, err  # pyinit did it, not runc's cgroup kill
    assert re.search(rb"SIGKILL to (none|0)\b", err), err  # promptly: no grace period spent
    wait_for(lambda: containers.in_namespace(namespace) == [pause_pid],
             what="the namespace to hold only the pause process")


# --- 3. Host PID namespace: no PID namespace of its own ---------------------------------------

def test_host_pid_namespace_leaves_nothing(container):
    box = container(["/opt/pyinit/pyinit", "-v", "--", "sh", "-c",
                     ESCAPEES.replace("trap 'exit 0' TERM; ", "")], pid_ns="host")
    box.run()
    box.expect_line(b"ready\n")
    pyinit = box.init_pid()
    wait_for(lambda: sorted(cmdlines(pyinit)) == ESCAPED, what="main + 3 escapees")
    pids = [p.pid for p in tree(pyinit)]
    box.kill("TERM")
    status, _, err = box.wait()
    assert status == 128 + signal.SIGTERM
    assert b"teardown: SIGTERM to" in err, err
    assert [pid for pid in pids if exists(pid)] == []
    assert not exists(pyinit)


# --- Without /proc ---------------------------------------------------------------------------
# runc itself needs /proc in the container (it closes fds through /proc/self/fd), so these run
# the bundle with unshare + chroot into the busybox rootfs, bound read-only, /proc not mounted,
# uid 65534, pyinit as PID 1 of a fresh PID namespace.

def _no_proc(images: Images, script: str) -> subprocess.Popen:
    return containers.no_proc(images.busybox, [ENTRYPOINT[0], "-v", "--", "sh", "-c", script])


def _pyinit_below(proc: subprocess.Popen) -> int:
    def found() -> bool:
        return any(p.name() == "pyinit" for p in tree(proc.pid))
    wait_for(found, what="pyinit to start")
    return next(p.pid for p in tree(proc.pid) if p.name() == "pyinit")


def test_without_proc_forwards_reaps_and_exits(images):
    script = ('[ -e /proc/self ] && echo proc-is-mounted; (sleep 0.1 &); '
              f'trap "echo got-term; exit 9" TERM; echo ready; {LOOP}')
    proc = _no_proc(images, script)
    try:
        assert proc.stdout.readline() == b"ready\n"
        pyinit = _pyinit_below(proc)
        time.sleep(0.4)
        wait_for(lambda: len(children_of(pyinit)) == 1 and no_zombie_below(pyinit),
                 what="the orphan to be reaped")
        os.kill(pyinit, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        containers.kill_tree(proc)
    assert out == b"got-term\n"
    assert proc.returncode == 9, err
    assert b"reaped orphan" in err and b"(?)" in err  # no /proc: no name for the zombie


def test_without_proc_teardown(images):
    status, _, err = containers.finish(_no_proc(images, "sleep 100 & setsid sleep 100 & exit 5"))
    assert status == 5, err
    assert b"Traceback" not in err, err
    # psutil cannot walk the tree: as PID 1, pyinit signals everything with kill(-1).
    assert b"no /proc of this PID namespace" in err, err
    assert b"teardown: SIGTERM to" in err, err


# --- The tarball's promise: readable and runnable by any uid -------------------------------------

def test_bundle_is_readable_and_runnable_by_anyone():
    if not FROZEN.exists():
        pytest.skip(f"no frozen bundle at {FROZEN}")
    bad = []
    for path in [FROZEN.parent, *FROZEN.parent.rglob("*")]:
        mode = path.lstat().st_mode
        if path.is_symlink():
            continue
        need = 0o005 if path.is_dir() else 0o004
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            need = 0o005
        if mode & need != need:
            bad.append(f"{oct(mode)} {path}")
    assert bad == []


# --- The frozen bundle's environment, on the host (no container needed) ----------------------

@pytest.mark.parametrize("given", [
    {},
    {"LD_LIBRARY_PATH": "/a:/b"},
    {"LD_LIBRARY_PATH_ORIG": "/q"},
    {"LD_LIBRARY_PATH": str(FROZEN.parent / "_internal")},
    {"LC_CTYPE": "C"},
    {"LANG": "C", "LC_ALL": "C"},
    {"PYTHONPATH": "/x", "PYTHONHOME": "/y", "PYTHONUTF8": "1"},
], ids=lambda given: ",".join(given) or "empty")
def test_frozen_child_environment_is_exact(given):
    """What the bootloader adds (LD_LIBRARY_PATH, _PYI_*) and what CPython's locale coercion
    adds never reach the child. Not recoverable, so not tested: an empty LD_LIBRARY_PATH
    (arrives unset), and LD_LIBRARY_PATH_ORIG given together with LD_LIBRARY_PATH."""
    if not os.access(FROZEN, os.X_OK):
        pytest.skip(f"no frozen bundle at {FROZEN}")
    env = {"PATH": "/usr/bin:/bin", **given}
    result = subprocess.run([str(FROZEN), "--", "env", "-0"], env=env, capture_output=True,
                            timeout=30, check=True)
    assert dict(entry.split("=", 1) for entry in result.stdout.decode().split("\0")
                if entry) == env
