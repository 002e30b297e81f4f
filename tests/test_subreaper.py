"""Issue 2, behaviour 1: pyinit makes itself a child subreaper, and warns when that fails and it
is not PID 1 (as PID 1 it reaps orphans anyway). Failure is provoked with a seccomp filter that
makes prctl(option) fail with EPERM, as a strict container profile would; no other prctl failure
may stop pyinit either. (That the subreaper flag works is shown by orphans being re-parented to
pyinit in test_reaping and test_unprivileged.)"""

from __future__ import annotations

import os
import platform
import signal
import sys

import psutil
import pytest
from helpers import in_namespace, read_line

PR_SET_PDEATHSIG, PR_SET_NAME, PR_SET_CHILD_SUBREAPER = 1, 15, 36

# Installs a seccomp filter that makes prctl(option) fail with EPERM for each option number in
# $DENY_PRCTL and each system call number in $DENY_SYSCALLS (comma-separated), then execs its
# arguments. x86_64 only.
WITH_SECCOMP = r"""
import ctypes, os, struct, sys
def numbers(name):
    return [int(n) for n in os.environ.pop(name, "").split(",") if n]
options, syscalls = numbers("DENY_PRCTL"), numbers("DENY_SYSCALLS")
LD, JEQ, RET = 0x20, 0x15, 0x06
ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
# (code, jump-if-true label, jump-if-false label, k); labels resolved below
program = [(LD, None, None, 4), (JEQ, None, "allow", 0xC000003E), (LD, None, None, 0)]
program += [(JEQ, "deny", None, nr) for nr in syscalls]
program += [(JEQ, None, "allow", 157), (LD, None, None, 16)]  # prctl: look at the option
program += [(JEQ, "deny", None, option) for option in options]
program += [(RET, None, None, ALLOW), (RET, None, None, EPERM)]
labels = {"allow": len(program) - 2, "deny": len(program) - 1}
def jump(label, at):
    return 0 if label is None else labels[label] - at - 1
code = b"".join(struct.pack("HBBI", c, jump(t, i), jump(f, i), k)
                for i, (c, t, f, k) in enumerate(program))
buffer = ctypes.create_string_buffer(code)
prog = ctypes.create_string_buffer(struct.pack("HxxxxxxP", len(program),
                                               ctypes.addressof(buffer)))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, prog, 0, 0) == 0, ctypes.get_errno()  # PR_SET_SECCOMP, FILTER
os.execvp(sys.argv[1], sys.argv[1:])
"""

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 seccomp filter")


def denying(options: list[int], command: list[str], role: str, start, syscalls=(), **popen):
    env = {**os.environ, "DENY_PRCTL": ",".join(map(str, options)),
           "DENY_SYSCALLS": ",".join(map(str, syscalls))}
    return start(in_namespace([sys.executable, "-c", WITH_SECCOMP, *command], role), env=env,
                 **popen)


def test_warns_when_not_a_subreaper(pyinit, role, start):
    run = denying([PR_SET_CHILD_SUBREAPER], [*pyinit, "--", "sh", "-c", "echo ran; exit 3"],
                  role, start)
    out, err = run.communicate()
    assert (out, run.proc.returncode) == (b"ran\n", 3)
    if role == "pid1":
        assert err == b""  # PID 1 inherits every orphan anyway
    else:
        assert len(err.splitlines()) == 1 and b"subreaper" in err, err


def test_quiet_hides_the_warning(pyinit, start):
    run = denying([PR_SET_CHILD_SUBREAPER], [*pyinit, "-q", "--", "true"], "subreaper", start)
    _, err = run.communicate()
    assert (run.proc.returncode, err) == (0, b"")


def test_no_prctl_failure_is_fatal(pyinit, role, start):
    """Subreaper, parent-death signal and process name all denied: the child still runs, and
    signals are still forwarded; the parent-death signal the user asked for is warned about."""
    options = [PR_SET_CHILD_SUBREAPER, PR_SET_NAME, PR_SET_PDEATHSIG]
    script = "trap 'echo got-term; exit 5' TERM; echo ready; sleep 1000 & wait"
    run = denying(options, [*pyinit, "-p", "TERM", "--", "sh", "-c", script], role, start)
    assert read_line(run.proc.stdout) == b"ready\n"
    # pyinit cannot name itself now: it is the namespace's PID 1 or PID 1's child
    ns_init = psutil.Process(run.proc.pid).children()[0]
    target = ns_init if role == "pid1" else ns_init.children()[0]
    target.send_signal(signal.SIGTERM)
    out, err = run.communicate()
    assert (out, run.proc.returncode) == (b"got-term\n", 5)
    assert b"Traceback" not in err
    assert b"parent-death" in err


PIDFD_SEND_SIGNAL, PIDFD_OPEN = 424, 434


@pytest.mark.parametrize("syscalls", [[PIDFD_SEND_SIGNAL], [PIDFD_SEND_SIGNAL, PIDFD_OPEN]],
                         ids=["send", "open-and-send"])
def test_teardown_without_pidfd_syscalls(pyinit, start, syscalls, tmp_path):
    """Older seccomp profiles deny the pidfd calls with EPERM: teardown falls back to kill(2)
    and still stops every escapee (they write markers from their TERM handlers)."""
    # ready (touch) once its sleep runs: a TERM between the fork and the exec would be lost
    escapee = ("trap 'echo term-$1; exit 0' TERM; echo $1; sleep 1000 & "
               'until [ "$(cat /proc/$!/comm 2>/dev/null)" = sleep ]; do sleep 0.01; done; '
               "touch {dir}/$1; wait")
    escapee = escapee.format(dir=tmp_path)
    script = (f'sh -c "$0" escapee a & (setsid sh -c "$0" escapee b &); '
              f"until [ -e {tmp_path}/a ] && [ -e {tmp_path}/b ]; do sleep 0.02; done; exit 6")
    run = denying([], [*pyinit, "-t", "20", "--", "sh", "-c", script, escapee], "subreaper",
                  start, syscalls=syscalls)
    out, err = run.communicate()
    assert run.proc.returncode == 6
    assert sorted(out.split()) == [b"a", b"b", b"term-a", b"term-b"]
    assert b"permission denied" not in err and b"Traceback" not in err
