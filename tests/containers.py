"""runc containers for the end-to-end tests: OCI bundles built in a temporary directory (a
busybox-static rootfs, an empty one that holds only /opt/pyinit, and a bare one that holds
nothing: what it runs is bind-mounted in, as engines do with their init), read-only root, no /tmp,
uid 65534, no terminal. Every runc call is bounded by `timeout -k`; every container started is
deleted with `runc delete -f`, whatever happens."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import FROZEN

RUNC = shutil.which("runc")
BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
NOBODY = 65534
TIMEOUT = 30
ENTRYPOINT = ["/opt/pyinit/pyinit", "--"]
LOOP = "while :; do sleep 0.05; done"  # a shell that is busy but answers signals at once
_ids = itertools.count()


def missing(bundle: bool = True) -> str | None:
    """Why the container tests cannot run here (bundle: they need the frozen bundle), or None."""
    if not RUNC:
        return "runc is not installed (scripts/setup installs it)"
    if not BUSYBOX:
        return "busybox-static is not installed (scripts/setup installs it)"
    if bundle and not os.access(FROZEN, os.X_OK):
        return f"no frozen bundle at {FROZEN} (scripts/build --install makes it)"
    return None


@contextlib.contextmanager
def made_images(bundle: bool = True) -> Iterator[Images]:
    """Images in a temporary directory for a test module; skip when the tools are missing (with
    CI set, missing is a failure)."""
    why = missing(bundle)
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"container tests must run in CI: {why}")
        pytest.skip(why)
    with tempfile.TemporaryDirectory(prefix="pyinit-runc-") as root:
        yield Images(Path(root))


def _bounded(argv: list[str], seconds: float = TIMEOUT) -> list[str]:
    return ["timeout", "-k", "5", str(seconds), *argv]


def runc(*args: str, seconds: float = TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(_bounded([RUNC, *args], seconds), capture_output=True, check=check,
                          stdin=subprocess.DEVNULL)


class Images:
    """The rootfs trees and a base config.json, made once per test session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.busybox = root / "busybox-rootfs"
        self.empty = root / "empty-rootfs"
        self.bare = root / "bare-rootfs"  # not even mount points: runc makes them
        self.bare.mkdir()
        for rootfs in (self.busybox, self.empty):
            for directory in ("proc", "dev", "sys", "opt"):
                (rootfs / directory).mkdir(parents=True)
            # What an image's `COPY --from=... /opt/pyinit /opt/pyinit` gives; the frozen bundle
            # is where the test suite finds it (PYINIT_FROZEN may point elsewhere). The single
            # file's tests run without it.
            if FROZEN.exists():
                shutil.copytree(FROZEN.parent, rootfs / "opt" / "pyinit", symlinks=True)
        (self.busybox / "bin").mkdir()
        shutil.copy2(BUSYBOX, self.busybox / "bin" / "busybox")
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for applet in applets:
            if applet != "busybox":
                (self.busybox / "bin" / applet).symlink_to("busybox")
        spec_dir = root / "spec"
        spec_dir.mkdir()
        subprocess.run(_bounded([RUNC, "spec"]), cwd=spec_dir, check=True)
        self.base = json.loads((spec_dir / "config.json").read_text())


class Container:
    """One runc container: config, `runc run` in the background, and cleanup."""

    def __init__(self, images: Images, args: list[str], *, rootfs: str | Path = "busybox",
                 pid_ns: str | None = "new", proc: bool = True, uid: int = NOBODY,
                 env: list[str] | None = None, binds: dict[str, Path] | None = None) -> None:
        """rootfs: "busybox", "empty", "bare" or a directory; binds: container path -> host
        file, bind-mounted read-only (an engine's init)."""
        self.id = f"pyinit-test-{os.getpid()}-{next(_ids)}"
        self.bundle = images.root / self.id
        self.bundle.mkdir()
        config = copy.deepcopy(images.base)
        process = config["process"]
        process["terminal"] = False
        process["args"] = args
        process["user"] = {"uid": uid, "gid": uid}
        process["env"] = env if env is not None else ["PATH=/bin"]
        path = rootfs if isinstance(rootfs, Path) else getattr(images, rootfs)
        config["root"] = {"path": str(path), "readonly": True}
        config["mounts"] += [{"destination": path, "type": "bind", "source": str(source),
                              "options": ["bind", "ro"]} for path, source in (binds or {}).items()]
        config["hostname"] = self.id[-40:]
        namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "pid"]
        if pid_ns == "new":
            namespaces.append({"type": "pid"})
        elif pid_ns is not None and pid_ns != "host":
            namespaces.append({"type": "pid", "path": pid_ns})
        config["linux"]["namespaces"] = namespaces
        if not proc:
            config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/proc"]
            # runc masks and read-only-mounts paths below /proc; with no /proc there is nothing
            # to mask.
            config["linux"]["maskedPaths"] = [
                p for p in config["linux"]["maskedPaths"] if not p.startswith("/proc")]
            config["linux"]["readonlyPaths"] = [
                p for p in config["linux"]["readonlyPaths"] if not p.startswith("/proc")]
        (self.bundle / "config.json").write_text(json.dumps(config))
        self.proc: subprocess.Popen | None = None
        self._pending = b""

    # -- life cycle ------------------------------------------------------------------------

    def run(self, seconds: float = TIMEOUT) -> subprocess.Popen:
        """`runc run` in the background; stdout and stderr are pipes."""
        self.proc = subprocess.Popen(
            _bounded([RUNC, "run", "--bundle", str(self.bundle), self.id], seconds),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return self.proc

    def run_detached(self) -> int:
        """`runc run -d`; returns the container's init PID on the host."""
        # The container keeps runc's stdio: files, not pipes, or waiting for runc would wait
        # for the container too.
        log = self.bundle / "runc.log"
        with open(log, "wb") as err:
            result = subprocess.run(_bounded([RUNC, "run", "-d", "--bundle", str(self.bundle),
                                              self.id]),
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        if result.returncode:
            raise AssertionError(f"runc run -d {self.id}: {log.read_text()}")
        return self.init_pid()

    def wait(self, seconds: float = TIMEOUT) -> tuple[int, bytes, bytes]:
        """`runc run`'s status, and all its output (stdout not yet read by readline)."""
        out, err = self.proc.communicate(timeout=seconds)
        out, self._pending = self._pending + out, b""
        return self.proc.returncode, out, err

    def readline(self, seconds: float = 10) -> bytes:
        """The next line from stdout, with a deadline: the test must not hang on it. Reads the
        pipe unbuffered, so a second line that arrived with the first is not hidden from the
        next select()."""
        import selectors

        deadline = time.monotonic() + seconds
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError(f"{self.id}: no line within {seconds} s "
                                         f"(got {self._pending!r})")
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._pending += chunk
        line, newline, self._pending = self._pending.partition(b"\n")
        return line + newline

    def expect_line(self, expected: bytes, seconds: float = 10) -> None:
        line = self.readline(seconds)
        assert line == expected, (line, expected)

    def state(self) -> dict:
        return json.loads(runc("state", self.id).stdout)

    def init_pid(self, seconds: float = 10) -> int:
        """pyinit's host PID (the container's init process), once the container runs."""
        deadline = time.monotonic() + seconds
        while True:
            result = runc("state", self.id, check=False)
            if result.returncode == 0:
                state = json.loads(result.stdout)
                if state.get("status") == "running" and state.get("pid"):
                    return state["pid"]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.id} is not running: {result.stderr.decode()}")
            time.sleep(0.02)

    def kill(self, signal: str) -> None:
        runc("kill", self.id, signal)

    def exec(self, *args: str, seconds: float = TIMEOUT) -> subprocess.CompletedProcess:
        return runc("exec", "--user", f"{NOBODY}:{NOBODY}", self.id, *args, seconds=seconds)

    def delete(self) -> None:
        runc("delete", "-f", self.id, check=False)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # only the `timeout runc run` this container started
            self.proc.wait(TIMEOUT)
        shutil.rmtree(self.bundle, ignore_errors=True)


def no_proc(root: Path, argv: list[str], binds: dict[str, Path] | None = None
            ) -> subprocess.Popen:
    """argv as PID 1 of a fresh PID namespace, chrooted into root bound read-only, /proc not
    mounted, uid 65534 (runc itself needs /proc in the container: it closes fds through
    /proc/self/fd). binds: container path -> host file, bind-mounted read-only."""
    for path in binds or {}:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    (root / "dev").mkdir(exist_ok=True)
    setup = ('root=$1; shift; mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" && '
             'mount --bind /dev "$root/dev" && while [ "$1" != -- ]; do '
             'mount --bind -o ro "$1" "$root$2" && shift 2; done && shift && exec "$@"')
    pairs = [str(item) for path, source in (binds or {}).items() for item in (source, path)]
    command = ["timeout", "-k", "5", str(TIMEOUT), "unshare", "--mount", "--propagation",
               "private", "--", "sh", "-c", setup, "sh", str(root), *pairs, "--",
               "unshare", "--pid", "--fork", "--kill-child", "--root", str(root),
               "--setuid", str(NOBODY), "--setgid", str(NOBODY), "--", *argv]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, seconds: float = TIMEOUT) -> tuple[int, bytes, bytes]:
    """Status, stdout and stderr of a no_proc() run; killed (by PID) if it outlives seconds."""
    try:
        out, err = proc.communicate(timeout=seconds)
    finally:
        kill_tree(proc)
    return proc.returncode, out, err


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a no_proc() run still going, and everything below it, by PID: its container's
    init would outlive `timeout`, since --setuid clears the parent-death signal that
    --kill-child set."""
    if proc.poll() is None:
        for process in tree(proc.pid):
            with contextlib.suppress(psutil.Error):
                process.kill()
        proc.kill()
    proc.wait(TIMEOUT)


def tree(pid: int) -> list[psutil.Process]:
    """Every process below pid (host view)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def cmdlines(pid: int) -> list[list[str]]:
    """The command line of every process below pid that still has one."""
    found = []
    for process in tree(pid):
        try:
            found.append(process.cmdline())
        except psutil.Error:
            pass
    return found


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def no_zombie_below(pid: int) -> bool:
    return all(state_of(p.pid) not in ("Z", "") for p in tree(pid))


def state_of(pid: int) -> str:
    """The state letter in /proc/PID/stat (R, S, T, Z...), or '' when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text[text.rfind(")") + 2]


def exists(pid: int) -> bool:
    """kill -0: the PID exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


def in_namespace(namespace: str) -> list[int]:
    """Host PIDs of every process in the given PID namespace."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    found.append(int(entry))
            except OSError:
                pass
    return found
