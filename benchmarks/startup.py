"""Start-up: wall time from spawn to reaped of INIT -- /bin/true, as PID 1 of a new namespace
and not, against a bare interpreter that does nothing.
"""

from __future__ import annotations

import os
import select
import signal
import time

from contenders import BARE, FLOOR, rotated
from processes import NS, WAIT


def time_once(argv: list[str]) -> float:
    """Wall time (ms) from spawn to reaped, stdout/stderr to /dev/null."""
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    start = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    try:
        pidfd = os.pidfd_open(pid)
        try:
            if not select.select([pidfd], [], [], WAIT)[0]:
                raise TimeoutError(f"{argv} did not exit")
        finally:
            os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        elapsed = (time.perf_counter_ns() - start) / 1e6
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        raise
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited {os.waitstatus_to_exitcode(status)}")
    return elapsed


def bench_startup(inits: dict[str, list[str]], runs: int) -> dict:
    commands = {name: [*prefix, "/bin/true"] for name, prefix in inits.items()}
    commands[FLOOR] = [*BARE, "-c", "pass"]
    names = list(commands)
    out: dict = {"pid1": {n: [] for n in names}, "plain": {n: [] for n in names}}
    for name in names:  # one untimed warm-up each: page cache, pyc files
        time_once(commands[name])
    for index in range(runs):
        for name in rotated(names, index):
            out["pid1"][name].append(time_once([*NS, *commands[name]]))
            out["plain"][name].append(time_once(commands[name]))
    return out
