"""The one place that writes pyinit's own lines to stderr, and never waits to do it.

Levels: 0 errors only (-q), 1 warnings (default), 2 lifecycle events (-v; more -v change nothing).
Writes go straight to the descriptor so nothing is buffered when pyinit exits or is stopped.

stderr is often a pipe to a log shipper that can stall or die. A blocking write to a full pipe
would stop pyinit from reaping, forwarding and exiting, so a line that cannot be written at once
is dropped and counted, and the count is reported when stderr takes writes again (and at exit).
Pipes, FIFOs and terminals are reopened through /proc with O_NONBLOCK: a private open file
description, so the child's stderr keeps its own flags. Where that cannot be done (a socket, no
/proc) poll() says whether a write would block. Regular files never block and are written as is.
"""

from __future__ import annotations

import os

ERROR, WARNING, INFO = 0, 1, 2
level = WARNING
json_lines = False  # --log-format json: one JSON object a line, for log pipelines
_LEVELS = ("error", "warning", "info")

MAX_LINE = 4096  # PIPE_BUF: a pipe takes a write this size whole or not at all, never half
_S_IFMT, _S_IFIFO, _S_IFCHR, _S_IFSOCK = 0o170000, 0o010000, 0o020000, 0o140000

_UNCHOSEN = -1
_fd: int | None = _UNCHOSEN  # None: pyinit started without stderr and never writes one
_guarded = False  # ask poll() before each write
_dropped = 0
# Control characters in a command line or process name could forge or hide log lines.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def check_stderr() -> None:
    """Called before pyinit opens anything: a descriptor opened later may land on a closed
    fd 2, and writing pyinit's lines into it would corrupt whatever it is."""
    global _fd
    try:
        os.fstat(2)
    except OSError:
        _fd = None


def emit(at: int, message: str, event: str = "message", **fields: object) -> None:
    """Write one line now or drop it; never blocks, never raises. event and fields (pid,
    command, signal, status...) are what a JSON line carries besides the message."""
    global _dropped
    if at > level:
        return
    try:
        if _fd == _UNCHOSEN:
            _choose_fd()
        if _fd is None:
            return
        if _dropped and _write(_fd, _line(ERROR, f"{_dropped} earlier lines were dropped: "
                                          "stderr was not writable", "dropped_lines",
                                          {"count": _dropped})):
            _dropped = 0
        if not _write(_fd, _line(at, message, event, fields)):
            _dropped += 1
    except (OSError, MemoryError):
        pass  # logging is never worth dying for


def report_dropped() -> None:
    """At exit: say how many lines were lost, if stderr takes this one."""
    if _dropped:
        emit(ERROR, f"{_dropped} lines were dropped: stderr was not writable",
             "dropped_lines", count=_dropped)


def error(message: str, event: str = "error", **fields: object) -> None:
    emit(ERROR, message, event, **fields)


def warning(message: str, event: str = "warning", **fields: object) -> None:
    emit(WARNING, message, event, **fields)


def info(message: str, event: str = "message", **fields: object) -> None:
    emit(INFO, message, event, **fields)


def _line(at: int, message: str, event: str, fields: dict[str, object]) -> bytes:
    if json_lines:
        return _json_line(at, message, event, fields)
    data = f"pyinit: {message.translate(_ESCAPES)}".encode(errors="replace")
    if len(data) >= MAX_LINE:
        data = data[:MAX_LINE - 4] + b"..."
    return data + b"\n"


def _json_line(at: int, message: str, event: str, fields: dict[str, object]) -> bytes:
    """JSON escapes control characters itself; long strings are cut so a line stays a line."""
    import json
    import time

    now = time.time()
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
              + f".{int(now % 1 * 1000):03d}Z", "level": _LEVELS[at], "event": event,
              "message": message, **fields}
    data = json.dumps(record, ensure_ascii=False).encode(errors="backslashreplace")
    if len(data) >= MAX_LINE:
        record = {key: value[:512] + "..." if isinstance(value, str) and len(value) > 512
                  else value for key, value in record.items()}
        data = json.dumps(record, ensure_ascii=True).encode()[:MAX_LINE - 1]
    return data + b"\n"


def _write(fd: int, data: bytes) -> bool:
    """False when the line could not be written now (full, closed or broken stderr). A broken
    pipe also raises SIGPIPE at pyinit; signals.wait discards it as self-inflicted."""
    if _guarded and not _writable(fd):
        return False
    try:
        os.write(fd, data)
    except OSError:
        return False
    return True


def _choose_fd() -> None:
    """At the first line, not at start-up: most runs never log anything."""
    global _fd, _guarded
    _fd, _guarded = 2, False
    kind = os.fstat(2).st_mode & _S_IFMT
    if kind == _S_IFSOCK:
        _guarded = True
    elif kind in (_S_IFIFO, _S_IFCHR):
        try:
            fd = os.open("/proc/self/fd/2",
                         os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:  # no /proc, no reader left on the FIFO (ENXIO), or no permission
            _guarded = True
            return
        if fd <= 2:
            from pyinit.fds import above_stdio

            fd = above_stdio(fd)
        _fd = fd


def _writable(fd: int) -> bool:
    import select

    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLOUT for _, events in poller.poll(0))
