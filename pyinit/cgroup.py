"""Teardown by cgroup: when pyinit is alone in its cgroup at start-up (a container's first
process), everything that is in that cgroup later is what pyinit answers for. That includes what
`runc exec`, `docker exec` or `kubectl exec` started in the container, which no walk of pyinit's
tree can find, and it costs a read of the container's cgroup.procs instead of all of /proc.

Reading suffices (a default container's cgroupfs is read-only). Processes are signalled through
pidfds checked, once open, against the start time seen at the scan, so a recycled PID is never
hit, and teardown sleeps on those pidfds: processes that are not pyinit's children (the exec'd
ones) wake it when they die, as its own children's SIGCHLD does.
"""

from __future__ import annotations

import _signal
import contextlib
import os

from pyinit import log, probe, procfs, signals


def claim() -> probe.Cgroup | None:
    """pyinit's cgroup when pyinit is its only process; None when it shares it (a shell on a
    host), when no cgroupfs can be read, or when /proc is not this namespace's (identities
    could not be checked). Any error means "not available": never a warning, never a failure;
    the teardown line at -v names the mechanism used."""
    if not procfs.is_ours():
        return None
    for cgroup in probe.cgroups():
        try:
            if cgroup.holds_only(os.getpid()):
                return cgroup
        except OSError as error:  # EACCES, ENOENT... : not available, and said only at -v
            log.info(f"cgroup: cannot read {cgroup.describe()} ({error.strerror})",
                     "cgroup_unavailable", mechanism=cgroup.describe())
    return None


class CgroupScope:
    """A teardown scope (see teardown.py): every process in the claimed cgroup but pyinit."""

    complete = True

    def __init__(self, cgroup: probe.Cgroup) -> None:
        self.cgroup = cgroup
        self.use_pidfd = probe.pidfd()
        self.signalled: dict[int, dict[tuple[int, str], str]] = {}
        self.denied: set[tuple[int, str]] = set()
        self.watched: dict[int, int] = {}  # pidfd -> pid, until the process is gone
        self.unwatched = False  # signalled without a pidfd: wake-ups need a deadline
        # pidfds held to wake on, leaving descriptors for /proc and cgroup.procs: past the
        # limit, a scan would find processes it cannot read (RLIMIT_NOFILE is often 1024)
        self.watch_limit = min(4096, os.sysconf("SC_OPEN_MAX") - 64)

    def signal_new(self, sig: int) -> bool:
        """Send sig to each process of the cgroup that has not had it (CONT too, if stopped);
        True while any process pyinit may signal is left in it."""
        done = self.signalled.setdefault(sig, {})
        left = False
        for pid in self.cgroup.procs():
            if pid == os.getpid():
                continue
            identity = procfs.identity(pid)
            if identity is None or identity in self.denied:
                continue
            if identity in done:
                left = True
                continue
            # named before the signal: a process that dies of it has no command line left
            about = f"{pid} ({procfs.command_line(pid)})" if log.level >= log.INFO else ""
            try:
                if not self._send(pid, identity, sig):
                    continue  # gone meanwhile
            except PermissionError:  # nothing to wait for: the caller bounds what is left
                self.denied.add(identity)
                log.warning(f"cannot signal {pid} ({procfs.comm(pid)}): permission denied")
                continue
            left = True
            done[identity] = about
            if sig != signals.SIGKILL and procfs.stopping(pid):
                with contextlib.suppress(PermissionError):  # it exec'd a setuid program
                    self._send(pid, identity, signals.SIGCONT)
        return left

    @property
    def mechanism(self) -> str:
        return self.cgroup.describe()

    def count(self, sig: int) -> int | None:
        return len(self.signalled.get(sig, ()))

    def who(self, sig: int) -> str:
        done = self.signalled.get(sig, {})
        named = f" ({', '.join(done.values())})" if done and log.level >= log.INFO else ""
        return f"{len(done)}{named} in {self.mechanism}"

    def wait(self, timeout: float | None) -> None:
        """Until one of the signalled processes is gone, a signal comes, or the timeout."""
        if self.unwatched and (timeout is None or timeout > 0.05):
            timeout = 0.05  # a process pyinit could not watch dies unseen: look again soon
        if not self.watched:
            signals.wait(timeout)
            return
        import select

        poller = select.poll()
        for fd in self.watched:
            poller.register(fd, select.POLLIN)
        ready = poller.poll(None if timeout is None else max(int(timeout * 1000), 0))
        for fd, _ in ready:
            del self.watched[fd]
            os.close(fd)
        signals.take(signals.SIGCHLD)  # the reaping that follows covers it

    def _send(self, pid: int, identity: tuple[int, str], sig: int) -> bool:
        """Signal pid if it is still the process seen in the cgroup; False when it is gone."""
        if not self.use_pidfd:
            if procfs.identity(pid) != identity:
                return False
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return False
            self.unwatched = True
            return True
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:  # no descriptor left: by PID, guarded as above
            self.use_pidfd = False
            return self._send(pid, identity, sig)
        try:
            if procfs.identity(pid) != identity:
                os.close(fd)
                return False  # the pidfd holds a process that came after
            _signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        if len(self.watched) >= self.watch_limit:  # enough to wake on; the rest by deadline
            os.close(fd)
            self.unwatched = True
        else:
            self.watched[fd] = pid
        return True
