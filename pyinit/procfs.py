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
