"""The cgroup teardown path and `--check`, in real cgroups made by the tests (cgroup2 under its
mount; on this hybrid host /sys/fs/cgroup/unified), read-only mounts of them, and machines made
to look as if they had no cgroups or no pidfd (PYINIT_TEST_DISABLE)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest
from cgroups import cgroup2_mount, make_cgroup, procs
from helpers import NAMESPACE, TIMEOUT, join_cgroup, read_line, wait_for

from pyinit import probe

pytestmark = pytest.mark.skipif(cgroup2_mount() is None, reason="no cgroup2 mount")

FORK_LOOP = ("setsid sh -c 'trap \"\" TERM; i=0; while [ $i -lt 3000 ]; do sleep 5 & "
             "i=$((i+1)); done; wait' & ")


@pytest.fixture
def cgroup():
    with make_cgroup() as directory:
        yield directory


def check(pyinit: list[str], prefix: list[str], env: dict[str, str] | None = None) -> dict:
    result = subprocess.run([*prefix, *pyinit, "--check", "--json"], capture_output=True,
                            timeout=TIMEOUT, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_tells_the_truth_alone_in_a_cgroup(pyinit, cgroup) -> None:
    found = check(pyinit, [*NAMESPACE, *join_cgroup(cgroup)])
    relative = "/" + os.path.relpath(cgroup, cgroup2_mount())
    v2 = next(group for group in found["cgroups"] if group["version"] == 2)
    assert v2["path"] == relative and v2["directory"] == cgroup
    assert v2["can_create_child"] is True and v2["cgroup.kill"] is True
    assert found["alone_in_cgroup"] is True and found["pid1"] is True
    assert found["teardown"] == f"cgroup: every process in cgroup2 {relative}"
    assert found["pid_namespace"] == "child" and found["proc"] == "own PID namespace"
    assert found["pidfd_open"] is found["pidfd_send_signal"] is found["waitid_pidfd"] is True
    assert found["euid"] == 0 and "CAP_KILL" in found["capabilities"]
    assert not os.listdir(cgroup) or all(not name.startswith("pyinit-check")
                                         for name in os.listdir(cgroup))


def test_check_on_the_host_shares_its_cgroup(pyinit) -> None:
    found = check(pyinit, [])
    with open("/proc/self/cgroup") as memberships:
        keys = {line.split(":")[1] for line in memberships.read().splitlines()}
    expected = "hybrid" if "" in keys and keys - {""} else ("v2" if "" in keys else "v1")
    assert found["cgroup_layout"] == expected
    assert found["alone_in_cgroup"] is False and found["pid1"] is False
    assert found["teardown"].startswith("process tree")
    assert found["subreaper"] is True and found["ok"] is True


def test_check_text_and_disabled_features(pyinit) -> None:
    env = {**os.environ, "PYINIT_TEST_DISABLE": "pidfd,cgroup2,cgroup1"}
    result = subprocess.run([*pyinit, "--check"], capture_output=True, text=True, env=env,
                            timeout=TIMEOUT)
    assert result.returncode == 0
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["pidfd_open"] == lines["pidfd_send_signal"] == "no"
    assert lines["cgroups"] == "none"


def test_check_fails_when_pyinit_could_not_reap(pyinit) -> None:
    env = {**os.environ, "PYINIT_TEST_DISABLE": "subreaper"}
    result = subprocess.run([*pyinit, "--check"], capture_output=True, text=True, env=env,
                            timeout=TIMEOUT)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "pyinit: not PID 1 and cannot become a child subreaper: orphans would be neither "
        "reaped nor torn down"]


@pytest.mark.parametrize("argv", [["--json"], ["--check", "true"]])
def test_check_usage_errors(pyinit, argv) -> None:
    result = subprocess.run([*pyinit, *argv], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


def test_read_only_cgroupfs_still_claims(pyinit, cgroup) -> None:
    """A default container's view: its own cgroup, bind-mounted read-only. Reading suffices."""
    script = f"echo $$ > {cgroup}/cgroup.procs && mount --bind -o ro {cgroup} {cgroup2_mount()}"
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", *NAMESPACE[1:], "sh", "-c",
         f'{script} && exec "$@"', "sh", *pyinit, "--check", "--json"],
        capture_output=True, text=True, timeout=TIMEOUT)
    found = json.loads(result.stdout)
    v2 = next(group for group in found["cgroups"] if group["version"] == 2)
    assert v2["directory"] == cgroup2_mount() and v2["can_create_child"] is False
    assert found["alone_in_cgroup"] is True


@pytest.mark.parametrize("role", ["pid1", "subreaper"])
def test_exec_from_outside_the_tree_is_torn_down(pyinit, cgroup, start, role) -> None:
    """Like `runc exec`: a process that was never pyinit's descendant joins its cgroup (and, as
    PID 1, its PID namespace). Teardown stops it too, woken by its pidfd when it dies."""
    command = [*pyinit, "-v", "-t", "10", "--", "sh", "-c", "echo up; read go; exit 6"]
    if role == "pid1":
        argv = [*NAMESPACE, *join_cgroup(cgroup), *command]
    else:  # the host PID namespace, as with Kubernetes' shareProcessNamespace
        argv = [*join_cgroup(cgroup), *command]
    running = start(argv, stdin=subprocess.PIPE)
    assert read_line(running.proc.stdout) == b"up\n"
    pyinit_pid = running.pyinit_pid if role == "pid1" else running.proc.pid
    enter = ["nsenter", "-t", str(pyinit_pid), "-p", "--"] if role == "pid1" else []
    outsider = subprocess.Popen([*join_cgroup(cgroup), *enter, "sleep", "1000"])
    try:
        wait_for(lambda: len(procs(cgroup)) >= 3 + bool(enter), what="the outsider to join")
        _, err = running.proc.communicate(b"go\n", timeout=TIMEOUT)
        assert running.proc.returncode == 6
        assert outsider.wait(TIMEOUT) in (-signal.SIGTERM, 128 + signal.SIGTERM)
        assert b"SIGKILL to 0 in cgroup2" in err
    finally:
        if outsider.poll() is None:
            outsider.kill()
            outsider.wait(TIMEOUT)


def test_fork_loop_ignoring_term(pyinit, cgroup, start) -> None:
    """An escapee that ignores TERM and forks as fast as it can (capped): KILL after the grace
    period, and nothing of it left in the cgroup."""
    script = FORK_LOOP + "sleep 0.3; exit 2"
    running = start([*NAMESPACE, *join_cgroup(cgroup), *pyinit, "-t", "1", "--",
                     "sh", "-c", script])
    assert running.wait(timeout=60) == 2
    wait_for(lambda: not procs(cgroup), timeout=10, what="the cgroup to empty")


def test_not_alone_means_the_tree(pyinit, cgroup, start) -> None:
    """A shell on a host shares its cgroup: pyinit must not claim it (nor signal the shell)."""
    keeper = subprocess.Popen([*join_cgroup(cgroup), "sleep", "1000"])
    try:
        wait_for(lambda: keeper.pid in procs(cgroup), what="the keeper to join")
        running = start([*join_cgroup(cgroup), *pyinit, "-v", "--", "sh", "-c",
                         "sleep 1000 & exit 0"])
        _, err = running.communicate()
        assert running.proc.returncode == 0
        summary = err.split(b"pyinit: teardown:")[1]
        assert b"cgroup" not in summary and b"SIGTERM to 1 (" in summary
        assert keeper.poll() is None
    finally:
        keeper.kill()
        keeper.wait(TIMEOUT)


def test_a_cgroup_removed_during_the_walk_is_skipped(cgroup) -> None:
    """Claimed as PID 1 of a namespace, a hierarchy's root lists every cgroup on the host, and
    engines remove theirs at any time. One removed between the listing and its read held no
    process (only an empty cgroup can be removed): the walk skips it instead of failing the
    teardown into its fallback. The claimed cgroup itself gone is still an error."""
    for name in ("a", "b"):
        os.mkdir(os.path.join(cgroup, name))
    # in the walk's order: the first holds a process, the second goes while the walk is there
    first, second = (entry.path for entry in os.scandir(cgroup) if entry.is_dir())
    keeper = subprocess.Popen([*join_cgroup(first), "sleep", "1000"])
    try:
        wait_for(lambda: keeper.pid in procs(first), what="the keeper to join")
        walk = probe.Cgroup(2, "", "/", cgroup)._walk()  # lazily, as holds_only() reads it
        assert next(walk) == keeper.pid
        os.rmdir(second)
        assert list(walk) == []
        with pytest.raises(FileNotFoundError):
            probe.Cgroup(2, "", "/", second).procs()
    finally:
        keeper.kill()
        keeper.wait(TIMEOUT)


def test_in_namespace_join_seam_is_the_cgroup_path(pyinit, cgroup, start, monkeypatch) -> None:
    """The `teardown_path` fixture's cgroup variant really takes the cgroup path."""
    import helpers

    monkeypatch.setattr(helpers, "JOIN", join_cgroup(cgroup))
    running = start(helpers.in_namespace([*pyinit, "-v", "--", "sh", "-c", "sleep 1000 & exit 1"],
                                         "pid1"))
    _, err = running.communicate()
    assert running.proc.returncode == 1
    assert re.search(rb"SIGTERM to 1 \(\d+ \(.*\)\) in cgroup2 /pyinit-test-", err), err
