"""Helpers for tests that run pyinit in real PID namespaces. Every namespace is created with
--kill-child, so whatever a test starts dies with it even when the test fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import kernel_log
import psutil
import pytest

from pyinit import __version__

ROOT = Path(__file__).resolve().parent.parent
SOURCE = [sys.executable, "-m", "pyinit"]
FROZEN = Path(os.environ.get("PYINIT_FROZEN", "/opt/pyinit/pyinit"))
# The single file scripts/build makes (scripts/build-single).
SINGLE = Path(os.environ.get(
    "PYINIT_SINGLE", ROOT / "dist" / f"pyinit-{__version__}-linux-{os.uname().machine}"))
NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
# As a subreaper: a plain shell is PID 1 of the namespace and pyinit is its child.
BELOW_SHELL = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]
TIMEOUT = 30
# Shell: make an orphan (its parent exits at once), then wait until its reaper has reaped it,
# 10 s at most: `kill -0` still succeeds on a zombie. A fixed sleep instead lost that race under
# load, and the orphan was reaped by the teardown instead.
REAPED_ORPHAN = ("o=$(sh -c 'sleep 0.1 >/dev/null & echo $!'); i=0; "
                 "while kill -0 $o 2>/dev/null && [ $i -lt 500 ]; "
                 "do sleep 0.02; i=$((i+1)); done; ")
# Put in front of pyinit's command by the `path` fixture: a wrapper that moves pyinit into a
# cgroup of its own before exec'ing it, so pyinit is alone there and takes the cgroup path.
JOIN: list[str] = []


def join_cgroup(directory: str) -> list[str]:
    return ["/bin/sh", "-c", f'echo $$ > {directory}/cgroup.procs && exec "$@"', "sh"]


ORIGINALS = {"tini": "/usr/bin/tini", "docker-init": "/usr/bin/tini",
             "dumb-init": "/usr/bin/dumb-init"}


def tool_links(kind: str, directory: Path) -> Path:
    """directory, holding tini, docker-init and dumb-init: links to the venv's pyinit
    ("source"), the frozen bundle's own links ("frozen", so the shipped links are what is
    tested), the single file ("single": what an engine bind-mounts as /sbin/docker-init), or
    Debian's tini and dumb-init ("original"). Skips when one is missing."""
    import pytest

    for name, original in ORIGINALS.items():
        target = {"source": ROOT / ".venv" / "bin" / "pyinit", "frozen": FROZEN.parent / name,
                  "single": SINGLE, "original": Path(original)}[kind]
        if not os.access(target, os.X_OK):
            pytest.skip(f"no {target} (scripts/setup and scripts/build make it)")
        (directory / name).symlink_to(target)
    return directory


def in_namespace(command: list[str], role: str) -> list[str]:
    """command run as PID 1 of a fresh PID namespace, or as a child of that namespace's PID 1."""
    return NAMESPACE + (BELOW_SHELL if role == "subreaper" else []) + JOIN + command


def require_single() -> Path:
    """The single file, or skip (fail under CI) when it is not built."""
    if not os.access(SINGLE, os.X_OK):
        why = f"no single file at {SINGLE} (scripts/build makes it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return SINGLE


class Running:
    """A started namespace with pyinit in it; kills the whole namespace on close."""

    def __init__(self, argv: list[str], **popen: object) -> None:
        self.proc = subprocess.Popen(argv, **popen)
        self._pyinit_pid = 0

    @property
    def pyinit_pid(self) -> int:
        """pyinit's PID as seen from the test (looked up on first use)."""
        if not self._pyinit_pid:
            self._pyinit_pid = find_pyinit(self.proc.pid)
        return self._pyinit_pid

    def signal(self, sig: int) -> None:
        os.kill(self.pyinit_pid, sig)

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def communicate(self, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
        return self.proc.communicate(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # unshare --kill-child takes the namespace down with it
            self.proc.wait(TIMEOUT)


def find_pyinit(root_pid: int, timeout: float = 10.0) -> int:
    """The host PID of the process named pyinit below root_pid (pyinit sets its own name)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for child in psutil.Process(root_pid).children(recursive=True):
                try:
                    if child.name() == "pyinit":
                        return child.pid
                except psutil.Error:
                    pass
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    raise AssertionError(f"no pyinit process appeared below {root_pid}")



def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll predicate (tests only: pyinit itself never polls) until true or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_idle(pid: int, timeout: float = TIMEOUT) -> None:
    """Until pyinit is back in its one wait (sigtimedwait), its start-up done: it closes the exec
    error pipe only after the child's exec, so descriptors or counters read when the child says
    ready may still change."""
    wait_for(lambda: "sigtimedwait" in Path(f"/proc/{pid}/wchan").read_text(), timeout,
             "pyinit to wait for signals")


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False



# --- helpers for the core-runtime suite -------------------------------------------------------

# As a subreaper, and audited: the namespace's PID 1 shell runs pyinit, then lists on stderr
# every process still in the namespace but itself ("survivor: <stat>"), then exits with pyinit's
# status. Only builtins run after pyinit exits, so a clean teardown leaves no survivor line.
# It catches live leftovers; a zombie handed to this shell may be reaped by its wait for pyinit,
# so zombie checks use a PID 1 that never reaps (test_shared_namespace).
AUDIT_SHELL = [
    "/bin/sh", "-c",
    '"$@"; rc=$?; for d in /proc/[0-9]*; do [ "$d" = /proc/1 ] && continue; '
    'read -r s < "$d/stat" 2>/dev/null && echo "survivor: $s" >&2; done; exit $rc',
    "sh",
]


def in_namespace_audited(command: list[str], role: str) -> list[str]:
    """Like in_namespace; as subreaper, PID 1 reports what outlived pyinit (see AUDIT_SHELL).
    As PID 1 the kernel kills the rest when pyinit exits, so tests check markers instead."""
    return NAMESPACE + (AUDIT_SHELL if role == "subreaper" else []) + JOIN + command


def survivors(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode(errors="replace").splitlines()
            if line.startswith("survivor:")]


def read_line(stream, timeout: float = TIMEOUT) -> bytes:
    """One line from a pipe, bounded by timeout. Reads byte by byte from the fd so nothing is
    buffered past the line (communicate() can still be used afterwards)."""
    import select

    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise AssertionError(f"timed out waiting for a line (got {line!r} so far)")
        byte = os.read(fd, 1)
        if not byte:
            raise AssertionError(f"end of output while waiting for a line (got {line!r})")
        line += byte
    return line


def run_bounded(argv: list, timeout: float = TIMEOUT, **popen: object
                ) -> subprocess.CompletedProcess:
    """subprocess.run(argv, capture_output=True, timeout=timeout), except that a run that
    outlasts timeout fails with what each of its processes was doing (state, kernel stack,
    pending signals) and what the kernel logged about stalls, captured before it is killed."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          **popen) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            found = describe_processes(proc.pid)
            proc.kill()  # unshare --kill-child takes the namespace with it
            proc.communicate(timeout=TIMEOUT)
            raise AssertionError(f"{argv!r} still running after {timeout} s:\n{found}"
                                 ) from None
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def describe_processes(root: int) -> str:
    """root and its descendants: state, wait channel, kernel stack and signal sets of each,
    then the kernel's recent complaints about stalled CPUs and tasks (RCU, workqueues)."""
    try:
        tree = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        tree = []
    found = []
    for process in tree:
        pid = process.pid
        try:
            status = proc_status(pid)
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            stack = " < ".join(line.split()[-1] for line in
                               Path(f"/proc/{pid}/stack").read_text().splitlines()[:6])
        except OSError as error:
            found.append(f"{pid}: {error.strerror}")
            continue
        found.append(f"{pid} ppid {status.get('PPid')} {status.get('Name')} "
                     f"{status.get('State')} wchan {wchan or '-'} stack {stack or '-'} "
                     f"SigPnd {status.get('SigPnd')} ShdPnd {status.get('ShdPnd')} "
                     f"SigBlk {status.get('SigBlk')}")
    uptime = Path("/proc/uptime").read_text().split()[0]
    return "\n".join([*found, f"kernel (uptime {uptime} s):", *kernel_log.stalls()[-5:]])


def read_until(stream, predicate, timeout: float = TIMEOUT) -> bytes:
    """Lines until one satisfies predicate (returned); the rest are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        line = read_line(stream, max(deadline - time.monotonic(), 0.001))
        if predicate(line):
            return line


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict."""
    with open(f"/proc/{pid}/status") as status:
        return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)


def sigset(mask: str) -> set[int]:
    """A SigBlk/SigIgn/SigCgt hex mask as the set of signal numbers."""
    bits = int(mask, 16)
    return {n + 1 for n in range(64) if bits >> n & 1}


def state(pid: int) -> str:
    """The one-letter state of a process (R, S, T, Z...), or '' when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def namespace_processes(running: Running) -> list[psutil.Process]:
    """Every process of the namespace that running started (host view, PID 1 included)."""
    try:
        return psutil.Process(running.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def zombies(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def host_pid(ns_pid: int, running: Running) -> int:
    """The host PID of the process that has PID ns_pid inside running's namespace."""
    for process in namespace_processes(running):
        try:
            nspids = proc_status(process.pid)["NSpid"].split()
        except (OSError, KeyError):
            continue
        if int(nspids[-1]) == ns_pid:
            return process.pid
    raise AssertionError(f"no process with PID {ns_pid} in the namespace")


def child_of(pid: int, timeout: float = 10.0) -> int:
    """The host PID of pid's first child (waits for one to appear)."""
    found: list[int] = []

    def has_child() -> bool:
        try:
            found[:] = [c.pid for c in psutil.Process(pid).children()]
        except psutil.NoSuchProcess:
            return False
        return bool(found)

    wait_for(has_child, timeout, f"a child of {pid}")
    return found[0]


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def kill_namespace(running: Running) -> None:
    """Kill a namespace whose PID 1 may have lost unshare's parent-death signal (setpriv and
    other credential changes clear it): SIGKILL its PID 1 by PID, then close unshare."""
    try:
        for process in psutil.Process(running.proc.pid).children():
            try:
                process.kill()
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    running.close()
