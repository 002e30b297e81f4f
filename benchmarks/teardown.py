"""Teardown: the init *not* PID 1 (below a holder), its main process leaves escapees and exits;
how long until the init exits, and how many escapees it left alive.
"""

from __future__ import annotations

import subprocess

from contenders import BARE, CHILD, HOLDER, rounds
from processes import NS_PROC, WAIT, LineReader, finish, popen


def teardown_once(prefix: list[str], count: int) -> dict:
    """The init below a holder PID 1 (so the kernel does not clean up for it); the main
    process leaves COUNT escapees and exits."""
    argv = [*NS_PROC, *BARE, HOLDER, str(WAIT / 2), *prefix, *BARE, CHILD, "escape", str(count)]
    proc = popen(argv, stdout=subprocess.PIPE)
    try:
        words = LineReader(proc.stdout).line(WAIT).split()
        return {"ms": int(words[0]) / 1e6, "left": int(words[1]), "escapees": int(words[2])}
    finally:
        finish(proc)


def bench_teardown(inits: dict[str, list[str]], sizes: list[int], runs: int) -> dict:
    return {str(size): rounds(list(inits), runs,
                              lambda name, size=size: teardown_once(inits[name], size))
            for size in sizes}
