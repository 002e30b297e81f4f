"""Cgroups made by tests: a cgroup2 directory of the test's own, emptied (by PID) and removed
afterwards, even when the test failed."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator

from helpers import wait_for


def cgroup2_mount() -> str | None:
    """Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts)."""
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields, _, after = line.partition(" - ")
            if after.split(" ", 1)[0] == "cgroup2" and fields.split()[3] == "/":
                return fields.split()[4]
    return None


@contextlib.contextmanager
def make_cgroup(parent: str | None = None) -> Iterator[str]:
    """A fresh cgroup2 directory; whatever is in it at the end is SIGKILLed, then it goes."""
    base = parent or cgroup2_mount()
    assert base, "no cgroup2 mount"
    path = os.path.join(base, f"pyinit-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        remove(path)


@contextlib.contextmanager
def cpu_limited(cores: int) -> Iterator[str | None]:
    """A cgroup whose processes together get at most `cores` CPUs (CFS bandwidth: cgroup2's
    cpu.max where the cpu controller is enabled there, else the v1 cpu controller of a hybrid
    host), or None where neither can be made; emptied and removed at the end.

    Why: on this 6.18 kernel (PREEMPT_NONE), busy processes that wake each other through a pipe
    (dumb-init's suite runs two `yes | tail` pipelines) starved every other task for up to 28 s
    (RCU's kthread for 60 s), even at nice 10 beside a nice-0 sleeper; capped to one CPU, the
    same pipelines delayed that sleeper by 40 ms at most."""
    period = 100_000  # microseconds
    unified = cgroup2_mount()
    if unified and "cpu" in _words(os.path.join(unified, "cgroup.subtree_control")):
        parent, limits = unified, {"cpu.max": f"{cores * period} {period}"}
    elif os.path.exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        parent = "/sys/fs/cgroup/cpu"
        limits = {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": str(cores * period)}
    else:
        yield None
        return
    with make_cgroup(parent) as path:
        for name, value in limits.items():
            with open(os.path.join(path, name), "w") as limit:
                limit.write(value)
        yield path


def _words(path: str) -> list[str]:
    try:
        with open(path) as listed:
            return listed.read().split()
    except OSError:
        return []


def procs(path: str) -> list[int]:
    found = []
    for directory, _, _ in os.walk(path):
        with open(os.path.join(directory, "cgroup.procs")) as listed:
            found.extend(int(pid) for pid in listed.read().split())
    return found


def remove(path: str) -> None:
    for pid in procs(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not procs(path), what=f"{path} to empty")
    for directory, _, _ in sorted(os.walk(path), key=lambda entry: -len(entry[0])):
        os.rmdir(directory)
