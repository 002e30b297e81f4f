"""Process plumbing for the benchmark: start and finish processes (every one killed by PID and
reaped), walk /proc, wait with a timeout, read lines with a timeout, find a namespace's PID 1.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

NS = ["unshare", "--pid", "--fork", "--kill-child"]
NS_PROC = [*NS, "--mount-proc"]
WAIT = 60.0  # the longest any single wait may take

T = TypeVar("T")

_started: list[subprocess.Popen] = []


def popen(argv: list[str], **options: Any) -> subprocess.Popen:
    options.setdefault("stdin", subprocess.DEVNULL)
    options.setdefault("stdout", subprocess.DEVNULL)
    options.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen(argv, **options)
    _started.append(proc)
    return proc


def finish(proc: subprocess.Popen) -> None:
    """Kill (by PID; unshare --kill-child takes its namespace along) and reap."""
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(WAIT)
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        if proc in _started:
            _started.remove(proc)


def finish_all() -> None:
    for proc in list(_started):
        finish(proc)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            return [int(p) for p in file.read().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children(pid))
    return out


def exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def proc_fields(path: str) -> dict[str, int]:
    """'Key: N kB' lines of /proc/PID/status or smaps_rollup (kB values as they are)."""
    out = {}
    try:
        with open(path) as file:
            for line in file:
                key, _, value = line.partition(":")
                words = value.split()
                if words and words[0].isdigit():
                    out[key.strip()] = int(words[0])
    except OSError:
        pass
    return out


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def the_init(ns_proc: subprocess.Popen) -> int:
    """The host PID of the namespace's PID 1 (unshare's child) once it has exec'd."""
    unshare_exe = exe(ns_proc.pid)

    def ready() -> int:
        kids = children(ns_proc.pid)
        return kids[0] if kids and exe(kids[0]) not in ("", unshare_exe) else 0

    return wait_until(ready, WAIT, "the namespace's PID 1")


class LineReader:
    """Lines from a child's stdout pipe, each read bounded by a timeout."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        self.buffer = b""

    def line(self, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError("timed out waiting for a line")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("pipe closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()
