"""Command line and PYINIT_* environment into a Config; bad input exits 2 with one line.

A hand-written parser rather than argparse/getopt: both pull in gettext and re at start-up, and
pyinit needs exact control of the message (which value was bad) and of where options stop
(at the first non-option, so COMMAND's own options are never touched).
"""

from __future__ import annotations

import math
import sys

from pyinit import __version__, log, signals

TYPE_CHECKING = False  # typing and collections.abc cost ~3 ms of start-up; annotations only
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import TypeVar

    T = TypeVar("T")

USAGE_ERROR = 2

HELP = """\
usage: pyinit [OPTIONS] [--] COMMAND [ARGS...]

Run COMMAND as a container init: forward signals to it, reap every zombie, and when it exits
tear down everything left (TERM, grace period, KILL), then exit with its status.

options (environment variable in brackets; the command line wins):
  -r, --rewrite FROM:TO  rewrite signal FROM to TO before forwarding; TO=0 drops it; names
                         (TERM, SIGTERM, any case) or numbers; repeatable   [PYINIT_REWRITE]
  -c, --single-child     forward signals to the main child only, not its process group
                                                                      [PYINIT_SINGLE_CHILD]
  -t, --grace SECONDS    time between TERM and KILL at teardown (default 5)  [PYINIT_GRACE]
  -e, --expect-exit CODE exit 0 when the main child exits with CODE; repeatable
                                                                      [PYINIT_EXPECT_EXIT]
  -p, --pdeathsig SIGNAL signal pyinit gets when its parent dies      [PYINIT_PDEATHSIG]
  -v, --verbose          log lifecycle events (signals, reaped orphans) to stderr
                                                                           [PYINIT_VERBOSE]
  -q, --quiet            log errors only, no warnings                       [PYINIT_QUIET]
      --log-format FORMAT  text (default) or json: one JSON object a line, with time, level,
                         event and its fields (pid, command, signal, status)
                                                                       [PYINIT_LOG_FORMAT]
      --check [--json]   print what pyinit finds on this machine and will use (as one
                         JSON object with --json); exit 1 if it cannot do its job here
      --version          print the version and exit
  -h, --help             print this help and exit
      --compat=TOOL      first argument only: take tini's or dumb-init's options instead
                         (also chosen by running pyinit as tini, docker-init or dumb-init)

exit status: COMMAND's status; 128+N if it died from signal N; 0 for --expect-exit codes;
1 --check found pyinit cannot work here; 2 usage error; 125 pyinit failed to start COMMAND;
126 COMMAND not executable; 127 not found.
"""

_TAKES_VALUE = {"r": "rewrite", "t": "grace", "e": "expect-exit", "p": "pdeathsig"}
_LONG_VALUES = {"log-format"}  # options that take a value and have no letter
_FLAGS = {"c": "single-child", "v": "verbose", "q": "quiet", "h": "help"}
_LONG = (set(_TAKES_VALUE.values()) | _LONG_VALUES | set(_FLAGS.values())
         | {"version", "check", "json"})
LOG_FORMATS = ("text", "json")


class UsageError(Exception):
    """One line saying which value was wrong."""


class Config:
    """Everything the runtime needs, resolved from the command line and the environment."""

    __slots__ = (
        "command",
        "expect_exit",
        "grace",
        "log_format",
        "new_session",
        "pdeathsig",
        "rewrites",
        "single_child",
        "suspend_on",
        "verbosity",
        "warn_reaped",
    )

    def __init__(self, command: list[str], rewrites: dict[int, int], single_child: bool,
                 grace: float, expect_exit: frozenset[int], pdeathsig: int,
                 verbosity: int, log_format: str = "text", *, new_session: bool = True,
                 suspend_on: frozenset[int] | None = None, warn_reaped: bool = False) -> None:
        self.command = command
        self.rewrites = rewrites
        self.single_child = single_child  # forward to the child only, not its process group
        self.grace = grace
        self.expect_exit = expect_exit
        self.pdeathsig = pdeathsig
        self.verbosity = verbosity
        self.log_format = log_format
        # False: the child stays in pyinit's session and process group (dumb-init -c)
        self.new_session = new_session
        # signals on which pyinit, after forwarding, stops itself (job control)
        self.suspend_on = signals.suspending(rewrites) if suspend_on is None else suspend_on
        self.warn_reaped = warn_reaped  # a warning per reaped orphan (tini -w)


def configure(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """pyinit's own command line, or tini's / dumb-init's when pyinit runs under one of their
    names (a link called tini, docker-init or dumb-init) or with --compat=NAME first."""
    tool = COMPAT_NAMES.get(argv[0].rpartition("/")[2]) if argv else None
    args = list(argv[1:])
    if tool is None and args and args[0].startswith("--compat"):
        key, _, tool = args.pop(0).partition("=")
        if key != "--compat" or tool not in COMPAT_NAMES.values():
            log.error(f"invalid --compat '{tool}': use --compat=tini or --compat=dumb-init")
            raise SystemExit(USAGE_ERROR)
    if tool is None:
        return parse(args, environ)
    from pyinit import compat  # only then: pyinit's own start-up does not pay for it

    return compat.parse(tool, args, environ)


COMPAT_NAMES = {"tini": "tini", "docker-init": "tini", "dumb-init": "dumb-init"}


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Parse or exit: 0 after --help/--version, 2 after a usage error."""
    try:
        options, command = split(argv)
        if "help" in options:
            sys.stdout.write(HELP)
            raise SystemExit(0)
        if "version" in options:
            sys.stdout.write(f"pyinit {__version__}\n")
            raise SystemExit(0)
        if "json" in options and "check" not in options:
            raise UsageError("--json goes with --check")
        if "check" in options:
            if command:
                raise UsageError("--check takes no COMMAND")
            from pyinit import check

            raise SystemExit(check.run("json" in options))
        if not command:
            raise UsageError("no COMMAND given")
        return _resolve(options, command, environ)
    except UsageError as error:
        log.error(f"{error} (see 'pyinit --help')")
        raise SystemExit(USAGE_ERROR) from None


def split(argv: Sequence[str], takes_value: Mapping[str, str] = _TAKES_VALUE,
          flags: Mapping[str, str] = _FLAGS, long: set[str] = _LONG,
          long_values: set[str] = _LONG_VALUES) -> tuple[dict[str, list[str]], list[str]]:
    """Options (name -> values in order) and the command, which starts at the first non-option.
    The tables (letter -> name, long names, long names taking a value) default to pyinit's
    own; compat passes others."""
    options: dict[str, list[str]] = {}
    args = list(argv)
    while args and args[0].startswith("-") and args[0] != "-":
        arg = args.pop(0)
        if arg == "--":
            break
        if arg.startswith("--"):
            key, has_value, value = arg[2:].partition("=")
            if key not in long:
                raise UsageError(f"unknown option '{arg}'")
            if key in takes_value.values() or key in long_values:
                if not has_value:
                    value = _next_value(args, arg)
                options.setdefault(key, []).append(value)
            elif has_value:
                raise UsageError(f"option '--{key}' takes no value")
            else:
                options.setdefault(key, []).append("")
            continue
        letters = arg[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            if letter in flags:
                options.setdefault(flags[letter], []).append("")
            elif letter in takes_value:
                value = letters or _next_value(args, f"-{letter}")
                options.setdefault(takes_value[letter], []).append(value)
                letters = ""
            else:
                raise UsageError(f"unknown option '-{letter}'")
    return options, args


def _next_value(args: list[str], option: str) -> str:
    if not args:
        raise UsageError(f"option '{option}' needs a value")
    return args.pop(0)


def _resolve(options: dict[str, list[str]], command: list[str],
             environ: Mapping[str, str]) -> Config:
    def values(key: str) -> list[str]:
        """Command-line values, or else the environment variable's, split on commas/spaces."""
        if key in options:
            return options[key]
        return environ.get("PYINIT_" + key.upper().replace("-", "_"), "").replace(",", " ").split()

    rewrites = dict(signals.DEFAULT_REWRITES)
    for text in values("rewrite"):
        rewrites.update([convert(signals.parse_rewrite, text, "signal rewrite (FROM:TO)")])

    grace = _grace(values("grace"))

    expect = {convert(exit_code, text, "exit code") for text in values("expect-exit")}

    death_text = values("pdeathsig")
    pdeathsig = convert(signals.parse, death_text[-1], "signal") if death_text else 0

    if "verbose" in options or "quiet" in options:
        verbosity = 0 if "quiet" in options else log.WARNING + len(options.get("verbose", ()))
    else:
        verbosity = log.WARNING + convert(_level, environ.get("PYINIT_VERBOSE") or "0",
                                           "PYINIT_VERBOSE level")
        if _flag(environ, "PYINIT_QUIET"):
            verbosity = log.ERROR

    single = "single-child" in options or _flag(environ, "PYINIT_SINGLE_CHILD")
    log_format = (values("log-format") or ["text"])[-1].lower()
    if log_format not in LOG_FORMATS:
        raise UsageError(f"invalid log format '{log_format}': use text or json")
    return Config(command, rewrites, single, grace, frozenset(expect), pdeathsig, verbosity,
                  log_format)


def grace(environ: Mapping[str, str]) -> float:
    """PYINIT_GRACE alone: what the compat command lines use, having no option for it."""
    return _grace(environ.get("PYINIT_GRACE", "").split())


def _grace(texts: list[str]) -> float:
    value = convert(float, texts[-1], "grace period") if texts else 5.0
    if value < 0 or not math.isfinite(value):
        raise UsageError(f"invalid grace period '{texts[-1]}': must be >= 0 seconds")
    return value


def exit_code(text: str) -> int:
    code = int(text)
    if not 0 <= code <= 255:
        raise ValueError(text)
    return code


def _level(text: str) -> int:
    """A verbosity level: a count (0, 1, 2...) or, like the other flags, yes/no words."""
    word = text.strip().lower()
    if word in _FLAG_WORDS:
        return int(_FLAG_WORDS[word])
    level = int(word)
    if level < 0:
        raise ValueError(text)
    return level


def convert(convert: Callable[[str], T], text: str, what: str) -> T:
    try:
        return convert(text)
    except ValueError:
        raise UsageError(f"invalid {what} '{text}'") from None


_FLAG_WORDS = {"": False, "0": False, "false": False, "no": False, "off": False,
               "1": True, "true": True, "yes": True, "on": True}


def _flag(environ: Mapping[str, str], variable: str) -> bool:
    value = environ.get(variable, "").strip().lower()
    if value in _FLAG_WORDS:
        return _FLAG_WORDS[value]
    raise UsageError(f"invalid {variable} '{value}': use 1 or 0")
