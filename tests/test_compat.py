"""pyinit under the names tini, docker-init and dumb-init (and --compat=NAME): every flag and
variable of both tools, side by side with the Debian tini and dumb-init where that is cheap."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import (
    ORIGINALS,
    REAPED_ORPHAN,
    child_of,
    in_namespace,
    read_line,
    run_bounded,
    state,
    tool_links,
    wait_for,
)

# The main child prints "ready", then "child N" / "grandchild N" for each signal N it gets.
# Blocked and taken with sigwaitinfo, not handled: a handler that runs just before pause() is
# entered leaves pause() waiting for a signal that has already come (seen under load).
PROBE = r"""
import os, signal
main = os.getpid()
awaited = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGTSTP}
signal.pthread_sigmask(signal.SIG_BLOCK, awaited)
# ready once the grandchild exists, so a signal sent to the group after "ready" reaches it
started, running = os.pipe()
if os.fork():
    os.read(started, 1)
    os.write(1, b"ready\n")
else:
    os.write(running, b"x")
who = "child" if os.getpid() == main else "grandchild"
while True:
    os.write(1, f"{who} {signal.sigwaitinfo(awaited).si_signo}\n".encode())
"""
PROBE_CMD = [sys.executable, "-c", PROBE]


def run(argv: list[str], env: dict[str, str] | None = None,
        **kwargs: object) -> subprocess.CompletedProcess[str]:
    return run_bounded(in_namespace(argv, "pid1"), 30, text=True,
                       env={**os.environ, **(env or {})}, **kwargs)


@pytest.fixture(params=["source", "frozen", "original"])
def inits(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """For side-by-side tests: pyinit's links, or Debian's tini and dumb-init, which must
    behave the same."""
    return tool_links(request.param, tmp_path_factory.mktemp("inits"))


def original(tool: str) -> str:
    if not os.access(ORIGINALS[tool], os.X_OK):
        pytest.skip(f"{ORIGINALS[tool]} is not installed (scripts/setup installs it)")
    return ORIGINALS[tool]


USAGE = [
    ("tini", ["-x", "true"]), ("tini", []), ("tini", ["-e", "256", "true"]),
    ("tini", ["-e", "x", "true"]), ("tini", ["-p", "SIGBOGUS", "true"]),
    ("tini", ["--version", "true"]), ("tini", ["-h"]), ("tini", ["--version"]),
    ("tini", ["-l"]), ("tini", ["-e"]),
    ("dumb-init", ["--bogus", "true"]), ("dumb-init", ["-x", "true"]), ("dumb-init", []),
    ("dumb-init", ["-r", "99:1", "true"]), ("dumb-init", ["-r", "15:32", "true"]),
    ("dumb-init", ["-r", "x", "true"]), ("dumb-init", ["-r"]), ("dumb-init", ["-h"]),
    ("dumb-init", ["--help"]), ("dumb-init", ["-V"]), ("dumb-init", ["--version"]),
    ("dumb-init", ["-v"]),
]


@pytest.mark.parametrize(("tool", "args"), USAGE, ids=[" ".join([t, *a]) for t, a in USAGE])
def test_usage_exit_status_as_the_original(compat_links: Path, tool: str,
                                           args: list[str]) -> None:
    ours = run([str(compat_links / tool), *args])
    theirs = run([original(tool), *args])
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    if ours.returncode:
        assert len(ours.stderr.splitlines()) == 1 and "Traceback" not in ours.stderr


def test_versions_name_the_interface(compat_links: Path) -> None:
    """dockerd parses `docker-init --version` as 'tini version X - ...'."""
    for name in ("tini", "docker-init"):
        version = run([str(compat_links / name), "--version"]).stdout
        assert version.startswith("tini version 0.19.0 - ")
    assert run([str(compat_links / "dumb-init"), "-V"]).stderr.startswith("dumb-init v1.2.5 - ")


def test_compat_option_selects_the_tool() -> None:
    pyinit = [sys.executable, "-m", "pyinit"]
    assert run([*pyinit, "--compat=tini", "--version"]).stdout.startswith("tini version")
    assert run([*pyinit, "--compat=dumb-init", "-V"]).stderr.startswith("dumb-init v")
    bad = run([*pyinit, "--compat=runit", "true"])
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


@pytest.mark.parametrize("tool", ["tini", "dumb-init"])
def test_exit_status_and_signal_death(compat_links: Path, tool: str) -> None:
    assert run([str(compat_links / tool), "--", "sh", "-c", "exit 7"]).returncode == 7
    assert run([str(compat_links / tool), "--", "sh", "-c", "kill -USR1 $$"]).returncode == 138


def test_tini_expect_exit(compat_links: Path) -> None:
    tini = str(compat_links / "tini")
    assert run([tini, "-e", "3", "-e", "4", "--", "sh", "-c", "exit 4"]).returncode == 0
    assert run([tini, "-e", "3", "--", "sh", "-c", "exit 4"]).returncode == 4


class Probe:
    """PROBE under an init, below a shell that is PID 1 of a fresh namespace."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        # the inits' debug output (what they forwarded to whom), for describe()
        verbose = {"TINI_VERBOSITY": "3", "DUMB_INIT_DEBUG": "1"}
        self.proc = subprocess.Popen(in_namespace(argv + PROBE_CMD, "subreaper"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **verbose, **(env or {})})
        assert read_line(self.proc.stdout) == b"ready\n"
        self.init = child_of(child_of(self.proc.pid))
        self.child = child_of(self.init)

    def lines_after(self, sig: int, awaited: frozenset[str] = frozenset(),
                    settle: float = 0.5) -> set[str]:
        """What the probe reports after sig goes to the init: the awaited lines however late
        a loaded machine delivers them (up to 10 s), then whatever else comes within `settle`
        seconds."""
        os.kill(self.init, sig)
        got = self.read_for(10, awaited.issubset) if awaited else set()
        return got | self.read_for(settle)

    def describe(self) -> str:
        """For a failure's message: the state and signal masks of the init, the child and its
        children, then (the namespace killed) what the init wrote on stderr."""
        found = []
        try:
            below = [process.pid for process in psutil.Process(self.child).children()]
        except psutil.Error:
            below = []
        for who, pid in (("init", self.init), ("child", self.child),
                         *(("grandchild", pid) for pid in below)):
            try:
                with open(f"/proc/{pid}/status") as status:
                    found += [f"{who} {pid} {line.strip()}" for line in status
                              if line.startswith(("State", "SigPnd", "ShdPnd", "SigBlk",
                                                  "SigIgn", "SigCgt"))]
            except OSError as error:
                found.append(f"{who} {pid}: {error.strerror}")
        self.close()
        found.append(self.proc.stderr.read().decode(errors="replace")[-2000:])
        return "\n".join(found)

    def read_for(self, seconds: float, enough=lambda got: False) -> set[str]:
        got, deadline = set(), time.monotonic() + seconds
        while not enough(got) and (left := deadline - time.monotonic()) > 0:
            if select.select([self.proc.stdout], [], [], left)[0]:
                got.add(read_line(self.proc.stdout).decode().strip())
        return got

    def close(self) -> None:
        self.proc.kill()  # unshare --kill-child takes the namespace down
        self.proc.wait(30)


@pytest.fixture
def probe():
    started: list[Probe] = []

    def _start(argv: list[str], env: dict[str, str] | None = None) -> Probe:
        started.append(Probe(argv, env))
        return started[-1]

    yield _start
    for running in started:
        running.close()


GROUP_CASES = [  # (tool, args, env, whether the grandchild gets the signal too)
    ("tini", [], {}, False),
    ("tini", ["-g"], {}, True),
    ("tini", [], {"TINI_KILL_PROCESS_GROUP": "1"}, True),
    ("dumb-init", [], {}, True),
    ("dumb-init", ["-c"], {}, False),
    ("dumb-init", ["--single-child"], {}, False),
    ("dumb-init", [], {"DUMB_INIT_SETSID": "0"}, False),
]


@pytest.mark.parametrize(("tool", "args", "env", "group"), GROUP_CASES)
def test_who_gets_signals(inits: Path, probe, tool: str, args: list[str],
                          env: dict[str, str], group: bool) -> None:
    running = probe([str(inits / tool), *args, "--"], env)
    expected = frozenset({"child 10", "grandchild 10"} if group else {"child 10"})
    assert running.lines_after(signal.SIGUSR1, expected) == expected, running.describe()


def test_dumb_init_rewrite_and_drop(inits: Path, probe) -> None:
    running = probe([str(inits / "dumb-init"), "-r", "15:12", "--rewrite", "10:0", "--"])
    rewritten = frozenset({"child 12", "grandchild 12"})
    assert running.lines_after(signal.SIGTERM, rewritten) == rewritten, running.describe()
    assert running.lines_after(signal.SIGUSR1) == set()  # dropped


@pytest.mark.parametrize("env", [{}, {"DUMB_INIT_SETSID": "0"}])
def test_dumb_init_suspends_on_tstp(inits: Path, probe, env: dict[str, str]) -> None:
    """Setsid mode: TSTP reaches the child as STOP; no-setsid: as TSTP. In both the init stops
    itself (not being PID 1), and CONT resumes it and is forwarded."""
    running = probe([str(inits / "dumb-init"), "--"], env)
    got = running.lines_after(signal.SIGTSTP, frozenset({"child 20"} if env else ()), 0.3)
    wait_for(lambda: state(running.init) == "T", 5, "the init stopped")
    if env:
        assert got == {"child 20"}  # forwarded as it is to the child alone
    else:
        wait_for(lambda: state(running.child) == "T", 5, "the child stopped")
    os.kill(running.init, signal.SIGCONT)
    wait_for(lambda: state(running.init) in "SR" and state(running.child) in "SR", 5,
             "both resumed")


@pytest.mark.parametrize("env", [{}, {"DUMB_INIT_SETSID": "0"}])
def test_dumb_init_session(inits: Path, env: dict[str, str]) -> None:
    """Setsid mode: the child leads a new session; otherwise it shares pyinit's session and
    process group, as with dumb-init."""
    check = ("import os; print(os.getsid(0) == os.getpid(), "
             "os.getpgrp() == os.getpgid(os.getppid()))")
    result = run([str(inits / "dumb-init"), sys.executable, "-c", check], env)
    assert result.stdout == ("False True\n" if env else "True False\n")


@pytest.mark.parametrize("tool", ["tini", "dumb-init", "docker-init"])
def test_init_leaves_the_starting_directory(compat_links: Path, tool: str, tmp_path: Path) -> None:
    script = 'readlink /proc/$PPID/cwd; pwd'
    result = run([str(compat_links / tool), "--", "sh", "-c", script], cwd=tmp_path)
    assert result.stdout == f"/\n{tmp_path}\n"


ORPHAN = ["sh", "-c", REAPED_ORPHAN]  # an orphan pyinit reaps while the child runs


@pytest.mark.parametrize(("args", "env", "warned"), [
    (["-w"], {}, True), ([], {}, False), (["-w"], {"TINI_VERBOSITY": "0"}, False)])
def test_tini_warn_reaped(compat_links: Path, args: list[str], env: dict[str, str],
                          warned: bool) -> None:
    result = run([str(compat_links / "tini"), *args, "--", *ORPHAN], env)
    assert result.returncode == 0
    assert ("Reaped zombie process with pid=" in result.stderr) == warned, result.stderr


@pytest.mark.parametrize(("tool", "args", "env"), [
    ("tini", ["-v", "-v"], {}), ("tini", [], {"TINI_VERBOSITY": "2"}),
    ("dumb-init", ["-v"], {}), ("dumb-init", ["--verbose"], {}),
    ("dumb-init", [], {"DUMB_INIT_DEBUG": "1"})])
def test_verbosity(compat_links: Path, tool: str, args: list[str], env: dict[str, str]) -> None:
    quiet = run([str(compat_links / tool), "--", "true"])
    loud = run([str(compat_links / tool), *args, "--", "true"], env)
    assert quiet.stderr == "" and "started" in loud.stderr


@pytest.mark.parametrize(("args", "env"), [(["-s"], {}), ([], {"TINI_SUBREAPER": ""})])
def test_tini_subreaper_options_accepted(compat_links: Path, args: list[str],
                                         env: dict[str, str]) -> None:
    """pyinit is always a subreaper: -s and TINI_SUBREAPER change nothing, and the orphan is
    reaped below a shell that is PID 1."""
    result = subprocess.run(in_namespace([str(compat_links / "tini"), *args, "--", *ORPHAN],
                                         "subreaper"), capture_output=True, text=True,
                            timeout=30, env={**os.environ, **env}, check=False)
    assert (result.returncode, result.stderr) == (0, "")


def test_tini_pdeathsig(compat_links: Path, tmp_path: Path) -> None:
    """-p SIGNAL: when tini's parent (a subshell) exits, tini gets SIGNAL and forwards it."""
    mark, ready = tmp_path / "mark", tmp_path / "ready"
    # the mark appears whole (renamed into place): a mark seen while still empty ended the test
    child = (f'trap "echo got > {mark}.part; mv {mark}.part {mark}; exit 0" USR1; '
             f'touch {ready}; sleep 5 & wait')
    # the subshell exits once the child has its trap (tini set -p before starting it), and the
    # test waits for the mark: bounded polls, not fixed sleeps a loaded machine outlasts
    until = 'i=0; while [ ! -e "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done'
    script = (f'wait_for() {{ {until}; }}; ("$0" -p SIGUSR1 -- sh -c \'{child}\' & '
              f'wait_for {ready}); wait_for {mark}')
    run(["sh", "-c", script, str(compat_links / "tini")])
    assert mark.read_text() == "got\n"


COMPAT_WORDS = {
    "tini": ["-s", "-g", "-p", "-e", "-v", "-w", "-l", "-h", "--version", "--", "-vvw", "-e3",
             "SIGKILL", "SIGUSR1", "KILL", "3", "256", "-1", "x", ""],
    "dumb-init": ["-r", "--rewrite", "-c", "--single-child", "-v", "--verbose", "-h", "-V",
                  "--", "-cv", "-r15:0", "--rewrite=1:2", "15:0", "0:1", "32:1", "1:32", ":",
                  "x", ""],
}


@pytest.mark.parametrize("tool", ["tini", "dumb-init"])
def test_fuzz_compat_command_lines(compat_links: Path, tool: str) -> None:
    """Any mix of the tool's options and values: no traceback, the original's exit statuses
    (0 help/version, 1 usage error in one line), or the child's 3 (127 if a word became the
    command; PATH finds nothing)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(blacklist_characters="\x00"), max_size=8)
    words = st.one_of(st.sampled_from(COMPAT_WORDS[tool]), text)
    unshare, *namespace = in_namespace([], "pid1")
    unshare = shutil.which(unshare) or unshare  # the example's PATH finds nothing

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(options=st.lists(words, max_size=5), with_child=st.booleans())
    def fuzz(options: list[str], with_child: bool) -> None:
        argv = [str(compat_links / tool), *options]
        argv += ["--", "/bin/sh", "-c", "exit 3"] if with_child else []
        result = run_bounded([unshare, *namespace, *argv], 20, env={"PATH": "/nonexistent"})
        err = result.stderr.decode(errors="replace")
        assert "Traceback" not in err, err
        assert result.returncode in {0, 1, 3, 126, 127}, (options, result.returncode, err)
        if result.returncode == 1:
            assert len(err.splitlines()) == 1, (options, err)

    fuzz()
