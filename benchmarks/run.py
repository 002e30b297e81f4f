"""pyinit against tini, dumb-init and catatonit: start-up, idle footprint, idle wake-ups, signal
forwarding latency, zombie storms and teardown. Prints a Markdown table and writes it, the raw
numbers (JSON) and a PNG chart under the results directory.

    .venv/bin/python benchmarks/run.py            # the full run, about 2-3 minutes, as root
    .venv/bin/python benchmarks/run.py --tiny     # a few seconds: checks the machinery only

Every measurement interleaves the contenders (A B C A B C ..., or all at once for the idle
window), so drift from other load hits all of them alike. Every process runs inside a PID
namespace made with ``unshare --kill-child`` and is killed by PID in a ``finally``; every wait
has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHILD = str(HERE / "child.py")
HOLDER = str(HERE / "holder.py")
# The interpreter pyinit runs on (the venv's python is a symlink to it): the floor's too.
PYTHON = os.path.realpath(sys.executable)
BARE = [PYTHON, "-I", "-S"]
FROZEN = Path(os.environ.get("PYINIT_FROZEN", "/opt/pyinit/pyinit"))
SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
NS = ["unshare", "--pid", "--fork", "--kill-child"]
NS_PROC = [*NS, "--mount-proc"]
FLOOR = "floor"
WAIT = 60.0  # the longest any single wait may take

_started: list[subprocess.Popen] = []


# ---------------------------------------------------------------- contenders


def contenders() -> dict[str, list[str] | None]:
    """Column name -> the argv prefix that runs COMMAND under that init (None: not available)."""
    venv_bin = Path(sys.executable).parent
    script = venv_bin / "pyinit"
    found: dict[str, list[str] | None] = {
        "pyinit": [str(script), "--"] if os.access(script, os.X_OK) else None,
        "pyinit -m": [sys.executable, "-m", "pyinit", "--"],
        "frozen": [str(FROZEN), "--"] if os.access(FROZEN, os.X_OK) else None,
    }
    anchors = {"tini": ["-s", "--"], "dumb-init": ["--"], "catatonit": ["--"]}
    for name, options in anchors.items():
        path = shutil.which(name)
        found[name] = [path, *options] if path else None
    return found


def versions() -> dict[str, str]:
    out = {}
    for package in ("tini", "dumb-init", "catatonit"):
        try:
            out[package] = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                text=True, timeout=10).stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            out[package] = "?"
    return out


# ---------------------------------------------------------------- processes


def popen(argv: list[str], **options) -> subprocess.Popen:
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


def wait_until(predicate, timeout: float, what: str):
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

    def __init__(self, stream) -> None:
        self.fd = stream.fileno()
        self.buffer = b""

    def ready(self) -> bool:
        return b"\n" in self.buffer or bool(select.select([self.fd], [], [], 0)[0])

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


def rotated(names: list[str], index: int) -> list[str]:
    """A B C, B C A, C A B, ...: interleaved, and no one always first."""
    shift = index % len(names)
    return names[shift:] + names[:shift]


# ---------------------------------------------------------------- 1. start-up


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


# ---------------------------------------------------------------- 2 + 3. idle


def bench_idle(inits: dict[str, list[str]], window: float) -> dict:
    """All contenders at once, each as PID 1 of its own namespace with a sleeping child."""
    commands = {name: [*NS_PROC, *prefix, SLEEP, "3600"] for name, prefix in inits.items()}
    commands[FLOOR] = [*NS_PROC, *BARE, "-c", "import time; time.sleep(3600)"]
    procs = {}
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


# ---------------------------------------------------------------- 4. signal latency


def bench_signals(inits: dict[str, list[str]], count: int) -> dict:
    """kill(target, SIGUSR1) -> the child's sigwaitinfo returning it, in microseconds.
    The floor is a kill straight to the child (no init in between)."""
    child = [*BARE, CHILD, "signal"]
    commands = {name: [*NS, *prefix, *child] for name, prefix in inits.items()}
    commands[FLOOR] = [*NS, *child]
    procs, readers, targets = {}, {}, {}
    try:
        for name, argv in commands.items():
            procs[name] = popen(argv, stdout=subprocess.PIPE)
            readers[name] = LineReader(procs[name].stdout)
        for name in commands:
            if readers[name].line() != "ready":
                raise RuntimeError(f"{name}: signal child did not start")
            targets[name] = the_init(procs[name])
        samples: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for index in range(count):
            for name in rotated(names, index):
                sent = time.monotonic_ns()
                os.kill(targets[name], signal.SIGUSR1)
                got = int(readers[name].line(10.0))
                samples[name].append((got - sent) / 1e3)
        return samples
    finally:
        for proc in procs.values():
            finish(proc)


# ---------------------------------------------------------------- 5. zombie storm


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


def storm_once(prefix: list[str], count: int, batch: int, stopped: bool = False) -> dict:
    """One storm with the init as PID 1: COUNT orphans, made beforehand and blocked, all exit
    at once. Samples the init's children until none but the main process is left; each sample
    also counts (or, past 64, estimates) the Z-state ones: the backlog.

    stopped: the init is SIGSTOPped until all COUNT orphans are zombies, then continued: the
    time is then the init's reaping alone, without the kernel's work of ending the processes."""
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
    # A real-time sampler: among thousands of runnable exiting processes a normal one gets no
    # CPU until the storm is over. It sleeps 3 ms between samples (each 1-3 ms), and starts at
    # once: the main process's "start" line may take a while to come.
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    try:
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
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
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
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if children(reaper) == [main]:
                zero_ns = time.monotonic_ns()
                break
            time.sleep(0.001)
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return {"ms": (zero_ns - started) / 1e6 if zero_ns else None, "backlog": count,
            "cpu_ms": (cpu_ns(reaper) - cpu_before) / 1e6, "samples": 0}


def bench_storms(inits: dict[str, list[str]], sizes: list[int], runs: int) -> dict:
    out: dict = {}
    names = list(inits)
    for size in sizes:
        batch = max(1, min(100, size // 10))
        results: dict[str, list[dict]] = {name: [] for name in names}
        for index in range(runs):
            for name in rotated(names, index):
                results[name].append(storm_once(inits[name], size, batch))
        out[str(size)] = results
    size = max(sizes)
    drained: dict[str, list[dict]] = {name: [] for name in names}
    for name in names:
        drained[name].append(storm_once(inits[name], size, max(1, min(100, size // 10)),
                                        stopped=True))
    out[f"{size} stopped"] = drained
    return out


# ---------------------------------------------------------------- 6. teardown


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
    out: dict = {}
    names = list(inits)
    for size in sizes:
        results: dict[str, list[dict]] = {name: [] for name in names}
        for index in range(runs):
            for name in rotated(names, index):
                results[name].append(teardown_once(inits[name], size))
        out[str(size)] = results
    return out


# ---------------------------------------------------------------- the table


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def build_table(results: dict, columns: list[str]) -> tuple[str, list[str]]:
    """The Markdown table and the target lines under it."""
    rows: list[tuple[str, dict[str, str]]] = []
    startup, idle = results.get("startup"), results.get("idle")
    sig, storms, teardown = results.get("signals"), results.get("storms"), results.get("teardown")

    def row(label: str, cells: dict[str, str]) -> None:
        rows.append((label, cells))

    if startup:
        for mode, label in (("pid1", "as PID 1 (unshare)"), ("plain", "not PID 1")):
            data = startup[mode]
            floor = statistics.median(data[FLOOR])
            row(f"start-up {label}: median ms [p25-p75]",
                {n: f"{statistics.median(v):.1f} [{pct(v, 25):.1f}-{pct(v, 75):.1f}]"
                 for n, v in data.items()})
            row(f"start-up {label}: median / floor",
                {n: f"{statistics.median(v) / floor:.2f}x" for n, v in data.items()})
    if idle:
        floor_rss = idle[FLOOR]["rss_kb"]
        floor_pss = idle[FLOOR]["pss_kb"]
        row("idle RSS MiB", {n: f"{v['rss_kb'] / 1024:.1f}" for n, v in idle.items()})
        row("idle RSS / floor", {n: f"{v['rss_kb'] / floor_rss:.2f}x" for n, v in idle.items()})
        row("idle PSS MiB", {n: f"{v['pss_kb'] / 1024:.1f}" for n, v in idle.items()})
        row("idle PSS / floor", {n: f"{v['pss_kb'] / floor_pss:.2f}x" for n, v in idle.items()})
        window = results["config"]["idle"]
        row(f"idle wake-ups in {window:g} s (voluntary ctx switches)",
            {n: str(v["wakeups"]) for n, v in idle.items()})
    if sig:
        row("signal forwarding p50 µs", {n: f"{pct(v, 50):.0f}" for n, v in sig.items()})
        row("signal forwarding p99 µs", {n: f"{pct(v, 99):.0f}" for n, v in sig.items()})
        if "tini" in sig:
            tini99 = pct(sig["tini"], 99)
            row("signal p99 / tini p99", {n: f"{pct(v, 99) / tini99:.2f}x" for n, v in sig.items()})
    if storms:
        for size, data in storms.items():
            def med(runs: list[dict], key: str) -> float | None:
                values = [r[key] for r in runs if r[key] is not None]
                return statistics.median(values) if values else None

            if size.endswith("stopped"):
                count = size.split()[0]
                row(f"reap {count} zombies at once (init stopped while they exit): ms, "
                    "init CPU ms",
                    {n: f"{fmt(med(v, 'ms'), 1)}, {fmt(med(v, 'cpu_ms'), 1)}"
                     for n, v in data.items()})
                continue
            row(f"storm {size} orphans exit at once: median ms to zero zombies",
                {n: fmt(med(v, 'ms'), 1) for n, v in data.items()})
            row(f"storm {size} orphans: max zombie backlog seen",
                {n: str(max(r["backlog"] for r in v)) for n, v in data.items()})
            row(f"storm {size} orphans: init's CPU ms while reaping (median)",
                {n: fmt(med(v, 'cpu_ms'), 1) for n, v in data.items()})
    if teardown:
        for size, data in teardown.items():
            row(f"teardown {size} escapees (not PID 1): median ms, left alive",
                {n: f"{statistics.median(r['ms'] for r in v):.1f}, "
                    f"{max(r['left'] for r in v)} left" for n, v in data.items()})

    header = "| metric | " + " | ".join(columns) + " |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for label, cells in rows:
        lines.append(f"| {label} | " + " | ".join(cells.get(c, "—") for c in columns) + " |")
    return "\n".join(lines), targets(results)


def targets(results: dict) -> list[str]:
    """One line per target pyinit should meet, with the measured number and whether it does."""
    out = []

    def line(ok: bool | None, text: str) -> None:
        mark = "n/a" if ok is None else ("MET" if ok else "MISSED")
        out.append(f"- **{mark}** {text}")

    startup, idle = results.get("startup"), results.get("idle")
    sig, storms, teardown = results.get("signals"), results.get("storms"), results.get("teardown")
    if startup:
        for mode, label in (("pid1", "as PID 1"), ("plain", "not PID 1")):
            data = startup[mode]
            floor = statistics.median(data[FLOOR])
            for name, limit in (("pyinit", 2.0), ("pyinit -m", 2.0), ("frozen", 3.0)):
                if name in data:
                    ratio = statistics.median(data[name]) / floor
                    line(ratio <= limit, f"start-up {label}, {name}: {ratio:.2f}x floor "
                         f"(target ≤ {limit:g}x)")
                elif name == "frozen":
                    line(None, f"start-up {label}, frozen: bundle not built")
    if idle:
        for name in ("pyinit", "frozen"):
            if name in idle:
                ratio = idle[name]["rss_kb"] / idle[FLOOR]["rss_kb"]
                line(ratio <= 1.3, f"idle RSS, {name}: {ratio:.2f}x bare interpreter "
                     f"(target ≤ 1.3x)")
                wakes = idle[name]["wakeups"]
                line(wakes == 0, f"idle wake-ups, {name}: {wakes} in "
                     f"{results['config']['idle']:g} s (target 0)")
    if sig and "tini" in sig:
        tini99 = pct(sig["tini"], 99)
        for name in ("pyinit", "frozen"):
            if name in sig:
                ratio = pct(sig[name], 99) / tini99
                line(ratio <= 2.0, f"signal p99, {name}: {pct(sig[name], 99):.0f} µs = "
                     f"{ratio:.2f}x tini's {tini99:.0f} µs (target ≤ 2x)")
    if storms:
        size = max((s for s in storms if s.isdigit()), key=int)
        data = storms[size]
        if "tini" in data:
            def med(name: str) -> float | None:
                values = [r["ms"] for r in data[name] if r["ms"] is not None]
                return statistics.median(values) if values else None

            def cpu(name: str) -> float:
                return statistics.median(r["cpu_ms"] for r in data[name])

            tini_backlog = max(r["backlog"] for r in data["tini"])
            for name in ("pyinit", "frozen"):
                if name not in data:
                    continue
                if med(name) is None:
                    line(False, f"storm {size}, {name}: zombies left at the {WAIT:g} s timeout")
                elif med("tini") is not None:
                    ratio = med(name) / med("tini")
                    backlog = max(r["backlog"] for r in data[name])
                    line(ratio <= 1.05,
                         f"storm {size}, {name}: {med(name):.0f} ms = {ratio:.2f}x tini's "
                         f"{med('tini'):.0f} ms (target ≤ 1x, 5% noise allowed); drained; "
                         f"backlog {backlog} (tini {tini_backlog}) of {size}; init CPU "
                         f"{cpu(name):.0f} ms (tini {cpu('tini'):.0f} ms)")
    if teardown:
        size = max(teardown, key=int)
        for name in ("pyinit", "frozen"):
            if name in teardown[size]:
                runs = teardown[size][name]
                ms = statistics.median(r["ms"] for r in runs)
                left = max(r["left"] for r in runs)
                line(ms <= 150 and left == 0, f"teardown {size} escapees, {name}: {ms:.1f} ms, "
                     f"{left} left (target ≤ 150 ms, 0 left)")
    return out


# ---------------------------------------------------------------- the chart


def chart(results: dict, columns: list[str], path: Path) -> str:
    """Start-up and idle-RSS ratios to the floor, one group of bars per init."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is missing (scripts/setup installs the bench extra)"
    startup, idle = results.get("startup"), results.get("idle")
    panels = [p for p in (startup and "startup", idle and "idle") if p]
    if not panels:
        return "no chart: start-up and idle were skipped"
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        shown = startup["pid1"] if panel == "startup" else idle
        names = [c for c in columns if c != FLOOR and c in shown]
        if panel == "startup":
            series = {}
            for mode, label in (("pid1", "as PID 1"), ("plain", "not PID 1")):
                floor = statistics.median(startup[mode][FLOOR])
                series[label] = [statistics.median(startup[mode][n]) / floor
                                 if n in startup[mode] else 0 for n in names]
            limits = [(2.0, "source target 2x"), (3.0, "frozen target 3x")]
            title = "start-up of INIT -- /bin/true\n(median, ÷ python3 -I -S -c pass)"
        else:
            series = {
                "RSS": [idle[n]["rss_kb"] / idle[FLOOR]["rss_kb"] if n in idle else 0
                        for n in names],
                "PSS": [idle[n]["pss_kb"] / idle[FLOOR]["pss_kb"] if n in idle else 0
                        for n in names],
            }
            limits = [(1.3, "target 1.3x")]
            title = "idle footprint while the child sleeps\n(÷ a bare sleeping python3 -I -S)"
        width = 0.8 / len(series)
        for k, (label, values) in enumerate(series.items()):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(names))]
            bars = ax.bar(xs, values, width, label=label)
            ax.bar_label(bars, labels=[f"{v:.2f}" if v else "n/a" for v in values],
                         fontsize=8, padding=2)
        for value, label in limits:
            ax.axhline(value, linestyle="--", linewidth=1, color="grey")
            ax.annotate(label, (len(names) - 0.5, value), ha="right", va="bottom",
                        fontsize=8, color="dimgrey")
        ax.axhline(1.0, linewidth=1, color="black")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("x floor")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {path}"


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="start-up runs per init (40)")
    parser.add_argument("--signals", type=int, default=2000, help="signals per init (2000)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, s (10)")
    parser.add_argument("--storm", default="1000,10000", help="storm sizes (1000,10000)")
    parser.add_argument("--storm-runs", type=int, default=3, help="runs per storm size (3)")
    parser.add_argument("--teardown", default="10,100", help="escapee counts (10,100)")
    parser.add_argument("--teardown-runs", type=int, default=5, help="runs per count (5)")
    parser.add_argument("--skip", default="", help="comma list of: startup,idle,signals,"
                        "storms,teardown")
    parser.add_argument("--results", type=Path, default=ROOT / "results",
                        help="where to write benchmark.md/.json/.png (results/)")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke configuration (tests use it)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.runs, args.signals, args.idle = 3, 20, 0.5
        args.storm, args.storm_runs, args.teardown, args.teardown_runs = "50", 1, "3", 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Let the untimed warm-up runs write current .pyc files, as an installed package has them:
    # with this set (some shells and CI set it) pyinit's edited modules compile on every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.geteuid() != 0:
        print("benchmarks/run.py needs root: it creates PID namespaces", file=sys.stderr)
        return 2
    found = contenders()
    inits = {name: prefix for name, prefix in found.items() if prefix}
    missing = [name for name, prefix in found.items() if not prefix]
    others = {n: p for n, p in inits.items() if n != "pyinit -m"}  # same process as `pyinit`
    skip = set(filter(None, args.skip.split(",")))
    config = {"runs": args.runs, "signals": args.signals, "idle": args.idle,
              "storm": args.storm, "storm_runs": args.storm_runs,
              "teardown": args.teardown, "teardown_runs": args.teardown_runs}
    results: dict = {"config": config, "missing": missing, "versions": versions(),
                     "commands": {n: " ".join(p) for n, p in inits.items()},
                     "python": PYTHON, "kernel": platform.release(), "cpus": os.cpu_count()}
    steps = [
        ("startup", lambda: bench_startup(inits, args.runs)),
        ("idle", lambda: bench_idle(others, args.idle)),
        ("signals", lambda: bench_signals(others, args.signals)),
        ("storms", lambda: bench_storms(
            others, [int(s) for s in args.storm.split(",")], args.storm_runs)),
        ("teardown", lambda: bench_teardown(
            others, [int(s) for s in args.teardown.split(",")], args.teardown_runs)),
    ]
    failed: list[str] = []
    try:
        for name, step in steps:
            if name in skip:
                continue
            began = time.monotonic()
            print(f"... {name}", file=sys.stderr, flush=True)
            try:
                results[name] = step()
            except (OSError, RuntimeError, TimeoutError, EOFError, ValueError) as error:
                failed.append(name)  # the other rows are still worth having
                traceback.print_exc()
                print(f"    {name} FAILED: {error}", file=sys.stderr, flush=True)
            finally:
                finish_all()
            print(f"    {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)
    finally:
        finish_all()

    columns = [n for n in ("pyinit", "pyinit -m", "frozen", "tini", "dumb-init", "catatonit")
               if n in found] + [FLOOR]
    table, target_lines = build_table(results, columns)
    versions_text = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    notes = [
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; kernel {results['kernel']}, "
        f"{results['cpus']} CPUs; Python {platform.python_version()} ({PYTHON}); {versions_text}.",
        "Columns: `pyinit` = the console script `.venv/bin/pyinit` (what users run); "
        "`pyinit -m` = `.venv/bin/python -m pyinit` (start-up only: the same process "
        f"afterwards); `frozen` = {FROZEN}; tini runs with `-s`. "
        + (f"Not available: {', '.join(missing)}. " if missing else "")
        + "floor = `python3 -I -S -c pass` (start-up), a bare `python3 -I -S` that only sleeps "
        "(idle), a kill straight to the child with no init between (signals).",
        f"Config: {json.dumps(config)}."
        + (f" FAILED (rows missing): {', '.join(failed)}." if failed else ""),
    ]
    text = "\n\n".join([*notes[:1], table, "\n".join(target_lines), *notes[1:]]) + "\n"
    print(text, end="")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "benchmark.md").write_text(text)
    (args.results / "benchmark.json").write_text(json.dumps(results, indent=1) + "\n")
    print(chart(results, columns, args.results / "benchmark.png"), file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)} (see above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
