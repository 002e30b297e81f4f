"""The command line and its PYINIT_* environment twins: --help, --version, and usage errors that
exit 2 with one line naming the bad value (never a traceback). What each option does is tested
with its behaviour (test_forwarding, test_teardown, test_exit_status, test_logging)."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import TIMEOUT, run_bounded

import pyinit as package


def run_direct(pyinit, args, env=None) -> subprocess.CompletedProcess:
    """pyinit outside any namespace: only for runs that exit before starting anything, or
    start `true`; run_bounded describes and kills it on timeout."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYINIT_")}
    environ.update(env or {})
    return run_bounded([*pyinit, *args], TIMEOUT, env=environ, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["-h", "--", "true"], ["-v", "--help"]])
def test_help(pyinit, args):
    done = run_direct(pyinit, args)
    assert done.returncode == 0
    assert done.stderr == b""
    text = done.stdout.decode()
    assert text.startswith("usage: pyinit")
    for word in ["--rewrite", "--single-child", "--grace", "--expect-exit", "--pdeathsig",
                 "--verbose", "--quiet", "--version", "--help", "PYINIT_REWRITE",
                 "PYINIT_SINGLE_CHILD", "PYINIT_GRACE", "PYINIT_EXPECT_EXIT",
                 "PYINIT_PDEATHSIG", "PYINIT_VERBOSE", "PYINIT_QUIET"]:
        assert word in text, word


def test_version(pyinit):
    done = run_direct(pyinit, ["--version"])
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == f"pyinit {package.__version__}\n".encode()


BAD_ARGS = [
    (["--bogus", "true"], "--bogus"),
    (["-x", "true"], "-x"),
    (["-vx", "true"], "-x"),
    (["-r", "TERM:NOPE", "true"], "TERM:NOPE"),
    (["-r", "TERM", "true"], "TERM"),
    (["--rewrite=99:TERM", "true"], "99:TERM"),
    (["-r", "KILL:TERM", "true"], "KILL:TERM"),
    (["-r", "CHLD:TERM", "true"], "CHLD:TERM"),  # never forwarded: the rewrite would be a no-op
    (["-r", "TERM:65", "true"], "TERM:65"),
    (["-t", "-1", "true"], "-1"),
    (["--grace", "soon", "true"], "soon"),
    (["-t", "nan", "true"], "nan"),
    (["-e", "256", "true"], "256"),
    (["-e", "x", "true"], "'x'"),
    (["-p", "NOPE", "true"], "NOPE"),
    (["-p", "99", "true"], "99"),
    (["--single-child=yes", "true"], "single-child"),
    (["-t"], "-t"),
    ([], "COMMAND"),
    (["--"], "COMMAND"),
    (["-v", "-c"], "COMMAND"),
]

BAD_ENV = [
    ({"PYINIT_REWRITE": "FOO:BAR"}, "FOO:BAR"),
    ({"PYINIT_GRACE": "-3"}, "-3"),
    ({"PYINIT_EXPECT_EXIT": "1,abc"}, "abc"),
    ({"PYINIT_PDEATHSIG": "NOPE"}, "NOPE"),
    ({"PYINIT_SINGLE_CHILD": "maybe"}, "maybe"),
    ({"PYINIT_QUIET": "maybe"}, "maybe"),
    ({"PYINIT_VERBOSE": "lots"}, "lots"),
    ({"PYINIT_VERBOSE": "-5"}, "-5"),  # would have silenced even errors
]


def assert_usage_error(done: subprocess.CompletedProcess, bad: str) -> None:
    text = done.stderr.decode()
    assert done.returncode == 2, text
    assert done.stdout == b""
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert bad in text
    assert "--help" in text


@pytest.mark.parametrize(("args", "bad"), BAD_ARGS,
                         ids=[" ".join(a) or "empty" for a, _ in BAD_ARGS])
def test_bad_command_line(pyinit, args, bad):
    assert_usage_error(run_direct(pyinit, args), bad)


@pytest.mark.parametrize(("env", "bad"), BAD_ENV, ids=[next(iter(e)) for e, _ in BAD_ENV])
def test_bad_environment(pyinit, env, bad):
    assert_usage_error(run_direct(pyinit, ["true"], env), bad)


@pytest.mark.parametrize(("env", "args"), [
    ({"PYINIT_GRACE": "-3"}, ["-t", "1"]),
    ({"PYINIT_REWRITE": "FOO:BAR"}, ["-r", "USR1:USR2"]),
    ({"PYINIT_EXPECT_EXIT": "abc"}, ["-e", "3"]),
    ({"PYINIT_PDEATHSIG": "NOPE"}, ["-p", "TERM"]),
])
def test_command_line_wins_over_bad_environment(pyinit, env, args):
    done = run_direct(pyinit, [*args, "true"], env)
    assert (done.returncode, done.stderr) == (0, b"")


@pytest.mark.parametrize("args", [
    ["-r", "term:usr1", "-r", "SigHup:0", "-r", "15:10", "-r", "RTMIN+1:rtmax-2", "true"],
    ["--rewrite=INT:TERM", "--grace=0", "--expect-exit=3", "--pdeathsig=SIGKILL", "true"],
    ["-cvq", "-t0.5", "-e3", "-e", "4", "-pTERM", "true"],
    ["-t", "0", "--", "true"],
    ["true", "--bogus", "-x"],  # options of COMMAND are COMMAND's
])
def test_good_command_lines(pyinit, args):
    done = run_direct(pyinit, args)
    assert (done.returncode, done.stderr) == (0, b"")
