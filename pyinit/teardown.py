"""After the main child has exited: stop everything left, gently then firmly, and reap it all.

The stop signal (TERM unless rewritten) goes to every descendant, with CONT to stopped ones so
it is acted on at once. pyinit then sleeps until SIGCHLD, with the grace period as its only
deadline, and is done the moment no descendant is alive. What is still alive then gets KILL.
Each wake-up scans again, so a process forked while the tree was being signalled is caught too.
"""

from __future__ import annotations

import time

from pyinit import log, reaper, signals


def run(stop_signal: int, grace: float) -> None:
    if not reaper.has_children():
        return  # the common case: nothing left, and psutil is never imported
    from pyinit import tree

    started = time.monotonic()
    termed: dict = {}
    killed: dict = {}
    _stop_all(tree, stop_signal, termed, started + grace)
    _stop_all(tree, signals.SIGKILL, killed, None)
    while reaper.has_children():
        _wait(None)
    log.info(f"teardown: {signals.name(stop_signal)} to {_who(termed)}; "
             f"SIGKILL to {_who(killed)}; done in {time.monotonic() - started:.3f} s")


def _stop_all(tree, sig: int, signalled: dict, deadline: float | None) -> None:
    """Signal every live descendant not yet signalled, and again after each wake-up, until none
    is alive or the deadline passes. signalled maps each process to how it was described."""
    while True:
        alive = tree.descendants()
        if not alive:
            return
        for process in alive:
            if process in signalled:
                continue
            about = tree.describe(process) if log.level >= log.INFO else ""
            if tree.send(process, sig):
                signalled[process] = about
                if sig != signals.SIGKILL and tree.is_stopped(process):
                    tree.send(process, signals.SIGCONT)
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        _wait(timeout)


def _wait(timeout: float | None) -> None:
    """Sleep until a signal or the timeout, then reap. Signals other than SIGCHLD are not
    forwarded: the main child is gone and its whole tree is already being stopped."""
    sig = signals.wait(timeout)
    if sig not in (0, signals.SIGCHLD):
        log.info(f"ignoring {signals.name(sig)} during teardown")
    for pid, status, name in reaper.reap(describe=log.level >= log.INFO):
        log.info(f"reaped {pid} ({name}) during teardown: exit {reaper.exit_code(status)}")


def _who(signalled: dict) -> str:
    if not signalled:
        return "none"
    return f"{len(signalled)} ({', '.join(signalled.values())})" if log.level >= log.INFO \
        else str(len(signalled))
