"""Zombie storms: N orphans, made beforehand and blocked, all exit at once under the init as
PID 1; how long until none is left, the largest zombie backlog seen, and the init's CPU time.
Once more with the init stopped while they exit, to time its reaping alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from contenders import BARE, CHILD, rounds
from processes import NS, WAIT, LineReader, children, finish, popen, the_init, wait_until


def cpu_ns(pid: int) -> int:
    """CPU time the process has used so far (first field of /proc/PID/schedstat), in ns."""
    try:
        with open(f"/proc/{pid}/schedstat") as file:
            return int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def zombies(pids: list[int], limit: int = 64) -> int:
    """How many of pids are zombies: counted exactly up to limit PIDs, else estimated from an
    evenly spread sample of limit of them (a full scan of 10000 /proc entries takes longer than
    the storm)."""
    step = max(1, len(pids) // limit)
    sample = pids[::step]
    count = 0
    for pid in sample:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # reaped meanwhile
        count += text[text.rfind(b")") + 2:][:1] == b"Z"
    return round(count * len(pids) / len(sample))


@contextmanager
def realtime() -> Iterator[None]:
    """This process as a real-time one meanwhile: among thousands of runnable exiting processes
    a normal one gets no CPU until the storm is over."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def storm_once(prefix: list[str], count: int, stopped: bool = False) -> dict:
    """One storm with the init as PID 1: COUNT orphans, made beforehand and blocked, all exit
    at once. Samples the init's children until none but the main process is left; each sample
    also counts (or, past 64, estimates) the Z-state ones: the backlog.

    stopped: the init is SIGSTOPped until all COUNT orphans are zombies, then continued: the
    time is then the init's reaping alone, without the kernel's work of ending the processes."""
    batch = max(1, min(100, count // 10))
    with tempfile.TemporaryFile() as errors:
        proc = popen([*NS, *prefix, *BARE, CHILD, "storm", str(count), str(batch)],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        try:
            return _storm(proc, count, stopped)
        except (EOFError, TimeoutError, RuntimeError) as error:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"storm of {count} under {prefix[0]}: {error}: "
                               f"{said[-1] if said else 'nothing on stderr'}") from None
        finally:
            if proc.poll() is None and proc.stdin:
                try:
                    proc.stdin.close()  # the main process exits, and the init with it
                    proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            finish(proc)


def _storm(proc: subprocess.Popen, count: int, stopped: bool) -> dict:
    reader = LineReader(proc.stdout)
    if reader.line() != "ready":
        raise RuntimeError("storm child did not start")
    chain = [the_init(proc)]
    while children(chain[-1]):  # down to the main process (a leaf before the storm)
        chain.append(children(chain[-1])[0])
    reaper, main = chain[-2], chain[-1]
    proc.stdin.write(b"g")
    proc.stdin.flush()
    if reader.line(max(WAIT, count / 100)) != "armed":
        raise RuntimeError("storm child did not arm")
    if stopped:
        return _drain(proc, reader, reaper, main, count)
    backlog, zero_ns, samples = 0, 0, 0
    cpu_before = cpu_ns(reaper)
    deadline = time.monotonic() + WAIT
    # The sampler sleeps 3 ms between samples (each 1-3 ms), and starts at once: the main
    # process's "start" line may take a while to come.
    with realtime():
        proc.stdin.write(b"g")
        proc.stdin.flush()
        while time.monotonic() < deadline:
            orphans = [p for p in children(reaper) if p != main]
            now = time.monotonic_ns()
            if not orphans:
                zero_ns = now
                break
            backlog = max(backlog, zombies(orphans))
            samples += 1
            time.sleep(0.003)
    cpu_ms = (cpu_ns(reaper) - cpu_before) / 1e6
    started = int(reader.line().split()[1])
    return {"ms": (zero_ns - started) / 1e6 if zero_ns else None, "backlog": backlog,
            "cpu_ms": cpu_ms, "samples": samples}


def _drain(proc: subprocess.Popen, reader: LineReader, reaper: int, main: int,
           count: int) -> dict:
    os.kill(reaper, signal.SIGSTOP)  # forced even on a namespace's PID 1, from outside
    try:
        proc.stdin.write(b"g")
        proc.stdin.flush()
        reader.line()  # "start": the orphans are released
        wait_until(lambda: (lambda o: len(o) >= count and zombies(o, count) == len(o))(
            [p for p in children(reaper) if p != main]), WAIT, "all orphans to be zombies")
    finally:
        cpu_before = cpu_ns(reaper)
        started = time.monotonic_ns()
        os.kill(reaper, signal.SIGCONT)
    zero_ns = 0
    with realtime():
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if children(reaper) == [main]:
                zero_ns = time.monotonic_ns()
                break
            time.sleep(0.001)
    return {"ms": (zero_ns - started) / 1e6 if zero_ns else None, "backlog": count,
            "cpu_ms": (cpu_ns(reaper) - cpu_before) / 1e6, "samples": 0}


def bench_storms(inits: dict[str, list[str]], sizes: list[int], runs: int) -> dict:
    out: dict = {}
    names = list(inits)
    for size in sizes:
        out[str(size)] = rounds(names, runs, lambda name, size=size: storm_once(inits[name], size))
    size = max(sizes)
    out[f"{size} stopped"] = {name: [storm_once(inits[name], size, stopped=True)]
                              for name in names}
    return out
