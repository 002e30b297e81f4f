"""pyinit under real podman 4.3, as its users run it: `podman run`/`stop`/`kill`/`exec`, a pod
with a shared PID namespace (catatonit's pause as PID 1), `podman kube play docker/pod.yaml`, and
rootless podman. tests/podman.py makes one private storage and image per session.

What podman needs on this machine (found by trying; tests/podman.py sets it up):
- `CONTAINERS_CONF` with `default_ulimits` within the current hard limits (podman's defaults need
  CAP_SYS_RESOURCE), `cgroup_manager = "cgroupfs"`, `events_logger = "file"`, `netns = "none"`,
  and `tmp_dir`/`network_config_dir` in the session (else podman writes /run/libpod, and
  `kube play` makes a CNI bridge with firewall rules on the host: hence also `--network none`);
- `--root`/`--runroot` in a temporary directory with `--storage-driver vfs`, `--log-level=error`;
- runc: crun 1.8 refuses hybrid cgroup hosts, so crun runs only where it can (skip otherwise);
- rootless: a user with /etc/subuid and /etc/subgid ranges (uidmap's newuidmap/newgidmap), run
  through `setpriv --reuid --regid --init-groups` with HOME and XDG_RUNTIME_DIR owned by that user
  (a directory it can reach: not below root's 0700 pytest temp dir), the same storage options, no
  network (slirp4netns cannot open /dev/net/tun here); the image is built by that user with
  `buildah from scratch` + `buildah add` of a tarball (rootless buildah cannot mount outside its
  user namespace). Its cgroup mounts are read-only and its /proc/self/cgroup paths do not exist.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from containers import in_namespace, pid_namespace, state_of
from helpers import ROOT, proc_status, wait_for
from podman import (
    STORAGE_GROUP,
    TIMEOUT,
    Podman,
    crun_refusal,
    holders,
    missing,
    rootless_user,
    session,
    sweep_abandoned,
)

pytestmark = [pytest.mark.timeout(300), STORAGE_GROUP]

GRACE = 2


def _escapee(label: str, exits: bool = True) -> str:
    """A shell that says when it gets TERM (and exits, or survives it), looping on short sleeps."""
    then = "; exit" if exits else ""
    return (f'sh -c "trap \\"echo {label} got TERM{then}\\" TERM; echo {label} up; '
            f'while :; do sleep 0.2; done"')


# Three processes that outlive the main one: one in a session of its own, one double-forked
# (its parent exits at once), one that survives TERM and needs pyinit's KILL.
ESCAPEES = (f"setsid {_escapee('setsid')} & ({_escapee('double')} &); "
            f"{_escapee('survivor', exits=False)} & ")
ESCAPEE_LABELS = ("setsid", "double", "survivor")


def _require_podman() -> None:
    why = missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the podman tests must run in CI: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def podman():
    _require_podman()
    with session() as started:
        yield started


@pytest.fixture(scope="module")
def crun(podman: Podman) -> str | None:
    """Why crun cannot run here, or None (asked once)."""
    return crun_refusal(podman)


@pytest.fixture(params=["runc", "crun"])
def runtime(request: pytest.FixtureRequest, podman: Podman) -> str:
    if request.param == "crun":
        refusal = request.getfixturevalue("crun")
        if refusal:
            pytest.skip(f"crun cannot run on this machine: {refusal}")
    return request.param


def _wait_for_log(podman: Podman, name: str, *texts: str, times: int = 1,
                  timeout: float = 15) -> None:
    """Until every text is in the container's logs (at least `times` times)."""
    wait_for(lambda: all(podman.logs(name).count(text) >= times for text in texts), timeout,
             f"{texts} in the logs of {name}")


def _run_escapees(podman: Podman, name: str, *options: str, main: str = "exec sleep 4242",
                  grace: float = GRACE) -> None:
    """Start a container whose main process leaves the three escapees, once they all run."""
    podman("run", "--detach", "--name", name, "--env", f"PYINIT_GRACE={grace}",
           "--env", "PYINIT_VERBOSE=1", *options, podman.image, "sh", "-c", ESCAPEES + main)
    _escapees_up(podman, name)


def _escapees_up(podman: Podman, name: str, times: int = 1) -> None:
    _wait_for_log(podman, name, *(f"{label} up" for label in ESCAPEE_LABELS), times=times)


def _assert_escapees_got_term(logs: str) -> None:
    for label in ESCAPEE_LABELS:
        assert f"{label} got TERM" in logs, logs
    assert "SIGKILL to 0" not in logs, logs  # the survivor needed the KILL


def _main_pid_in_namespace(podman: Podman, container: str, main: list[str]) -> int:
    """The PID, as seen inside the container, of pyinit's main child (command line main), once
    it has exec'd main: a log line seen may be pyinit's own, written before the exec."""
    pyinit, found = podman.pid(container), []

    def exec_done() -> bool:
        found[:] = [child for child in psutil.Process(pyinit).children()
                    if _cmdline(child.pid) == main]
        return bool(found)

    wait_for(exec_done, TIMEOUT, f"{main} below {container}'s pyinit")
    assert len(found) == 1, found
    return _ns_pid(found[0].pid)


def _ns_pid(host_pid: int) -> int:
    return int(proc_status(host_pid)["NSpid"].split()[-1])


# -- podman run ----------------------------------------------------------------------------


@pytest.mark.parametrize("script, status", [("exit 7", 7), ("kill -9 $$", 137)])
def test_exit_status_passes_through(podman: Podman, runtime: str, script: str,
                                    status: int) -> None:
    name = podman.name("exit")
    done = podman("run", "--name", name, "--runtime", runtime, podman.image, "sh", "-c", script,
                  check=False)
    assert done.returncode == status, done.stderr
    assert podman.exit_code(name) == status


def test_stop_tears_down_escapees_within_the_grace(podman: Podman) -> None:
    name = podman.name("stop")
    _run_escapees(podman, name)
    started = time.monotonic()
    podman("stop", "--time", "30", name)
    took = time.monotonic() - started
    assert took < GRACE + 10, f"podman stop took {took:.1f} s: its own timeout, not pyinit's grace"
    assert podman.exit_code(name) == 143
    _assert_escapees_got_term(podman.logs(name))


@pytest.mark.parametrize("sig", ["USR1", "SEGV"])
def test_kill_reaches_the_main_process(podman: Podman, sig: str) -> None:
    name = podman.name("kill")
    podman("run", "--detach", "--name", name, podman.image, "sh", "-c",
           f"trap 'echo got {sig}' {sig}; echo up; while :; do sleep 0.2; done")
    _wait_for_log(podman, name, "up")
    pyinit = podman.pid(name)
    podman("kill", "--signal", sig, name)  # to the container's PID 1: pyinit, which forwards it
    _wait_for_log(podman, name, f"got {sig}")
    assert podman.inspect(name, "{{.State.Status}}") == "running"
    assert podman.pid(name) == pyinit  # back to waiting, not exited:
    wait_for(lambda: state_of(pyinit) == "S", TIMEOUT, "pyinit to wait for signals again")


def test_orphans_from_the_tree_and_from_exec_are_reaped(podman: Podman) -> None:
    name = podman.name("orphans")
    podman("run", "--detach", "--name", name, podman.image, "sh", "-c",
           "(sleep 4243 &); echo up; exec sleep 4242")
    _wait_for_log(podman, name, "up")
    podman("exec", name, "sh", "-c", "sleep 4243 &")  # returns before its orphan's exec
    pyinit = podman.pid(name)
    namespace = pid_namespace(pyinit)
    orphans: list[int] = []

    def both_exec_done() -> bool:
        orphans[:] = [p for p in in_namespace(namespace) if _cmdline(p) == ["sleep", "4243"]]
        return len(orphans) == 2

    wait_for(both_exec_done, TIMEOUT, "both orphans' sleep 4243")
    for orphan in orphans:
        assert psutil.Process(orphan).ppid() == pyinit  # adopted by pyinit, not conmon
        os.kill(orphan, signal.SIGKILL)  # they die; pyinit must reap them
    wait_for(lambda: not any(state_of(p) for p in orphans), 10, "the orphans to be reaped")
    # pyinit and main, asleep (pyinit may still be running just after the reap)
    wait_for(lambda: sorted(state_of(p) for p in in_namespace(namespace)) == ["S", "S"],
             TIMEOUT, "only pyinit and main left, asleep")


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


@pytest.mark.parametrize("command, status, message", [
    ("no-such-command", 127, "cannot execute 'no-such-command': No such file or directory"),
    ("/dev/null", 126, "cannot execute '/dev/null': Permission denied"),
])
def test_exec_failure_leaves_nothing_behind(podman: Podman, runtime: str, tmp_path: Path,
                                            command: str, status: int, message: str) -> None:
    name = podman.name("exec-failure")
    cidfile = tmp_path / "cid"
    started = time.time()
    done = podman("run", "--rm", "--name", name, "--cidfile", str(cidfile), "--runtime",
                  runtime, podman.image, command, check=False)
    assert done.returncode == status, done.stderr
    assert message in done.stderr
    assert podman("container", "exists", name, check=False).returncode == 1
    cid = cidfile.read_text().strip()

    def leftovers() -> list[str]:
        """Processes that name the container (conmon, the runtime) and their children: a zombie
        lasts only while its parent does, and every parent a container leaves names it."""
        found = []
        for process in psutil.process_iter(["cmdline", "create_time"]):
            info = process.info
            if (info["create_time"] or 0) >= started - 1 and any(
                    cid in arg or name in arg for arg in info["cmdline"] or ()):
                found += [f"{p.pid} {state_of(p.pid)}" for p in [process, *_children(process)]]
        return found

    wait_for(lambda: not leftovers(), TIMEOUT, "no conmon, runtime or zombie left")


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children()
    except psutil.Error:
        return []


def test_read_only_as_nobody(podman: Podman) -> None:
    name = podman.name("read-only")
    done = podman("run", "--name", name, "--user", "65534", "--read-only",
                  "--env", "PYINIT_VERBOSE=1", podman.image, "sh", "-c",
                  "id -u; touch /x 2>/dev/null && exit 1; setsid sleep 100 & exit 5",
                  check=False)
    assert (done.returncode, done.stdout) == (5, "65534\n"), done.stderr
    assert "teardown: SIGTERM to 1" in done.stderr
    assert "warning" not in done.stderr


# -- pods: a shared PID namespace under catatonit's pause --------------------------------


def _infra_pid(podman: Podman, pod: str) -> int:
    infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
    return podman.pid(infra)


def _kill_main_from(podman: Podman, app: str, main: list[str], other: str) -> None:
    """kill -9 of app's main process from the other container, once it is sure that app's
    pyinit is not PID 1."""
    assert _ns_pid(podman.pid(app)) != 1
    podman("exec", other, "kill", "-9", str(_main_pid_in_namespace(podman, app, main)))


def test_pod_main_killed_from_another_container(podman: Podman) -> None:
    pod = podman.name("pod", kind="pod")
    podman("pod", "create", "--name", pod, "--share", "pid,ipc,uts")
    app, other = podman.name("pod-app"), podman.name("pod-other")
    _run_escapees(podman, app, "--pod", pod)
    podman("run", "--detach", "--pod", pod, "--name", other, "--entrypoint", "sleep",
           podman.image, "4242")
    pause = _infra_pid(podman, pod)
    assert _ns_pid(pause) == 1 and psutil.Process(pause).name() == "catatonit"
    _kill_main_from(podman, app, ["sleep", "4242"], other)
    assert podman("wait", app).stdout.strip() == "137"
    _assert_escapees_got_term(podman.logs(app))
    namespace = pid_namespace(pause)
    other_pid = podman.pid(other)
    assert sorted(in_namespace(namespace)) == sorted([pause, other_pid])


def test_pod_stop_kills_pyinit_mid_teardown_unless_the_app_stops_first(podman: Podman) -> None:
    """What the README tells pod users: `podman pod stop` stops the pause container with the
    others, its PID namespace dies, and the kernel SIGKILLs pyinit in its grace period; a
    workload container stopped first gets its grace, as Kubernetes does it."""
    pod = podman.name("pod-stop", kind="pod")
    podman("pod", "create", "--name", pod, "--share", "pid,ipc,uts")
    app = podman.name("pod-stop-app")
    grace = 6  # longer than podman may take to stop the pause container on a loaded machine
    _run_escapees(podman, app, "--pod", pod, grace=grace)
    podman("pod", "stop", "--time", "30", pod)
    logs = podman.logs(app)
    assert podman.exit_code(app) == 137, logs
    assert "pyinit: teardown:" not in logs, logs  # killed before it could finish
    podman("pod", "start", pod)
    _escapees_up(podman, app, times=2)  # the second run
    started = time.monotonic()
    podman("stop", "--time", "30", app)
    took = time.monotonic() - started
    logs = podman.logs(app)
    assert grace - 0.5 < took < grace + 10, (took, logs)
    assert podman.exit_code(app) == 143, logs
    assert logs.count("pyinit: teardown:") == 1, logs


def test_kube_play_the_shipped_manifest(podman: Podman, tmp_path: Path) -> None:
    manifest = (ROOT / "docker" / "pod.yaml").read_text()
    for image in ("my-service:latest", "busybox:1.36"):
        assert f"image: {image}" in manifest
        manifest = manifest.replace(f"image: {image}", f"image: {podman.image}")
    played = tmp_path / "pod.yaml"
    played.write_text(manifest)
    pod = podman.adopt("pyinit-example", kind="pod")
    app, sidecar = podman.adopt(f"{pod}-app"), podman.adopt(f"{pod}-sidecar")
    podman("kube", "play", "--network", "none", str(played))
    try:
        _wait_for_log(podman, app, "started")
        pause = _infra_pid(podman, pod)
        assert _ns_pid(pause) == 1 and psutil.Process(pause).name() == "catatonit"
        pyinit = podman.pid(app)
        assert proc_status(pyinit)["Uid"].split()[0] == "65534"
        _kill_main_from(podman, app, ["sleep", "infinity"], sidecar)
        wait_for(lambda: not state_of(pyinit), 10, "the app's pyinit to exit and be reaped")
        # The manifest keeps Kubernetes' default restartPolicy (Always): podman restarts it.
        wait_for(lambda: podman.inspect(app, "{{.RestartCount}}") == "1", TIMEOUT, "a restart")
        assert "exited: 137" in podman.logs(app)
        namespace = pid_namespace(pause)
        _wait_for_log(podman, app, "pyinit: started", times=2)
        wait_for(lambda: len(in_namespace(namespace)) == 4, TIMEOUT, "the restarted app")
        assert sorted(in_namespace(namespace)) == sorted(
            [pause, podman.pid(sidecar), podman.pid(app), *(
                p.pid for p in psutil.Process(podman.pid(app)).children())])
        # What the README tells users to do before `kube down`: stop the workload first.
        podman("stop", "--time", "30", app)
        assert podman.exit_code(app) == 143
        assert podman.inspect(app, "{{.State.Status}} {{.RestartCount}}") == "exited 1"
    finally:
        podman("kube", "down", str(played))
    assert podman("pod", "exists", pod, check=False).returncode == 1
    assert not [c for c in podman.containers() if c.startswith(pod)]


# -- rootless ------------------------------------------------------------------------------


# A session whose process dies with a container running, as a SIGKILLed xdist worker's does.
ABANDON = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import podman
session = podman.Podman.start()
session("run", "--detach", "--name", session.name("abandoned"), session.image, "sleep", "300")
print(session.root, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_abandoned_session_is_swept(podman: Podman) -> None:
    """The next session's start removes what a dead session left (its containers, then its
    directory) and leaves a live session alone."""
    done = subprocess.run([sys.executable, "-c", ABANDON, str(ROOT / "tests")],
                          capture_output=True, text=True, timeout=TIMEOUT * 4, check=False)
    root = Path(done.stdout.strip())
    assert done.returncode == -signal.SIGKILL and root.is_dir(), done.stderr
    left: list[psutil.Process] = []

    def sleeping() -> bool:  # `run --detach` returns before pyinit's child has exec'd sleep
        monitors = holders(root)
        try:
            left[:] = [*monitors, *(child for monitor in monitors
                                    for child in monitor.children(recursive=True))]
            return any(process.name() == "sleep" for process in left)
        except psutil.NoSuchProcess:
            return False

    wait_for(sleeping, 10, "the abandoned container's sleep")
    sweep_abandoned()
    assert not root.exists() and podman.root.is_dir()
    runc_states = subprocess.run(["runc", "list"], capture_output=True, text=True,
                                 timeout=TIMEOUT, check=False).stdout
    assert str(root) not in runc_states
    wait_for(lambda: not any(map(_alive, left)), 10, "the abandoned container's processes gone")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def rootless():
    _require_podman()
    with rootless_user() as user, session(user) as started:
        yield started


def test_rootless_exit_status(rootless: Podman) -> None:
    name = rootless.name("rootless-exit")
    done = rootless("run", "--name", name, rootless.image, "sh", "-c", "exit 7", check=False)
    assert done.returncode == 7, done.stderr


def test_rootless_teardown_without_cgroup_complaints(rootless: Podman) -> None:
    name = rootless.name("rootless-teardown")
    # The cgroup filesystem the container sees is read-only (v1 or v2). On a hybrid host like
    # the CI one, the memory cgroup path in /proc/self/cgroup does not exist in it either.
    probe = ("grep -E ' cgroup2? ' /proc/mounts | grep -v ' ro,' && exit 1; "
             "m=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup); "
             'test -n "$m" && test -d "/sys/fs/cgroup/memory$m" && exit 1; ')
    _run_escapees(rootless, name, main="sleep 1; " + probe + "exit 7")
    assert rootless("wait", name).stdout.strip() == "7"
    logs = rootless.logs(name)
    _assert_escapees_got_term(logs)
    # What pyinit said beyond its -v lifecycle lines (the teardown line names the mechanism,
    # e.g. a cgroup it read): no complaint at all, about cgroups or anything else.
    lifecycle = ("pyinit: started ", "pyinit: main child ", "pyinit: reaped ",
                 "pyinit: forwarded ", "pyinit: teardown: ")
    complaints = [line for line in logs.splitlines()
                  if line.startswith("pyinit:") and not line.startswith(lifecycle)]
    assert not complaints, logs
