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
