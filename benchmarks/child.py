"""The main processes the benchmark runs under each init (run as ``python3 -I -S child.py MODE``).

Only builtin modules (os, _signal, time): the same tiny program runs under every init, and its
own start-up cost never counts in a measurement. Lines go to stdout, which every init passes on
untouched (catatonit closes fds >= 3, so no other fd is used).

signal             print "ready", then for each SIGUSR1 print the CLOCK_MONOTONIC ns at which
                   sigwaitinfo returned it (the signal is blocked: no handler race, none lost).
storm N BATCH      print "ready", wait for a byte on stdin; make N double-forked orphans
                   (intermediates of BATCH grandchildren each) that block on a pipe; print
                   "armed", wait for a byte; release them all at once (close the pipe), print
                   "start NS", wait for stdin EOF.
crowd N CMD...     start N unrelated processes (/bin/sleep, capped at 20000), then exec CMD:
                   as PID 1 of a namespace, a crowd that is nobody's descendant but CMD's.
escape N           make N TERM-obeying escapees (/bin/sleep; half setsid'd children, half
                   double-forked daemons), print "pids P1 P2 ...", then "exit NS" and exit.
"""

from __future__ import annotations

import _signal
import os
import sys
import time

CROWD_CAP = 20000  # a fork loop always has a hard cap on this 2-core machine


def _line(text: str) -> None:
    os.write(1, (text + "\n").encode())


def signal_mode() -> None:
    usr1 = {_signal.SIGUSR1}
    _signal.pthread_sigmask(_signal.SIG_BLOCK, usr1)
    _line("ready")
    while True:
        _signal.sigwaitinfo(usr1)
        _line(str(time.monotonic_ns()))


def _fork() -> int:
    """fork, retried for up to 10 s while the machine is out of PIDs (EAGAIN)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return os.fork()
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def storm_mode(count: int, batch: int) -> None:
    _line("ready")
    os.read(0, 1)  # the driver has found the init's PID
    release_r, release_w = os.pipe()
    made = 0
    while made < count:
        size = min(batch, count - made)
        pid = _fork()
        if pid == 0:
            os.close(release_w)
            for _ in range(size):
                if _fork() == 0:
                    os.read(release_r, 1)  # EOF when the main process closes release_w
                    os._exit(0)
            os._exit(0)  # the grandchildren are now orphans of the init, blocked
        os.waitpid(pid, 0)
        made += size
    _line("armed")
    os.read(0, 1)  # the driver is sampling
    started = time.monotonic_ns()
    os.close(release_w)  # all COUNT orphans exit at once
    _line(f"start {started}")
    while os.read(0, 4096):
        pass


def escape_mode(count: int) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)  # EOF once every escapee has exec'd sleep
    devnull = os.open(os.devnull, os.O_RDWR)
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if index % 2 and os.fork():
                os._exit(0)  # double-forked daemon: the intermediate exits at once
            os.write(write_end, f"{os.getpid()}\n".encode())
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execv("/bin/sleep", ["sleep", "3600"])
        if index % 2:
            os.waitpid(pid, 0)
    os.close(write_end)
    data = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        data += chunk
    _line("pids " + " ".join(data.decode().split()))
    _line(f"exit {time.monotonic_ns()}")
    os._exit(0)  # the setsid'd children are still ours: exit without waiting


def crowd_mode(count: int, command: list[str]) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for _ in range(min(count, CROWD_CAP)):
        if _fork() == 0:
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execv("/bin/sleep", ["sleep", "3600"])
    os.close(devnull)
    os.execv(command[0], command)


def main() -> None:
    if sys.argv[1] == "crowd":
        crowd_mode(int(sys.argv[2]), sys.argv[3:])
    mode, args = sys.argv[1], [int(arg) for arg in sys.argv[2:]]
    if mode == "signal":
        signal_mode()
    elif mode == "storm":
        storm_mode(*args)
    elif mode == "escape":
        escape_mode(*args)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
