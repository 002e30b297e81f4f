"""The processes pyinit answers for, and signalling them without ever hitting a recycled PID.

Imported only when teardown finds children left: psutil costs ~25 ms and pyinit's start-up and
idle life do not need it.
"""

from __future__ import annotations

import _signal
import contextlib
import os

import psutil

from pyinit import log, probe, procfs, signals

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, ProcessLookupError)
_PIDFD = probe.available("pidfd")  # the kernel's answer comes from trying, below


class ProcessTree:
    """Every live process below pyinit. As a subreaper pyinit inherits every orphan of its
    tree, so this covers setsid'd, nohup'd and double-forked escapees too."""

    complete = True  # every process it answers for can be found and signalled

    def __init__(self) -> None:
        self.signalled: dict[int, dict[psutil.Process, str]] = {}
        self.denied: set[psutil.Process] = set()  # pyinit may not signal them (other uid)

    def signal_new(self, sig: int) -> bool:
        """Send sig to each live descendant that has not had it yet (CONT too, if stopped);
        True while any descendant pyinit may signal is alive."""
        done = self.signalled.setdefault(sig, {})
        alive = [process for process in _descendants() if process not in self.denied]
        for process in alive:
            if process in done:
                continue
            about = _describe(process) if log.level >= log.INFO else ""
            try:
                sent = _send(process, sig)
            except PermissionError:
                self.denied.add(process)
                log.warning(f"cannot signal {about or _describe(process)}: permission denied")
                continue
            if sent:
                done[process] = about
                if sig != signals.SIGKILL and procfs.stopping(process.pid):
                    with contextlib.suppress(PermissionError):  # it exec'd a setuid program
                        _send(process, signals.SIGCONT)
        return any(process not in self.denied for process in alive)

    mechanism = "process tree"

    def count(self, sig: int) -> int | None:
        return len(self.signalled.get(sig, {}))

    def who(self, sig: int) -> str:
        done = self.signalled.get(sig, {})
        if not done or log.level < log.INFO:
            return str(len(done))
        return f"{len(done)} ({', '.join(done.values())})"


def _descendants() -> list[psutil.Process]:
    """Not psutil's status(): a process whose main thread has exited looks like a zombie."""
    return [process for process in psutil.Process().children(recursive=True)
            if procfs.identity(process.pid) is not None]


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} ({' '.join(process.cmdline()) or process.name()})"
    except _GONE:
        return f"{process.pid} (gone)"


def _send(process: psutil.Process, sig: int) -> bool:
    """Signal through a pidfd, after checking the pidfd holds the process that was scanned
    (same PID and start time); False when the process is already gone, PermissionError when
    pyinit may not signal it."""
    if not _PIDFD:
        return _kill(process, sig)
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):  # kernel < 5.3, or seccomp: psutil's checked kill
        return _kill(process, sig)
    try:
        if not process.is_running():
            return False
        _signal.pidfd_send_signal(pidfd, sig)
        return True
    except _GONE:
        return False
    except (AttributeError, OSError):
        # EPERM or ENOSYS: a seccomp profile that allows pidfd_open but not this, or another
        # uid's process; kill(2) tells which
        return _kill(process, sig)
    finally:
        os.close(pidfd)


def _kill(process: psutil.Process, sig: int) -> bool:
    try:
        process.send_signal(sig)  # checks PID and start time first
    except _GONE:
        return False
    except psutil.AccessDenied:
        raise PermissionError(process.pid) from None
    return True
