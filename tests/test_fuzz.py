"""Property-based fuzzing of everything a user can hand pyinit at start: argv (options, values,
unicode, undecodable bytes, huge values) and every PYINIT_* variable.

Property: no traceback, no hang, and an exit status that means something: 0 (help, version, or
an expected exit), 2 with exactly one line for a usage error, the child's 3, or 126/127 when a
fuzzed word became the command. Each example runs pyinit for real, in a PID namespace of its own
with a PATH that finds nothing (a fuzzed word that became the command can never run a real
program, which could hang or exit with anything); the example count is bounded so the suite's
time stays reasonable.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from helpers import NAMESPACE, run_bounded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHILD = ["--", "/bin/sh", "-c", "exit 3"]
MEANINGFUL = {0, 2, 3, 126, 127}
VARIABLES = ["PYINIT_REWRITE", "PYINIT_SINGLE_CHILD", "PYINIT_GRACE", "PYINIT_EXPECT_EXIT",
             "PYINIT_PDEATHSIG", "PYINIT_VERBOSE", "PYINIT_QUIET", "PYINIT_LOG_FORMAT",
             "PYINIT_TEST_DISABLE"]
OPTIONS = ["-r", "--rewrite", "-c", "--single-child", "-t", "--grace", "-e", "--expect-exit",
           "-p", "--pdeathsig", "-v", "--verbose", "-q", "--quiet", "--version", "-h", "--help",
           "--", "-", "-cv", "-vvq", "--grace=", "--rewrite=", "-t0", "-rTERM:0", "--check",
           "--json", "--log-format", "--log-format=json", "--log-format=text"]
VALUES = ["json", "text", "pidfd,subreaper,cgroup2,cgroup1",
          "TERM", "SIGKILL", "hup:int", "RTMIN+3", "RTMAX-100", "0", "1", "64", "65", "-1",
          "9:0", "CHLD:TERM", "TERM:", ":", "nan", "inf", "-0.5", "1e309", "0x10", "٣", "3,4",
          "9" * 400, "a" * 70000]

# Text with surrogates stands for bytes that are not UTF-8 (os.fsencode keeps them as bytes).
words = st.one_of(
    st.sampled_from(OPTIONS),
    st.sampled_from(VALUES),
    st.text(st.characters(blacklist_characters="\x00"), max_size=20),
    st.binary(max_size=12).filter(lambda b: b"\x00" not in b).map(os.fsdecode),
)
environments = st.dictionaries(st.sampled_from(VARIABLES),
                               st.one_of(st.sampled_from(VALUES), words), max_size=3)

SETTINGS = {"source": 120, "frozen": 40, "single": 40}


def run(pyinit: list[str], argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {"PATH": "/nonexistent", **env}
    unshare = shutil.which(NAMESPACE[0])
    command = [os.fsencode(word) for word in [unshare, *NAMESPACE[1:], *pyinit, *argv]]
    return run_bounded(command, 20, env={k: os.fsencode(v) for k, v in environment.items()})


def check(pyinit: list[str], argv: list[str], env: dict[str, str]) -> None:
    result = run(pyinit, argv, env)
    err = result.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert result.returncode in MEANINGFUL, (result.returncode, err)
    if result.returncode == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyinit: "), err


def test_fuzz_argv_and_environment(pyinit, request) -> None:
    examples = SETTINGS[request.node.callspec.params["pyinit"]]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(options=st.lists(words, max_size=6), env=environments, with_child=st.booleans())
    def fuzz(options: list[str], env: dict[str, str], with_child: bool) -> None:
        check(pyinit, options + (CHILD if with_child else []), env)

    fuzz()
