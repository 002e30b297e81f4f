"""Real podman for the tests: a private storage and containers.conf per test session, one image
(busybox-static plus the frozen bundle at /opt/pyinit, built offline with buildah from scratch and
committed straight into that storage), and cleanup of every container, pod and image by name.

What this machine needs, handled here rather than by hand:
- podman's default ulimits need CAP_SYS_RESOURCE, which the sandbox lacks: the session's
  containers.conf (CONTAINERS_CONF) sets `default_ulimits` within the current hard limits;
- crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode not supported"): runc is the
  default runtime, crun is used only where `crun_refusal()` says it runs;
- rootless slirp4netns cannot open /dev/net/tun here, and no test needs a network:
  `netns = "none"`;
- no systemd, no journald: `cgroup_manager = "cgroupfs"`, `events_logger = "file"`;
- no registry: the image is built locally, and podman builds its pod pause image (catatonit)
  locally too;
- nothing outside the session directory is kept: `--root`/`--runroot`, podman's `tmp_dir`,
  its network configuration and TMPDIR point into it, and what podman writes on the host
  whatever it is told (HOST_PATHS) is removed at close when the session made it.

Usage (in a module-scoped fixture, `with session() as podman: yield podman` does this):
    session = Podman.start()             # or Podman.start(user=...)
    name = session.name("exit")          # unique, and removed by close() whatever happens
    session("run", "--name", name, session.image, "sh", "-c", "exit 7", check=False)
    session.close()
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import FROZEN

from pyinit import procfs

PODMAN = shutil.which("podman")
BUILDAH = shutil.which("buildah")
BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
IMAGE = "localhost/pyinit-podman-test:test"
TIMEOUT = 60
_ids = itertools.count()
# Written by rootful podman and buildah whatever --root says (containers/image's blob info
# cache); removed at close when a session made them, deepest first.
HOST_PATHS = [Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),
              Path("/var/lib/containers/cache"), Path("/var/lib/containers"),
              Path("/run/crun")]  # crun's state directory, made by crun_refusal's probe
# Every module that runs podman or buildah runs on one pytest-xdist worker (--dist loadgroup):
# a session's close() removes the HOST_PATHS it made while another may still be using them.
STORAGE_GROUP = pytest.mark.xdist_group("containers-storage")
SESSION_PREFIX = "pyinit-podman-"  # directly under /tmp; see Podman.start


def missing(bundle: bool = True) -> str | None:
    """Why podman tests cannot run here (bundle: they need the frozen bundle), or None."""
    for tool, path in (("podman", PODMAN), ("buildah", BUILDAH), ("busybox-static", BUSYBOX)):
        if not path:
            return f"{tool} is not installed (scripts/setup installs it)"
    if bundle and not os.access(FROZEN, os.X_OK):
        return f"no frozen bundle at {FROZEN} (scripts/build --install makes it)"
    return None


def _limit(resource_id: int, wanted: int) -> str:
    """soft:hard no higher than the current hard limit (raising one needs CAP_SYS_RESOURCE)."""
    hard = resource.getrlimit(resource_id)[1]
    value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    return f"{value}:{value}"


def containers_conf(root: Path) -> str:
    """The session's containers.conf: podman's state, events and network configuration stay in
    root, and CNI plugins are looked for where there are none, so a test that would set up a
    network (a bridge and firewall rules on the host) fails instead."""
    nofile = _limit(resource.RLIMIT_NOFILE, 1024)
    nproc = _limit(resource.RLIMIT_NPROC, 4096)
    return (
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}", "nproc={nproc}"]\n'
        'netns = "none"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{root / "tmp"}"\n'
        f'image_copy_tmp_dir = "{root / "tmpdir"}"\n'
        "[network]\n"
        f'network_config_dir = "{root / "networks"}"\n'
        f'cni_plugin_dirs = ["{root / "no-cni-plugins"}"]\n'
    )


class Podman:
    """podman (and buildah) bound to one private storage; calling it runs `podman ARGS`.

    With user=NAME the commands run as that user (rootless podman) through `setpriv`, with
    HOME and XDG_RUNTIME_DIR inside the session directory; the directory must then be
    writable by that user (Podman.start makes it so)."""

    def __init__(self, root: Path, user: str | None = None) -> None:
        self.root = root
        self.user = user
        self.image = IMAGE
        self._names: dict[str, list[str]] = {"container": [], "pod": []}
        conf = root / "containers.conf"
        conf.write_text(containers_conf(root))
        self.env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CONTAINERS_CONF": str(conf),
            "HOME": str(root / "home"),
            "XDG_RUNTIME_DIR": str(root / "xdg"),
            "XDG_CONFIG_HOME": str(root / "home" / ".config"),
            "LANG": "C.UTF-8",
            "TMPDIR": str(root / "tmpdir"),  # image copies, not /var/tmp
        }
        self.storage = ["--root", str(root / "storage"), "--runroot", str(root / "run"),
                        "--storage-driver", "vfs"]
        for directory in ("home", "xdg", "storage", "run", "tmp", "tmpdir", "networks",
                          "no-cni-plugins"):
            (root / directory).mkdir(mode=0o700, exist_ok=True)
        self._host_paths_made = [path for path in HOST_PATHS if not path.exists()]

    @classmethod
    def start(cls, user: str | None = None) -> Podman:
        """A session with the test image built, in a new directory directly under /tmp (crun
        refuses a runroot longer than 50 characters, and pytest-xdist's tmp_path is deeper);
        on failure what it made is removed. Sessions whose process died unclosed go first."""
        sweep_abandoned()
        root = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
        # renamed into place: a sweep that read it empty, mid-write, would remove a live session
        (root / "owner.part").write_text(_identity(os.getpid()))
        (root / "owner.part").rename(root / "owner")
        if user is not None:
            shutil.chown(root, user, user)
        session = cls(root, user)
        try:
            if user is not None:
                for path in root.iterdir():
                    shutil.chown(path, user, user)
            session.build_image()
        except BaseException:
            session.close()
            raise
        return session

    # -- running commands ----------------------------------------------------------------

    def _as_user(self, argv: list[str]) -> list[str]:
        if self.user is None:
            return argv
        return ["setpriv", "--reuid", self.user, "--regid", self.user, "--init-groups",
                "--", *argv]

    def argv(self, *args: str, seconds: float = TIMEOUT) -> list[str]:
        """The full command line for `podman ARGS` (for Popen), killed after `seconds`."""
        return ["timeout", "-k", "5", str(seconds),
                *self._as_user([PODMAN, *self.storage, "--log-level=error", *args])]

    def __call__(self, *args: str, check: bool = True, seconds: float = TIMEOUT,
                 input: str | None = None) -> subprocess.CompletedProcess:
        """`podman ARGS` with text output; check=True fails the test on a non-zero status."""
        done = subprocess.run(self.argv(*args, seconds=seconds), env=self.env,
                              capture_output=True, text=True, input=input,
                              timeout=seconds + 10, check=False,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check:
            assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
        return done

    def popen(self, *args: str, **popen: object) -> subprocess.Popen:
        """`podman ARGS` in the background (stdout and stderr are pipes by default)."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.argv(*args), env=self.env, **popen)

    def buildah(self, *args: str) -> str:
        done = subprocess.run(
            ["timeout", "-k", "5", str(TIMEOUT * 4),
             *self._as_user([BUILDAH, *self.storage, *args])],
            env=self.env, capture_output=True, text=True, check=False,
            stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    # -- the image -------------------------------------------------------------------------

    def build_image(self) -> None:
        """busybox-static in /bin (every applet a symlink) and the frozen bundle at /opt/pyinit;
        entrypoint pyinit, PATH=/bin. Built from scratch, so no registry is needed."""
        if self.user is not None:
            # Rootless buildah mounts only inside its user namespace: assemble the tree here
            # and ADD it (a tarball keeps ownership and symlinks).
            self._build_from_tree()
            return
        container = self.buildah("from", "--name", f"pyinit-build-{os.getpid()}", "scratch")
        try:
            rootfs = Path(self.buildah("mount", container))
            _fill(rootfs)
            self._configure_and_commit(container)
        finally:
            self.buildah("rm", container)

    def _build_from_tree(self) -> None:
        tree = self.root / "rootfs"
        tree.mkdir()
        _fill(tree)
        tarball = self.root / "rootfs.tar"
        subprocess.run(["tar", "-C", str(tree), "-cf", str(tarball), "."], check=True,
                       timeout=TIMEOUT)
        shutil.rmtree(tree)
        shutil.chown(tarball, self.user, self.user)
        container = self.buildah("from", "--name", f"pyinit-build-{os.getpid()}", "scratch")
        try:
            self.buildah("add", container, str(tarball), "/")
            self._configure_and_commit(container)
        finally:
            self.buildah("rm", container)
            tarball.unlink()

    def _configure_and_commit(self, container: str) -> None:
        self.buildah("config", "--entrypoint", '["/opt/pyinit/pyinit", "--"]',
                     "--cmd", "sh", "--env", "PATH=/bin", container)
        self.buildah("commit", "--quiet", container, self.image)

    # -- looking at containers ------------------------------------------------------------

    def inspect(self, name: str, template: str) -> str:
        """One field of `podman inspect`, e.g. "{{.State.Pid}}"."""
        return self("inspect", "--format", template, name).stdout.strip()

    def pid(self, name: str) -> int:
        """The host PID of the container's first process (pyinit), 0 when it is not running."""
        return int(self.inspect(name, "{{.State.Pid}}"))

    def exit_code(self, name: str) -> int:
        return int(self.inspect(name, "{{.State.ExitCode}}"))

    def logs(self, name: str) -> str:
        """What the container wrote, stdout and stderr together."""
        done = self("logs", name)
        return done.stdout + done.stderr

    # -- names and cleanup -----------------------------------------------------------------

    def name(self, purpose: str, kind: str = "container") -> str:
        """A unique container (or pod) name, removed by close()."""
        return self.adopt(f"pyinit-{purpose}-{os.getpid()}-{next(_ids)}", kind)

    def adopt(self, name: str, kind: str = "container") -> str:
        """Remove this container (or pod) by name at close(): names fixed elsewhere, e.g. by a
        Kubernetes manifest."""
        self._names[kind].append(name)
        return name

    def remove_container(self, name: str) -> None:
        self("rm", "--force", "--time", "0", "--ignore", name, check=False)

    def remove_pod(self, name: str) -> None:
        self("pod", "rm", "--force", "--time", "0", "--ignore", name, check=False)

    def containers(self) -> list[str]:
        """Names of every container in the session's storage (pause containers included)."""
        done = self("ps", "--all", "--format", "{{.Names}}")
        return done.stdout.split()

    def close(self) -> None:
        """Remove what the session made, by name, then its storage and the host files podman
        writes whatever its configuration says (when they were not there before)."""
        for name in self._names["pod"]:
            self.remove_pod(name)
        for name in self._names["container"]:
            self.remove_container(name)
        self("rmi", "--force", "--ignore", self.image, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if any(_owned(root) for root in _sessions()):
            return  # another test run's session may be using them (a soak beside a test run)
        for path in self._host_paths_made:
            with contextlib.suppress(OSError):  # a directory someone else now uses stays
                path.rmdir() if path.is_dir() else path.unlink()


def _identity(pid: int) -> str:
    """pid and its start time in clock ticks since boot, as pyinit checks them: the same pid
    reused by another process does not match. (Not psutil's create_time: it adds /proc/stat's
    btime, which moves when the wall clock is stepped; once, under the soak, a live session was
    swept for it.)"""
    found = procfs.identity(pid)
    return f"{found[0]} {found[1]}" if found else ""


def _sessions() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{SESSION_PREFIX}*"))


def _owned(root: Path) -> bool:
    """Whether the process that made the session still runs (its owner file names it)."""
    try:
        owner = (root / "owner").read_text()
    except OSError:
        return False
    return bool(owner) and _identity(int(owner.split()[0])) == owner


def sweep_abandoned() -> None:
    """Remove the sessions whose process died without closing them, containers and pods first.

    A fixture's finally does not run in a SIGKILLed pytest-xdist worker, and an interrupted run
    gives its workers 10 s (xdist's EXIT_TIMEOUT) before killing them, too little for podman to
    remove a few containers under load: so the next session (and an interrupted soak) cleans up.
    A directory without an owner file is one being made, and is left alone."""
    for root in _sessions():
        if not (root / "owner").exists() or _owned(root):
            continue  # being made, or its process still runs
        try:
            uid = root.stat().st_uid
        except OSError:
            continue
        try:
            user = None if uid == 0 else pwd.getpwuid(uid).pw_name
        except KeyError:  # a rootless session whose user is gone, and its processes with it
            shutil.rmtree(root, ignore_errors=True)
            continue
        # its podman commands and conmons first: a command left waiting on the session's
        # locks blocks the removal, and one that outlives the storage hangs for good
        for process in holders(root):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        abandoned = Podman(root, user)
        abandoned("pod", "rm", "--all", "--force", "--time", "0", check=False)
        abandoned("rm", "--all", "--force", "--time", "0", check=False)
        _delete_runc_states(root)  # with its conmon killed, nothing deletes the runc state
        shutil.rmtree(root, ignore_errors=True)


def _delete_runc_states(root: Path) -> None:
    listed = subprocess.run(["runc", "list", "--format", "json"], capture_output=True,
                            text=True, timeout=TIMEOUT, check=False).stdout
    for state in json.loads(listed or "null") or []:
        if state.get("bundle", "").startswith(f"{root}/"):
            subprocess.run(["runc", "delete", "--force", state["id"]], capture_output=True,
                           timeout=TIMEOUT, check=False)


def holders(root: Path) -> list[psutil.Process]:
    """The processes that name the session directory root on their command line: podman
    commands and the conmons that watch its containers."""
    return [process for process in psutil.process_iter(["cmdline"])
            if str(root) in " ".join(process.info["cmdline"] or ())]


def _fill(rootfs: Path) -> None:
    """The image's tree: busybox-static and its applets in /bin, the bundle in /opt/pyinit."""
    bin_dir = rootfs / "bin"
    bin_dir.mkdir()
    shutil.copy2(BUSYBOX, bin_dir / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True, timeout=TIMEOUT).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (bin_dir / applet).symlink_to("busybox")
    for directory in ("opt", "tmp", "proc", "dev", "sys"):
        (rootfs / directory).mkdir(exist_ok=True)
    if FROZEN.exists():  # the single file's tests (--init-path) run without it
        shutil.copytree(FROZEN.parent, rootfs / "opt" / "pyinit", symlinks=True)


def crun_refusal(session: Podman) -> str | None:
    """Why crun cannot run a container here (its own words), or None when it can."""
    if not shutil.which("crun"):
        return "crun is not installed"
    name = session.name("crun-probe")
    try:
        done = session("run", "--rm", "--name", name, "--runtime", "crun", session.image,
                       "true", check=False)
    finally:
        session.remove_container(name)
    return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


@contextlib.contextmanager
def session(user: str | None = None) -> Iterator[Podman]:
    """Podman.start(user), closed whatever happens: a module fixture's body."""
    started = Podman.start(user)
    try:
        yield started
    finally:
        started.close()


@contextlib.contextmanager
def rootless_user(name: str = f"pyinit-rootless-{os.getpid()}") -> Iterator[str]:
    """A system user with 65536 subordinate uids and gids, for rootless podman; removed with
    its ranges, its processes and its traces in /etc at the end. The range starts above every
    range already in /etc/subuid and /etc/subgid."""
    start = max([100000, *_range_ends("/etc/subuid"), *_range_ends("/etc/subgid")])
    # useradd, usermod and userdel rewrite the shadow tools' backups (/etc/passwd- ...): they
    # are put back as they were (or removed) at the end, or they would keep the test user.
    backups = {path: path.read_bytes() if path.exists() else None for path in (
        Path(f"/etc/{db}-") for db in ("passwd", "group", "shadow", "gshadow", "subuid",
                                       "subgid"))}
    ids = f"{start}-{start + 65535}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True, timeout=TIMEOUT)
    try:
        subprocess.run(["usermod", "--add-subuids", ids, "--add-subgids", ids, name],
                       check=True, capture_output=True, timeout=TIMEOUT)
        yield name
    finally:
        _kill_processes_of(name)
        subprocess.run(["usermod", "--del-subuids", ids, "--del-subgids", ids, name],
                       capture_output=True, timeout=TIMEOUT, check=False)
        subprocess.run(["userdel", name], capture_output=True, timeout=TIMEOUT, check=False)
        for path, content in backups.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


def _kill_processes_of(user: str) -> None:
    """SIGKILL, by PID, what is left running as the test user: rootless podman's pause process
    (it holds the user namespace, reparented to init) and any conmon; userdel refuses while
    they live."""
    uid = pwd.getpwnam(user).pw_uid
    left = [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid]
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(left, timeout=10)


def _range_ends(path: str) -> list[int]:
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [int(start) + int(count) for _, start, count in
            (line.split(":") for line in lines if line.count(":") == 2)]
