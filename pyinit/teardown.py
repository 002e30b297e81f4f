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
    from pyinit.cgroup import CgroupScope
    from pyinit.probe import Cgroup
    from pyinit.tree import ProcessTree

    Scope = ProcessTree | CgroupScope | "Blind"


def run(stop_signal: int, grace: float, group: int, cgroup: Cgroup | None) -> None:
    """cgroup: the cgroup pyinit claimed at start-up, whose every process it answers for."""
    if not reaper.has_children() and _alone(cgroup):
        return  # the common case: nothing left, and psutil is never imported
    started = time.monotonic()
    try:
        scope = _stop_everything(stop_signal, grace, group, cgroup, started)
        seconds = round(time.monotonic() - started, 3)
        log.info(f"teardown: {signals.name(stop_signal)} to {scope.who(stop_signal)}; SIGKILL "
                 f"to {scope.who(signals.SIGKILL)}; done in {seconds:.3f} s", "teardown",
                 signal=signals.name(stop_signal), mechanism=scope.mechanism,
                 stopped=scope.count(stop_signal), killed=scope.count(signals.SIGKILL),
                 seconds=seconds)
    except MemoryError:  # even the fallback could not allocate: no scan, no words, just KILL
        _last_resort(group)


def _stop_everything(stop_signal: int, grace: float, group: int, cgroup: Cgroup | None,
                     started: float) -> Scope:
    try:
        scope = _scope(group, cgroup)
        _finish(scope, stop_signal, started + grace, grace)
    except Exception as error:
        # psutil cannot be loaded (memory pressure), /proc not read (no descriptors left, or
        # hidden by hidepid: psutil's AccessDenied), or anything else the walk did not foresee:
        # what is left must be stopped all the same, within what is left of the grace period,
        # never abandoned to a traceback. (SystemError: out of memory, an import of a frozen
        # module, as in the single file, can lose its MemoryError on the way out of importlib.)
        why = getattr(error, "strerror", None) or type(error).__name__
        scope = _blind(group, f"cannot walk the process tree ({why})")
        _finish(scope, stop_signal, started + grace, grace)
    return scope


def _last_resort(group: int) -> None:
    """SIGKILL to all (as PID 1) or the process group, then reap what is ready."""
    try:
        os.kill(-1 if os.getpid() == 1 else -group, signals.SIGKILL)
    except OSError:
        pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _alone(cgroup: Cgroup | None) -> bool:
    """Nothing but pyinit in the claimed cgroup (no exec'd process either)."""
    try:
        return cgroup is None or cgroup.holds_only(os.getpid())
    except OSError:
        return False  # the teardown proper finds out what it can


def _finish(scope: Scope, stop_signal: int, deadline: float, grace: float) -> None:
    """The stop signal until deadline, then KILL (bounded by grace where pyinit cannot see or
    signal everything), then reap."""
    _stop_all(scope, stop_signal, deadline)
    # Unbounded only when every process can be found and signalled: a process pyinit may not
    # signal can also hold, unreaped, children that die of the KILL without waking pyinit.
    bounded = not scope.complete or scope.denied
    _stop_all(scope, signals.SIGKILL, time.monotonic() + grace if bounded else None)
    if scope.complete and not scope.denied:
        while reaper.has_children():
            _wait(scope, None)  # nothing alive: only zombies are left, and their SIGCHLD is due
    else:
        _reap_ready()
        if reaper.has_children():
            log.warning("exiting with processes left that " + (
                "pyinit may not signal" if scope.denied else
                "could not be found without /proc"), "processes_left")


def _scope(group: int, cgroup: Cgroup | None) -> Scope:
    """The claimed cgroup; else psutil's view when /proc shows pyinit's own PID namespace;
    otherwise signal blindly."""
    if cgroup is not None:
        from pyinit.cgroup import CgroupScope

        return CgroupScope(cgroup)
    if not procfs.is_ours():
        return _blind(group, "no /proc of this PID namespace")
    from pyinit.tree import ProcessTree

    return ProcessTree()


def _blind(group: int, why: str) -> Blind:
    log.warning(f"{why}: tearing down "
                + ("every process (kill -1)" if os.getpid() == 1 else "the process group only"),
                "teardown_fallback")
    return Blind(-1 if os.getpid() == 1 else -group)


class Blind:
    """Without /proc: kill(-1) reaches every process as PID 1; otherwise only the main child's
    process group can be named, and escapees from it cannot be found."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.complete = target == -1
        self.sent: set[int] = set()
        self.denied: set[int] = set()
        self.mechanism = self.who(signals.SIGKILL)

    def count(self, sig: int) -> int | None:
        return None  # kill(-1) and kill(-group) do not say how many they reached

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


def _stop_all(scope: Scope, sig: int, deadline: float | None) -> None:
    """Signal everything alive (again after each wake-up, for late forks) until nothing is
    alive or the deadline passes."""
    while scope.signal_new(sig):
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        _wait(scope, timeout)


def _wait(scope: Scope, timeout: float | None) -> None:
    """Sleep until the timeout or a wake-up (a signal, or what the scope watches), then reap."""
    getattr(scope, "wait", _sleep)(timeout)
    _reap_ready()


def _sleep(timeout: float | None) -> None:
    """Signals other than SIGCHLD are not forwarded: the main child is gone and its whole tree is
    already being stopped."""
    sig = signals.wait(timeout)
    if sig not in (0, signals.SIGCHLD):
        log.info(f"ignoring {signals.name(sig)} during teardown", "ignored",
                 signal=signals.name(sig))


def _reap_ready() -> None:
    for pid, status, name in reaper.reap(describe=log.level >= log.INFO):
        code = reaper.exit_code(status)
        log.info(f"reaped {pid} ({name}) during teardown: exit {code}", "reaped", pid=pid,
                 command=name, status=code)
