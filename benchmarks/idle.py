"""Idle footprint and wake-ups: all contenders at once, each PID 1 of its own namespace with a
sleeping child; their RSS and PSS, then their context switches over a quiet window.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from contenders import BARE, FLOOR
from processes import (
    NS_PROC,
    WAIT,
    descendants,
    exe,
    finish,
    popen,
    proc_fields,
    the_init,
    wait_until,
)

SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")


def bench_idle(inits: dict[str, list[str]], window: float) -> dict:
    """All contenders at once, each as PID 1 of its own namespace with a sleeping child."""
    commands = {name: [*NS_PROC, *prefix, SLEEP, "3600"] for name, prefix in inits.items()}
    commands[FLOOR] = [*NS_PROC, *BARE, "-c", "import time; time.sleep(3600)"]
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            procs[name] = popen(argv)
        tracked: dict[str, list[int]] = {}
        for name, proc in procs.items():
            init = the_init(proc)
            if name != FLOOR:
                wait_until(lambda init=init: any(exe(p) == SLEEP for p in descendants(init)),
                           WAIT, f"{name}'s sleeping child")
            tracked[name] = [init] + [p for p in descendants(init) if exe(p) != SLEEP]
        time.sleep(1.0)  # settle: nothing of start-up still in flight
        out: dict = {}
        for name, pids in tracked.items():
            rollups = [proc_fields(f"/proc/{p}/smaps_rollup") for p in pids]
            out[name] = {
                "rss_kb": sum(r.get("Rss", 0) for r in rollups),
                "pss_kb": sum(r.get("Pss", 0) for r in rollups),
                "processes": len(pids),
            }
        before = {n: [proc_fields(f"/proc/{p}/status") for p in pids]
                  for n, pids in tracked.items()}
        time.sleep(window)
        for name, pids in tracked.items():
            after = [proc_fields(f"/proc/{p}/status") for p in pids]
            for key, field in (("wakeups", "voluntary_ctxt_switches"),
                               ("involuntary", "nonvoluntary_ctxt_switches")):
                out[name][key] = sum(a.get(field, 0) - b.get(field, 0)
                                     for a, b in zip(after, before[name]))
        return out
    finally:
        for proc in procs.values():
            finish(proc)
