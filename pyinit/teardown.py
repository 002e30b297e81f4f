"""After the main child has exited: stop everything left, gently then firmly, and reap it all.

The stop signal (TERM unless rewritten) goes to every descendant, with CONT to stopped ones so
it is acted on at once. pyinit then sleeps until SIGCHLD, with the grace period as its only
deadline, and is done the moment no descendant is alive. What is still alive then gets KILL.
Each wake-up scans again, so a process forked while the tree was being signalled is caught too.
"""

from __future__ import annotations

import os
import time

from pyinit import log, procfs, reaper, signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.tree import ProcessTree


def run(stop_signal: int, grace: float, group: int) -> None:
    if not reaper.has_children():
        return  # the common case: nothing left, and psutil is never imported
    started = time.monotonic()
    try:
        scope = _scope(group)
        _finish(scope, stop_signal, started + grace, grace)
    except (ImportError, MemoryError, SystemError, OSError) as error:
        # psutil cannot be loaded (memory pressure; an allocation failing inside the import
        # machinery can surface as SystemError) or /proc not read (no descriptors left): what
        # is left must be stopped all the same, within what is left of the grace period
        why = getattr(error, "strerror", None) or type(error).__name__
        scope = _blind(group, f"cannot walk the process tree ({why})")
        _finish(scope, stop_signal, started + grace, grace)
    log.info(f"teardown: {signals.name(stop_signal)} to {scope.who(stop_signal)}; SIGKILL to "
             f"{scope.who(signals.SIGKILL)}; done in {time.monotonic() - started:.3f} s")


def _finish(scope: ProcessTree | Blind, stop_signal: int, deadline: float, grace: float) -> None:
    """The stop signal until deadline, then KILL (bounded by grace where pyinit cannot see or
    signal everything), then reap."""
    _stop_all(scope, stop_signal, deadline)
    # Unbounded only when every process can be found and signalled: a process pyinit may not
    # signal can also hold, unreaped, children that die of the KILL without waking pyinit.
    bounded = not scope.complete or scope.denied
    _stop_all(scope, signals.SIGKILL, time.monotonic() + grace if bounded else None)
    if scope.complete and not scope.denied:
        while reaper.has_children():
            _wait(None)  # nothing alive: only zombies are left, and their SIGCHLD is due
    else:
        _reap_ready()
        if reaper.has_children():
            log.warning("exiting with processes left that " + (
                "pyinit may not signal" if scope.denied else
                "could not be found without /proc"))


def _scope(group: int) -> ProcessTree | Blind:
    """psutil's view when /proc shows pyinit's own PID namespace; otherwise signal blindly."""
    if not procfs.is_ours():
        return _blind(group, "no /proc of this PID namespace")
    from pyinit.tree import ProcessTree

    return ProcessTree()


def _blind(group: int, why: str) -> Blind:
    log.warning(f"{why}: tearing down "
                + ("every process (kill -1)" if os.getpid() == 1 else "the process group only"))
    return Blind(-1 if os.getpid() == 1 else -group)


class Blind:
    """Without /proc: kill(-1) reaches every process as PID 1; otherwise only the main child's
    process group can be named, and escapees from it cannot be found."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.complete = target == -1
        self.sent: set[int] = set()
        self.denied: set[int] = set()

    def signal_new(self, sig: int) -> bool:
        if sig not in self.sent:
            self.sent.add(sig)
            try:
                os.kill(self.target, sig)
            except ProcessLookupError:
                pass
            except PermissionError:  # not one of them may be signalled by pyinit's uid
                self.denied.add(self.target)
                log.warning(f"cannot send {signals.name(sig)} to {self.who(sig)}: "
                            "permission denied")
        return reaper.has_children()

    def who(self, sig: int) -> str:
        return "kill -1" if self.target == -1 else f"process group {-self.target}"


def _stop_all(scope: ProcessTree | Blind, sig: int, deadline: float | None) -> None:
    """Signal everything alive (again after each wake-up, for late forks) until nothing is
    alive or the deadline passes."""
    while scope.signal_new(sig):
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
    _reap_ready()


def _reap_ready() -> None:
    for pid, status, name in reaper.reap(describe=log.level >= log.INFO):
        log.info(f"reaped {pid} ({name}) during teardown: exit {reaper.exit_code(status)}")
