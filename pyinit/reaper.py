"""Collect exited children: a waitpid loop run on every SIGCHLD, never on a timer."""

from __future__ import annotations

import os

from pyinit import procfs

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
