"""dumb-init's and tini's own test suites, run against pyinit under their names.

The sources are the upstream tarballs Debian's source packages carry, fetched with apt from
deb-src entries derived from the machine's own apt sources (no host written here), and cached
in the gitignored .upstream/ with a virtualenv holding what the suites import. Each suite runs
in a throw-away PID namespace whose PID 1 is a plain shell: both leak processes when a test
fails, and pytest must not be PID 1 (dumb-init's suite counts the processes below pytest).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from cgroups import cpu_limited
from helpers import join_cgroup

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".upstream"
VENV = CACHE / "venv"
SOURCES = {"dumb-init": "1.2.5", "tini": "0.19.0"}
# What the suites import: pytest-timeout < 2 for dumb-init's pytest.ini `timeout` key, py for
# its testing/__init__.py (py._path.local); psutil, python-prctl and bitmap for tini's.
REQUIREMENTS = ["pytest", "pytest-timeout<2", "py", "psutil", "python-prctl", "bitmap"]
# Debian 12's deb822 file, or the one-line format of older set-ups.
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))

# dumb-init tests pyinit fails on purpose, by test function (every parametrization), with why.
# The run fails if any other test fails, or if any parametrization of these passes.
EXPECTED_FAILURES = {
    # dumb-init's exact texts: pyinit prints its own help, usage and version lines, and usage
    # errors are one line (the exit statuses, 0 and 1, are dumb-init's).
    "tests/cli_test.py::test_no_arguments_prints_usage": "usage text",
    "tests/cli_test.py::test_exits_invalid_with_invalid_args": "getopt's message text",
    "tests/cli_test.py::test_help_message": "help text",
    "tests/cli_test.py::test_version_message": "version text (pyinit names itself)",
    "tests/cli_test.py::test_verbose": "debug text",
    "tests/cli_test.py::test_verbose_and_single_child": "debug text",
    "tests/cli_test.py::test_rewrite_errors": "-r error text",
    "tests/child_processes_test.py::test_fails_nonzero_with_bad_exec":
        "the '[dumb-init] PATH: ERROR' text (pyinit exits 127 and names the command its way)",
    "tests/tty_test.py::test_sighup_sigcont_ignored_if_was_session_leader": "debug text",
    # pyinit's deliberate difference: when the main child exits, it tears down what is left
    # (TERM, grace, KILL) and waits, instead of exiting at once and leaving it alive.
    "tests/child_processes_test.py::test_no_setsid_doesnt_signal_entire_group":
        "expects the child's pipeline to outlive the init",
    "tests/child_processes_test.py::test_processes_dont_receive_term_on_exit_if_no_setsid":
        "expects the child's child to outlive the init without a TERM",
    "tests/child_processes_test.py::test_all_processes_receive_term_on_exit_if_setsid":
        "kills the leftover itself afterwards; pyinit's teardown already KILLed it",
}

# tini's run_inner_tests.py pins one tini-only behaviour: without -s, and not PID 1, tini is
# no subreaper, warns and exits 1. pyinit is always a subreaper and reaps (exit 0), so exactly
# that step's two asserts are removed.
TINI_PATCH = (
    '''    assert "zombie reaping won't work" in err, "No warning message was output!"
    ret = p.wait()
    assert ret == 1, "Reaping test succeeded (it should have failed)!"
''',
    '''    # pyinit: asserts removed (tests/upstream.py TINI_PATCH): pyinit is always a child
    # subreaper, so it reaps here and exits 0 where tini without -s warns and exits 1.
    p.wait()
''',
)


class Unavailable(Exception):
    """The sources or the suites' packages could not be fetched."""


def prepare() -> None:
    """Fetch and build what the suites need, once. pytest-xdist workers may start several
    suites at the same moment: the first to take the cache's lock prepares, the others wait."""
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for package in SOURCES:
            source(package)
        python()
        sigconf_test(source("tini"))


def source(package: str) -> Path:
    """The unpacked upstream tree, fetched once with apt-get source --download-only."""
    version = SOURCES[package]
    tree = CACHE / f"{package}-{version}"
    if (tree / ".complete").exists():
        return tree
    tarball = CACHE / "apt" / f"{package}_{version}.orig.tar.gz"
    if not tarball.exists():
        _apt_download(package)
    if not tarball.exists():
        raise Unavailable(f"apt-get source did not fetch {tarball.name}")
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(tree), "--strip-components=1"],
                   check=True)
    (tree / ".complete").touch()
    return tree


def _apt_download(package: str) -> None:
    """apt with its own sources file (the configured Debian sources as deb-src), state and
    cache under .upstream/apt: the machine's apt set-up is not touched."""
    configured = next((path for path in APT_SOURCES if path.exists()), None)
    if configured is None:
        raise Unavailable("no apt sources to derive deb-src entries from")
    apt = CACHE / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    lines = configured.read_text().splitlines()
    if configured.suffix == ".sources":
        lines = ["Types: deb-src" if line.strip() == "Types: deb" else line for line in lines]
    else:
        lines = ["deb-src " + line[4:] for line in lines if line.startswith("deb ")]
    sources = apt / f"deb-src{configured.suffix or '.list'}"  # apt reads the format by suffix
    sources.write_text("\n".join(lines) + "\n")
    options = [f"-oDir::Etc::sourcelist={sources}", "-oDir::Etc::sourceparts=-",
               f"-oDir::State={apt / 'state'}", f"-oDir::Cache={apt / 'cache'}",
               "-oDebug::NoLocking=1", "-oAPT::Sandbox::User=root", "-qq"]
    lists = apt / "state" / "lists"
    if not any(lists.glob("*Sources*")):
        _run_apt(["apt-get", *options, "update"], apt)
    # Only the .orig.tar.gz matters; the Debian part may be missing from the mirror, which
    # makes apt-get fail after fetching the rest.
    subprocess.run(["apt-get", *options, "source", "--download-only", package], cwd=apt,
                   capture_output=True, timeout=300, check=False)


def _run_apt(argv: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                                check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"{argv[-1]}: {error}") from None
    if result.returncode:
        raise Unavailable(f"apt-get {argv[-1]} failed: {result.stderr.strip()[-300:]}")


def python() -> Path:
    """The suites' interpreter: a virtualenv with REQUIREMENTS from the package index."""
    ready = VENV / ".complete"
    if not ready.exists():
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        result = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q",
                                 "--disable-pip-version-check", *REQUIREMENTS],
                                capture_output=True, text=True, timeout=600, check=False)
        if result.returncode:
            raise Unavailable(f"pip install failed: {result.stderr.strip()[-300:]}")
        ready.touch()
    return VENV / "bin" / "python"


def sigconf_test(tini_tree: Path) -> Path:
    """tini's helper that starts its argument with some signals ignored and blocked."""
    binary = CACHE / "build" / "sigconf-test"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-o", str(binary),
                        str(tini_tree / "test" / "sigconf" / "sigconf-test.c")], check=True)
    return binary


def in_throwaway_namespace(script: str, seconds: int) -> list[str]:
    """sh -c SCRIPT as the child of a plain-shell PID 1 (`; rc=$?` keeps the shell from
    exec'ing the last command) in a new PID namespace, killed whole after `seconds`."""
    return ["timeout", "-k", "5", str(seconds), "unshare", "--pid", "--fork", "--mount-proc",
            "--kill-child", "sh", "-c", f"{script}; rc=$?; exit $rc"]


def _run_in_throwaway_namespace(script: str, seconds: int, env: dict[str, str],
                                cgroup: str | None = None) -> subprocess.CompletedProcess[str]:
    """The script's output and status, run as in_throwaway_namespace says, in cgroup if given."""
    argv = in_throwaway_namespace(script, seconds)
    return subprocess.run(join_cgroup(cgroup) + argv if cgroup else argv, env=env,
                          capture_output=True, text=True, timeout=seconds + 30, check=False)


def run_dumb_init_suite(bin_dir: Path, report: Path, seconds: int = 240,
                        nodes: tuple[str, ...] = ("tests",),
                        ) -> subprocess.CompletedProcess[str]:
    """dumb-init's pytest suite (or the given node ids of it) with bin_dir (holding a
    `dumb-init`) first on PATH. The tests/upstream_cleanup.py plugin kills what each test
    leaves in the namespace."""
    tree = source("dumb-init")
    venv_bin = python().parent
    # PYINIT_GRACE: only the excluded tests leave processes that ignore TERM behind; a
    # shorter grace saves ~20 s of waiting for pyinit's KILL in them.
    env = dict(os.environ, PATH=f"{bin_dir}:{venv_bin}:{os.environ.get('PATH', '')}",
               PYTHONPATH=str(Path(__file__).parent), PYTHONDONTWRITEBYTECODE="1",
               PYINIT_GRACE="1")
    # --timeout: a hang guard only. The suite's own bound is sleep_until's 150 polls of /proc;
    # on a 2-core machine loaded with other tests a poll can take 60 ms of wall time, so its
    # own default (5 s) and even 10 s end tests that were still on time by that bound.
    script = (f"cd {tree} && python -m pytest -q -p upstream_cleanup -p no:cacheprovider "
              f"--timeout=30 --durations=5 --junitxml={report} "
              + " ".join(shlex.quote(node) for node in nodes))
    with cpu_limited(1) as cgroup:  # its `yes | tail` pipelines starve the machine otherwise
        return _run_in_throwaway_namespace(script, seconds, env, cgroup)


def outcomes(report: Path) -> dict[str, str]:
    """pytest's JUnit XML as {node id: passed/failed/skipped}."""
    results = {}
    for case in ET.parse(report).iter("testcase"):
        node = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        kinds = {child.tag for child in case}
        results[node] = ("failed" if kinds & {"failure", "error"} else
                         "skipped" if "skipped" in kinds else "passed")
    return results


def function(node: str) -> str:
    """A node id without its parametrization."""
    return node.split("[", 1)[0]


def run_tini_suite(bin_dir: Path, seconds: int = 240) -> subprocess.CompletedProcess[str]:
    """tini's run_inner_tests.py (patched: TINI_PATCH) with BUILD_DIR = bin_dir, which must
    hold `tini`; sigconf-test is linked in beside it."""
    tree = source("tini")
    runner = tree / "test" / "run_inner_tests.py"
    patched = bin_dir / "run_inner_tests.py"  # this run's own: runs may overlap
    text = runner.read_text()
    if TINI_PATCH[0] not in text:
        raise AssertionError("tini's run_inner_tests.py changed: TINI_PATCH no longer applies")
    patched.write_text(text.replace(TINI_PATCH[0], TINI_PATCH[1]))
    helper = bin_dir / "sigconf-test"
    if not helper.exists():
        helper.symlink_to(sigconf_test(tree))
    venv_bin = python().parent
    env = dict(os.environ, PATH=f"{venv_bin}:{os.environ.get('PATH', '')}",
               SOURCE_DIR=str(tree), BUILD_DIR=str(bin_dir), FORCE_SUBREAPER="1",
               PYTHONDONTWRITEBYTECODE="1")
    return _run_in_throwaway_namespace(f"python {patched}", seconds, env)


def tini_race_lost(stdout: str) -> bool:
    """True when the tini run stopped in its process group test, which races (tini itself
    too): it signals the init once two processes exist below it, and the grandchild may not
    yet have reset the SIGUSR1 its parent ignores, so it never dies and the step times out.
    Seen once under load; worth one rerun, not a failure."""
    steps = [line for line in stdout.splitlines() if line.startswith(("Running", "running"))]
    return bool(steps) and steps[-1].startswith("Running process group test")
