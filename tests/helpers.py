"""Helpers for tests that run pyinit in real PID namespaces. Every namespace is created with
--kill-child, so whatever a test starts dies with it even when the test fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SOURCE = [sys.executable, "-m", "pyinit"]
FROZEN = Path(os.environ.get("PYINIT_FROZEN", "/opt/pyinit/pyinit"))
NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
# As a subreaper: a plain shell is PID 1 of the namespace and pyinit is its child.
BELOW_SHELL = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]
TIMEOUT = 30


def in_namespace(command: list[str], role: str) -> list[str]:
    """command run as PID 1 of a fresh PID namespace, or as a child of that namespace's PID 1."""
    return NAMESPACE + (BELOW_SHELL if role == "subreaper" else []) + command


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


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

