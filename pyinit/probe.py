"""What this kernel, these mounts and these rights let pyinit use. The runtime asks here before
choosing a mechanism, and `--check` prints the same answers, so what it says is what pyinit does.

PYINIT_TEST_DISABLE (comma-separated: pidfd, subreaper, cgroup2, cgroup1) makes a feature look
absent, so tests can force every fallback on a machine that has everything.
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

DISABLED = frozenset(os.environ.get("PYINIT_TEST_DISABLE", "").replace(",", " ").split())
_REMOVED = (errno.ENOENT, errno.ENODEV)  # what a removed cgroup's files fail with
V1_HIERARCHIES = ("pids", "freezer")  # present in every process's cgroup; no accounting needed


def available(feature: str) -> bool:
    return feature not in DISABLED


def pidfd() -> bool:
    """pidfd_open and pidfd_send_signal both work here (kernel >= 5.3, no seccomp veto)."""
    if not available("pidfd"):
        return False
    import _signal

    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    try:
        _signal.pidfd_send_signal(fd, 0)
        return True
    except (AttributeError, OSError):
        return False
    finally:
        os.close(fd)


class Cgroup:
    """pyinit's own cgroup in one hierarchy, as a directory pyinit can read."""

    def __init__(self, version: int, name: str, path: str, directory: str) -> None:
        self.version = version  # 2, or 1 for a v1 hierarchy
        self.name = name  # "" for v2, the controller for v1
        self.path = path  # as /proc/self/cgroup says
        self.directory = directory

    def file(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def procs(self) -> list[int]:
        """Every process in this cgroup and the cgroups below it (a workload may make some).
        0 stands for one that pyinit's PID namespace cannot see."""
        return list(self._walk())

    def holds_only(self, pid: int) -> bool:
        """Whether pid is all there is, stopping at the first other process: a host's root
        cgroup lists thousands."""
        return all(found == pid for found in self._walk())

    def _walk(self, directory: str = "") -> Iterator[int]:
        """Own cgroup.procs first (most answers need nothing more), then the cgroups below. One
        below that is removed meanwhile (its files then fail with ENOENT or ENODEV) held no
        process, since only an empty cgroup can be removed: it is skipped. Other errors
        propagate: skipping a directory would hide processes from teardown."""
        try:
            with open(os.path.join(directory or self.directory, "cgroup.procs"), "rb") as procs:
                found = procs.read().split()
            with os.scandir(directory or self.directory) as entries:
                below = [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]
        except OSError as error:
            if directory and error.errno in _REMOVED:
                return
            raise
        yield from map(int, found)
        for path in below:
            yield from self._walk(path)

    def describe(self) -> str:
        return f"cgroup{'2' if self.version == 2 else ' v1 ' + self.name} {self.path}"


def cgroups() -> list[Cgroup]:
    """pyinit's cgroups that can be read here, best first: v2, then the v1 pids and freezer
    hierarchies. Empty when cgroupfs is absent, or mounted for a different cgroup namespace."""
    try:
        with open("/proc/self/cgroup") as memberships, open("/proc/self/mountinfo") as mounts:
            own = _memberships(memberships.read())
            mounted = _mounts(mounts.read())
    except OSError:
        return []
    found = []
    for key, (version, name) in (("", (2, "")), *((n, (1, n)) for n in V1_HIERARCHIES)):
        if key not in own or not available(f"cgroup{version}"):
            continue
        path = own[key]
        for root, mount_point in reversed(mounted.get(key, [])):  # later mounts shadow
            if path != root and not path.startswith(root.rstrip("/") + "/"):
                continue  # our cgroup is outside what this mount shows
            directory = os.path.join(mount_point, path[len(root):].lstrip("/")).rstrip("/")
            if os.path.exists(os.path.join(directory or "/", "cgroup.procs")):
                found.append(Cgroup(version, name, path, directory or "/"))
                break
    return found


def _memberships(text: str) -> dict[str, str]:
    """hierarchy key ('' for v2, the controller for v1) -> path, from /proc/self/cgroup."""
    found = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for key in controllers.split(",") if controllers else [""]:
            found[key] = path
    return found


def _mounts(text: str) -> dict[str, list[tuple[str, str]]]:
    """hierarchy key -> [(root inside the hierarchy, mount point)], in mount order."""
    found: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        fields, _, after = line.partition(" - ")
        fstype, _, options = after.split(" ", 2)
        parts = fields.split()
        root, mount_point = _unescape(parts[3]), _unescape(parts[4])
        if fstype == "cgroup2":
            found.setdefault("", []).append((root, mount_point))
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in V1_HIERARCHIES:
                    found.setdefault(option, []).append((root, mount_point))
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")
