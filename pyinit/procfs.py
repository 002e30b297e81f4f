"""What /proc can tell about pyinit's processes, when /proc belongs to pyinit's PID namespace.

A /proc mounted for a parent namespace (`unshare --pid` without --mount-proc) numbers other
processes with the same PIDs: reading or signalling through it would hit strangers.
"""

from __future__ import annotations

import os

_ours: bool | None = None


def is_ours() -> bool:
    """Read once: the reaper asks for every orphan it names, and the mount does not change."""
    global _ours
    if _ours is None:
        try:
            _ours = os.readlink("/proc/self") == str(os.getpid())
        except OSError:
            _ours = False
    return _ours


def comm(pid: int) -> str:
    """A process's name; it outlives the command line, which a zombie no longer has."""
    if not is_ours():
        return "?"
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return "?"
    return text[text.find(b"(") + 1:text.rfind(b")")].decode(errors="replace")


def identity(pid: int) -> tuple[int, str] | None:
    """(pid, start time) while pid is alive in /proc, None once it is gone or a zombie; the
    start time tells a recycled PID. Other errors (no descriptor left) raise: a process that
    cannot be read is not a process that is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] == b"Z" and fields[17] == b"1":
        # only a zombie when no thread is left: a process whose main thread has exited
        # (pthread_exit from main) shows Z while its other threads run
        return None
    return pid, fields[19].decode()


def command_line(pid: int) -> str:
    """What `ps` shows: the command line, or the name in brackets once it has none."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    return b" ".join(words).decode(errors="replace") or f"[{comm(pid)}]"


_STOPS = 1 << 18 | 1 << 19 | 1 << 20 | 1 << 21  # bits of STOP, TSTP, TTIN, TTOU in a mask


def stopping(pid: int) -> bool:
    """Stopped, or about to be: a stop signal sent just before (by the main child on its way
    out, say) is still pending until the process next runs, and then it stops with the stop
    signal pyinit sent it pending. Either way it needs SIGCONT to act on that."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            text = status.read()
    except OSError:
        return False
    fields = dict(line.split(b":", 1) for line in text.splitlines() if b":" in line)
    state = fields.get(b"State", b"").split()
    if state and state[0] in (b"T", b"t"):
        return True
    return any(int(fields.get(key, b"0").strip(), 16) & _STOPS for key in (b"SigPnd", b"ShdPnd"))
