"""tini's and dumb-init's command lines and environment, translated into pyinit's Config.

Used when pyinit runs under their names (a link called tini, docker-init or dumb-init) or with
`--compat=NAME`; imported only then. Only the translation lives here: the runtime reads the
resulting Config and never asks which tool it imitates. Usage errors exit 1, as both do.
"""

from __future__ import annotations

import sys

from pyinit import __version__, cli, log, signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

USAGE_ERROR = 1  # tini and dumb-init both exit 1 on a bad command line
TINI_VERSION = "0.19.0"  # the interface implemented; dockerd parses "tini version X"
DUMB_INIT_VERSION = "1.2.5"
DUMB_INIT_MAXSIG = 31  # dumb-init's -r takes signals 1..31

TINI_HELP = f"""\
usage: tini [OPTIONS] [--] COMMAND [ARGS...] | --version
pyinit {__version__}, running as tini: tini's options and variables, pyinit's init.

  -s              register as a child subreaper (pyinit always is)    [TINI_SUBREAPER]
  -p SIGNAL       signal to get when the parent dies, e.g. -p SIGKILL
  -v              more output; repeat for more             [TINI_VERBOSITY=N, default 1]
  -w              warn about each reaped zombie
  -g              send signals to the child's process group     [TINI_KILL_PROCESS_GROUP]
  -e EXIT_CODE    exit 0 when the child exits with EXIT_CODE; repeatable
  -l              show the license and exit
  -h              show this help and exit
  --version       show the version and exit (only as the only argument)
When the child exits, what it left behind gets TERM, PYINIT_GRACE seconds (default 5), KILL.
"""

DUMB_INIT_HELP = f"""\
usage: dumb-init [OPTIONS] COMMAND [ARGS...]
pyinit {__version__}, running as dumb-init: dumb-init's options and variables, pyinit's init.

  -c, --single-child  no setsid: the child stays in this session and process group, and
                      signals go to it only                          [DUMB_INIT_SETSID=0]
  -r, --rewrite s:r   rewrite signal s (1-31) to r (0-31) before forwarding; r=0 drops s;
                      repeatable
  -v, --verbose       print debugging information to stderr             [DUMB_INIT_DEBUG=1]
  -h, --help          print this help and exit
  -V, --version       print the version and exit
When the child exits, what it left behind gets TERM, PYINIT_GRACE seconds (default 5), KILL.
"""

_TINI_VALUES = {"p": "pdeathsig", "e": "expect-exit"}
_TINI_FLAGS = {"s": "subreaper", "v": "verbose", "w": "warn", "g": "group", "l": "license",
               "h": "help"}
_DUMB_VALUES = {"r": "rewrite"}
_DUMB_FLAGS = {"c": "single-child", "v": "verbose", "h": "help", "V": "version"}
_DUMB_LONG = {"rewrite", "single-child", "verbose", "help", "version"}


def parse(tool: str, argv: list[str], environ: Mapping[str, str]) -> cli.Config:
    """Parse or exit: 0 after help/version/license, 1 after a usage error."""
    help_text = TINI_HELP if tool == "tini" else DUMB_INIT_HELP
    try:
        if tool == "tini":
            return _tini(argv, environ)
        return _dumb_init(argv, environ)
    except cli.UsageError as error:
        log.error(f"{error} (see '{tool} -h')")
        raise SystemExit(USAGE_ERROR) from None
    except _Exit as done:
        (sys.stdout if done.stdout else sys.stderr).write(done.text or help_text)
        raise SystemExit(0) from None


class _Exit(Exception):
    """Help, version or license: text (empty for the help) and where the original prints it."""

    def __init__(self, text: str, stdout: bool) -> None:
        super().__init__(text)
        self.text, self.stdout = text, stdout


def _tini(argv: list[str], environ: Mapping[str, str]) -> cli.Config:
    """tini 0.19: --version only as the sole argument; -s is a no-op (pyinit is always a
    subreaper); without -g or TINI_KILL_PROCESS_GROUP signals go to the child only; the
    TINI_VERBOSITY level (as atoi reads it) replaces the -v count."""
    if argv == ["--version"]:
        raise _Exit(f"tini version {TINI_VERSION} - pyinit {__version__}\n", stdout=True)
    options, command = cli.split(argv, _TINI_VALUES, _TINI_FLAGS, set())
    if "help" in options:
        raise _Exit("", stdout=True)
    if "license" in options:
        raise _Exit(f"pyinit {__version__}: MIT License\n", stdout=True)
    expect = {cli.convert(cli.exit_code, text, "exit code") for text in
              options.get("expect-exit", ())}
    death = options.get("pdeathsig")
    pdeathsig = cli.convert(signals.parse, death[-1], "signal for -p") if death else 0
    if not command:
        raise cli.UsageError("no COMMAND given")
    verbosity = log.WARNING + len(options.get("verbose", ()))
    if "TINI_VERBOSITY" in environ:
        verbosity = _atoi(environ["TINI_VERBOSITY"])
    group = "group" in options or "TINI_KILL_PROCESS_GROUP" in environ
    return cli.Config(command, dict(signals.DEFAULT_REWRITES), not group, cli.grace(environ),
                      frozenset(expect), pdeathsig, verbosity,
                      warn_reaped="warn" in options)


def _dumb_init(argv: list[str], environ: Mapping[str, str]) -> cli.Config:
    """dumb-init 1.2.5. Setsid mode (default): the child gets a new session, TSTP/TTIN/TTOU
    are rewritten to STOP unless -r says otherwise, signals go to its process group. -c or
    DUMB_INIT_SETSID=0: no setsid, no default rewrites, signals to the child only. In both, pyinit
    stops itself after forwarding TSTP/TTIN/TTOU, as dumb-init does."""
    options, command = cli.split(argv, _DUMB_VALUES, _DUMB_FLAGS, _DUMB_LONG)
    if "help" in options:
        raise _Exit("", stdout=False)
    if "version" in options:
        raise _Exit(f"dumb-init v{DUMB_INIT_VERSION} - pyinit {__version__}\n", stdout=False)
    rewrites = dict(_dumb_rewrite(text) for text in options.get("rewrite", ()))
    if not command:
        raise cli.UsageError("no COMMAND given")
    setsid = "single-child" not in options and environ.get("DUMB_INIT_SETSID") != "0"
    if setsid:
        rewrites = {**signals.DEFAULT_REWRITES, **rewrites}
    debug = "verbose" in options or environ.get("DUMB_INIT_DEBUG") == "1"
    return cli.Config(command, rewrites, not setsid, cli.grace(environ), frozenset(), 0,
                      log.INFO if debug else log.WARNING, new_session=setsid,
                      suspend_on=signals.JOB_CONTROL)


def _dumb_rewrite(text: str) -> tuple[int, int]:
    """s:r as dumb-init reads it: numbers only, s in 1..31, r in 0..31."""
    source, _, target = text.partition(":")
    try:
        pair = int(source), int(target)
    except ValueError:
        pair = (0, -1)
    if not (1 <= pair[0] <= DUMB_INIT_MAXSIG and 0 <= pair[1] <= DUMB_INIT_MAXSIG):
        raise cli.UsageError(f"invalid -r '{text}': use s:r, signal numbers 1-"
                             f"{DUMB_INIT_MAXSIG} (r=0 drops s)")
    return pair


def _atoi(text: str) -> int:
    """C's atoi, as tini reads TINI_VERBOSITY: leading digits, 0 when there are none."""
    digits = text.strip()
    digits = digits[:len(digits) - len(digits.lstrip("0123456789"))] if digits else ""
    return int(digits) if digits else 0
