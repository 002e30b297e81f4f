"""Signal forwarding latency: kill(init, SIGUSR1) until the child's sigwaitinfo returns it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from contenders import BARE, CHILD, FLOOR, rounds
from processes import NS, LineReader, finish, popen, the_init


def bench_signals(inits: dict[str, list[str]], count: int) -> dict:
    """kill(target, SIGUSR1) -> the child's sigwaitinfo returning it, in microseconds.
    The floor is a kill straight to the child (no init in between)."""
    child = [*BARE, CHILD, "signal"]
    commands = {name: [*NS, *prefix, *child] for name, prefix in inits.items()}
    commands[FLOOR] = [*NS, *child]
    procs: dict[str, subprocess.Popen] = {}
    readers: dict[str, LineReader] = {}
    targets: dict[str, int] = {}
    try:
        for name, argv in commands.items():
            procs[name] = popen(argv, stdout=subprocess.PIPE)
            readers[name] = LineReader(procs[name].stdout)
        for name in commands:
            if readers[name].line() != "ready":
                raise RuntimeError(f"{name}: signal child did not start")
            targets[name] = the_init(procs[name])

        def latency(name: str) -> float:
            sent = time.monotonic_ns()
            os.kill(targets[name], signal.SIGUSR1)
            got = int(readers[name].line(10.0))
            return (got - sent) / 1e3

        return rounds(list(commands), count, latency)
    finally:
        for proc in procs.values():
            finish(proc)
