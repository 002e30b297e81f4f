"""Teardown in a crowded PID namespace: the init (not PID 1) tears down its escapees while N
unrelated processes share the namespace (the host's, a big pod's). The process tree reads all of
/proc on every wake-up, so its cost grows with the namespace; the cgroup path (the init alone in
a cgroup2 directory of its own, as a container's first process is) reads only that cgroup.
Only pyinit's columns: the other inits do not tear escapees down at all (see "teardown").
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from contenders import BARE, CHILD, HOLDER, rounds
from processes import NS_PROC, WAIT, LineReader, finish, popen

PATHS = {"tree": "cgroup1,cgroup2", "cgroup": ""}
TEARS_DOWN = ("pyinit", "frozen", "single")  # PYINIT_TEST_DISABLE for each path


def crowd_once(prefix: list[str], crowd: int, escapees: int, path: str) -> dict:
    cgroup = _cgroup() if path == "cgroup" else None
    join = ["/bin/sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh"]
    argv = [*NS_PROC, *BARE, CHILD, "crowd", str(crowd), *BARE, HOLDER, str(WAIT / 2),
            *(join if cgroup else []), *prefix, *BARE, CHILD, "escape", str(escapees)]
    env = {**os.environ, "PYINIT_TEST_DISABLE": PATHS[path]}
    proc = popen(argv, stdout=subprocess.PIPE, env=env)
    try:
        words = LineReader(proc.stdout).line(WAIT).split()
        return {"ms": int(words[0]) / 1e6, "left": int(words[1])}
    finally:
        finish(proc)
        if cgroup:
            _remove(cgroup)


def bench_crowd(inits: dict[str, list[str]], crowds: list[int], escapees: int,
                runs: int) -> dict:
    """{path: {crowd: {init: [results]}}} for pyinit, the frozen bundle and the single file."""
    mine = {name: prefix for name, prefix in inits.items() if name in TEARS_DOWN}
    paths = [path for path in PATHS if path != "cgroup" or _cgroup2()]
    return {path: {str(crowd): rounds(list(mine), runs, lambda name, crowd=crowd, path=path:
                                      crowd_once(mine[name], crowd, escapees, path))
                   for crowd in crowds}
            for path in paths}


def _cgroup2() -> str | None:
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields, _, after = line.partition(" - ")
            if after.startswith("cgroup2 ") and fields.split()[3] == "/":
                return fields.split()[4]
    return None


def _cgroup() -> str:
    path = os.path.join(_cgroup2() or "", f"pyinit-bench-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    return path


def _remove(cgroup: str) -> None:
    """The namespace dies with its holder, but the kernel empties the cgroup a moment later."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            os.rmdir(cgroup)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
