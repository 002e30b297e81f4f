"""`pyinit --check [--json]`: what pyinit finds on this machine and what it will use, from the
same probes the runtime asks. Exit 0 when pyinit can do its job here, 1 with a one-line reason
when it cannot."""

from __future__ import annotations

import os
import sys

import _prctl

from pyinit import cgroup, probe, procfs

CANNOT = 1
# The capabilities that change what pyinit can do (signal other uids, write cgroups, limits).
CAPABILITIES = {5: "CAP_KILL", 21: "CAP_SYS_ADMIN", 24: "CAP_SYS_RESOURCE"}


def run(as_json: bool) -> int:
    found = findings()
    problem = None
    if not found["pid1"] and not found["subreaper"]:
        problem = ("not PID 1 and cannot become a child subreaper: orphans would be neither "
                   "reaped nor torn down")
    if as_json:
        import json

        sys.stdout.write(json.dumps({**found, "ok": problem is None}, sort_keys=True) + "\n")
    else:
        for key, value in found.items():
            sys.stdout.write(f"{key}: {_text(value)}\n")
    if problem:
        sys.stderr.write(f"pyinit: {problem}\n")
        return CANNOT
    return 0


def findings() -> dict[str, object]:
    cgroups = probe.cgroups()
    claimed = cgroup.claim()
    return {
        "pid1": os.getpid() == 1,
        "pid_namespace": _namespace("pid", _INITIAL_PID_NAMESPACE),
        "user_namespace": _namespace("user", _INITIAL_USER_NAMESPACE),
        "euid": os.geteuid(),
        "capabilities": _capabilities(),
        "stdin_tty": os.isatty(0),
        "proc": "own PID namespace" if procfs.is_ours() else "absent or another namespace's",
        "subreaper": _subreaper(),
        "pidfd_open": _pidfd_open(),
        "pidfd_send_signal": probe.pidfd(),
        "waitid_pidfd": _waitid_pidfd(),
        "cgroup_layout": _layout(cgroups),
        "cgroups": [_describe(group) for group in cgroups],
        "alone_in_cgroup": claimed is not None,
        "teardown": _teardown(claimed),
    }


def _describe(group: probe.Cgroup) -> dict[str, object]:
    found: dict[str, object] = {"version": group.version, "path": group.path,
                                "directory": group.directory}
    if group.version == 1:
        found["hierarchy"] = group.name
    else:
        for name in ("cgroup.kill", "cgroup.freeze", "cgroup.events"):
            found[name] = os.path.exists(group.file(name))
    found["can_create_child"] = _can_create_child(group)
    return found


def _can_create_child(group: probe.Cgroup) -> bool:
    """Tried for real: make a child cgroup and remove it (only ever the one made here)."""
    # unique beyond the PID: as PID 1 of a namespace every pyinit is 1, in a shared root
    child = group.file(f"pyinit-check-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.mkdir(child)
    except OSError:
        return False
    try:
        os.rmdir(child)
    except OSError:
        pass
    return True


def _teardown(claimed: probe.Cgroup | None) -> str:
    if claimed is not None:
        return f"cgroup: every process in {claimed.describe()}"
    if procfs.is_ours():
        return "process tree: descendants and adopted orphans, from /proc"
    if os.getpid() == 1:
        return "kill -1: no /proc of this PID namespace"
    return "process group only: no /proc of this PID namespace"


def _layout(cgroups: list[probe.Cgroup]) -> str:
    try:
        with open("/proc/self/cgroup") as memberships:
            keys = {line.split(":")[1] for line in memberships.read().splitlines()}
    except OSError:
        return "none"
    v2, v1 = "" in keys, bool(keys - {""})
    mounted_v2 = any(group.version == 2 for group in cgroups)
    if v2 and v1:
        return "hybrid" if mounted_v2 else "v1"
    return "v2" if v2 else ("v1" if v1 else "none")


def _subreaper() -> bool:
    if not probe.available("subreaper"):
        return False
    try:
        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    return True


def _pidfd_open() -> bool:
    if not probe.available("pidfd"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def _waitid_pidfd() -> bool:
    """waitid(P_PIDFD) on pyinit's own pidfd: ECHILD (not a child) means the kernel knows it."""
    if not _pidfd_open() or not hasattr(os, "P_PIDFD"):
        return False
    fd = os.pidfd_open(os.getpid())
    try:
        os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


# The kernel gives the initial namespaces fixed inode numbers (PROC_PID_INIT_INO and
# PROC_USER_INIT_INO in include/linux/proc_ns.h).
_INITIAL_PID_NAMESPACE, _INITIAL_USER_NAMESPACE = 0xEFFFFFFC, 0xEFFFFFFD


def _namespace(kind: str, initial: int) -> str:
    try:
        link = os.readlink(f"/proc/self/ns/{kind}")
    except OSError:
        return "unknown"
    return "initial" if link == f"{kind}:[{initial}]" else "child"


def _capabilities() -> list[str]:
    effective = int(_status("CapEff") or "0", 16)
    return [name for bit, name in CAPABILITIES.items() if effective >> bit & 1]


def _status(key: str) -> str:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_text(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_text(item)}" for key, item in value.items())
    return str(value)
