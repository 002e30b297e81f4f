"""What the kernel logged about stalls: a run that hangs or fails beside one may be the
machine's fault, not pyinit's. Standard library only: scripts/soak imports it too."""

from __future__ import annotations

import subprocess

# rcu_preempt "kthread starved", "rcu_sched self-detected stall", workqueue "hung=",
# hung tasks "blocked for more than"
STALL_WORDS = ("starved", "stall", "hung=", "blocked for more")


def stalls(timeout: float = 30) -> list[str]:
    """The kernel's reports of starved or hung CPUs, tasks and workqueues so far."""
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=False,
                         timeout=timeout).stdout
    return [line for line in log.splitlines() if any(word in line for word in STALL_WORDS)]
