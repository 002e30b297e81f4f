"""Collect exited children: a waitpid loop run on every SIGCHLD, never on a timer."""

from __future__ import annotations

import os
import time

from pyinit import log, procfs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

_PEEK = os.WEXITED | os.WNOHANG | os.WNOWAIT


def reap(describe: bool = False) -> Iterator[tuple[int, int, str]]:
    """Yield (pid, wait status, name) for every child that has exited by now.

    SIGCHLD coalesces, so one signal may stand for thousands of exits: loop until nothing more
    is ready. With describe, each zombie's name is read before it is reaped (after, it is gone).
    """
    while True:
        try:
            target, name = -1, ""
            if describe:
                info = os.waitid(os.P_ALL, 0, _PEEK)
                if info is None:
                    return
                target, name = info.si_pid, procfs.comm(info.si_pid)
            pid, status = os.waitpid(target, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status, name


def has_children() -> bool:
    """True while any child, running or zombie, is left: pyinit is a subreaper, so no child
    means no descendant at all."""
    try:
        os.waitid(os.P_ALL, 0, _PEEK)
    except ChildProcessError:
        return False
    return True


def exit_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


class OrphanRate:
    """Warns when orphans keep arriving faster than ORPHANS / SECONDS: a workload that leaks
    processes (a daemon double-forking per request, a loop of background jobs). A burst, such as
    a script's few hundred subshells, says nothing. At most one warning per QUIET seconds, so the
    warning cannot become a flood of its own."""

    ORPHANS, SECONDS, QUIET = 1000, 10.0, 60.0

    def __init__(self) -> None:
        self.window = self.warned = -self.QUIET
        self.count = 0

    def add(self, orphans: int) -> None:
        now = time.monotonic()
        if now - self.window >= self.SECONDS:
            self.window, self.count = now, 0
        self.count += orphans
        if self.count > self.ORPHANS and now - self.warned >= self.QUIET:
            self.warned = now
            log.warning(f"reaped {self.count} orphans within {now - self.window:.1f} s: the "
                        "workload leaks processes (said at most once a minute; -v names each one)",
                        "orphan_rate", count=self.count)
