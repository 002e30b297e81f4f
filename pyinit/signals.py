"""Signal names and numbers, the rewrite table, and the set of signals pyinit waits for.

Built on the C-level ``_signal`` module: ``signal`` imports ``enum``, which costs several
milliseconds of start-up for names this module can derive itself.
"""

from __future__ import annotations

import _signal
import os

SIGCHLD: int = _signal.SIGCHLD
SIGCONT: int = _signal.SIGCONT
SIGKILL: int = _signal.SIGKILL
SIGSTOP: int = _signal.SIGSTOP
SIGTERM: int = _signal.SIGTERM
SIGHUP: int = _signal.SIGHUP
SIGPIPE: int = _signal.SIGPIPE
SIGXFSZ: int = _signal.SIGXFSZ
RTMIN: int = _signal.SIGRTMIN
RTMAX: int = _signal.SIGRTMAX

# Job-control stops are discarded by the kernel for an orphaned process group, which is what the
# child's new session is; like dumb-init in setsid mode, pyinit turns them into SIGSTOP.
JOB_CONTROL = frozenset({_signal.SIGTSTP, _signal.SIGTTIN, _signal.SIGTTOU})
DEFAULT_REWRITES = {sig: SIGSTOP for sig in JOB_CONTROL}


def suspending(rewrites: dict[int, int]) -> frozenset[int]:
    """The job-control signals that reach the child as SIGSTOP: on those pyinit stops itself
    too, so the shell that sent one sees the whole job stopped."""
    return frozenset(sig for sig in JOB_CONTROL if rewrites.get(sig) == SIGSTOP)

# Everything that can be caught: sigfillset() minus KILL and STOP (glibc already leaves out the
# two real-time signals it reserves). Blocked and collected with sigwaitinfo, never handled.
HANDLED = frozenset(_signal.valid_signals()) - {SIGKILL, SIGSTOP}

_SI_USER = 0  # si_code of kill(2), and of the SIGPIPE/SIGXFSZ the kernel raises at a writer

_ALIASES = {"SIGIOT", "SIGCLD", "SIGPOLL", "SIGRTMIN", "SIGRTMAX"}
_BY_NAME = {
    name[3:]: value
    for name, value in vars(_signal).items()
    if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(value, int)
}
_BY_NUMBER = {
    value: "SIG" + name for name, value in _BY_NAME.items() if "SIG" + name not in _ALIASES
}


def name(sig: int) -> str:
    """SIGTERM, SIGRTMIN+3, or 'signal N' for the rest."""
    if sig in _BY_NUMBER:
        return _BY_NUMBER[sig]
    if RTMIN <= sig <= RTMAX:
        return f"SIGRTMIN+{sig - RTMIN}"
    return f"signal {sig}"


def parse(text: str) -> int:
    """A signal number from a name (TERM, sigterm, SIGRTMIN+2, RTMAX-1) or a number.

    Raises ValueError for anything that is not a signal of this system; 0 is returned as 0
    so callers decide whether "no signal" is allowed.
    """
    word = text.strip().upper()
    if word.isdigit():
        number = int(word)
        if number == 0 or number in _signal.valid_signals() or number in (SIGKILL, SIGSTOP):
            return number
        raise ValueError(text)
    word = word[3:] if word.startswith("SIG") else word
    if word in _BY_NAME:
        return _BY_NAME[word]
    for base, first, sign in (("RTMIN", RTMIN, "+"), ("RTMAX", RTMAX, "-")):
        offset = word[len(base):] if word.startswith(base) else None
        if offset == "":
            return first
        if offset and offset[0] == sign and offset[1:].isdigit():
            number = first + int(offset)
            if RTMIN <= number <= RTMAX:
                return number
    raise ValueError(text)


def parse_rewrite(text: str) -> tuple[int, int]:
    """FROM:TO, where FROM is a catchable signal but CHLD and TO a signal or 0 (drop)."""
    source, sep, target = text.partition(":")
    if not sep:
        raise ValueError(text)
    from_sig, to_sig = parse(source), parse(target)
    if from_sig not in HANDLED or from_sig == SIGCHLD:  # pyinit reaps on SIGCHLD, never forwards
        raise ValueError(source)
    return from_sig, to_sig


def block() -> set[int]:
    """Block every handled signal; returns the mask pyinit was started with, for the child."""
    return _signal.pthread_sigmask(_signal.SIG_BLOCK, HANDLED)


def wait(timeout: float | None = None) -> int:
    """The next handled signal (0 on timeout). Nothing else wakes pyinit.

    Signals pyinit raised at itself are discarded, never forwarded: SIGPIPE from a log line
    written to a dead reader, SIGXFSZ from one written past RLIMIT_FSIZE. Forwarding the first
    made a -v pyinit log "forwarded SIGPIPE" into the same dead pipe, raising the next one, in a
    loop that never let the lower-priority SIGCHLD through. With a timeout, such a signal ends
    the wait early (returns 0) so the caller's deadline still holds.
    """
    while True:
        if timeout is None:
            info = _signal.sigwaitinfo(HANDLED)
        else:
            info = _signal.sigtimedwait(HANDLED, max(timeout, 0.0))
            if info is None:
                return 0
        if info.si_code != _SI_USER or info.si_pid != os.getpid():
            return info.si_signo
        if timeout is not None:
            return 0


def take(sig: int) -> bool:
    """Consume sig if it is pending. sigwaitinfo hands out the lowest-numbered signal first, so
    a flood of HUP or INT would hold SIGCHLD back for as long as it lasts: the forwarding loop
    asks for SIGCHLD after every signal it forwards."""
    return _signal.sigtimedwait({sig}, 0) is not None
