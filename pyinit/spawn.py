"""Start the main child: a new session, the controlling terminal, a clean signal state, exec.

Exec failure comes back through a close-on-exec pipe, as in CPython's _posixsubprocess: the
pipe reads empty when exec succeeded, or carries the errno when it did not.
"""

from __future__ import annotations

import _signal
import errno
import os

from pyinit import signals

NOT_FOUND, NOT_EXECUTABLE, CANNOT_START = 127, 126, 125


class SpawnError(Exception):
    """The command could not be started; ``status`` is what pyinit exits with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def release_terminal() -> bool:
    """Hand the controlling terminal over to the child (as dumb-init does); True if stdin is a TTY.

    A session leader that gives up its terminal makes the kernel send SIGHUP and SIGCONT to the
    terminal's foreground group, pyinit included: for that moment only they are unblocked and
    ignored, so they are discarded instead of queued and forwarded to the child.
    """
    if not os.isatty(0):
        return False
    if os.getsid(0) == os.getpid():
        import fcntl
        import termios

        hangup = {signals.SIGHUP, signals.SIGCONT}
        saved = {sig: _signal.signal(sig, _signal.SIG_IGN) for sig in hangup}
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, hangup)
        try:
            fcntl.ioctl(0, termios.TIOCNOTTY)
        except OSError:
            pass  # not our controlling terminal: nothing to give up
        finally:
            _signal.pthread_sigmask(_signal.SIG_BLOCK, hangup)
            for sig, handler in saved.items():
                _signal.signal(sig, handler)
    return True


def start(command: list[str], mask: set[int], tty: bool, chld_ignored: bool,
          new_session: bool = True) -> int:
    """Fork and exec COMMAND; its PID, or SpawnError (after reaping the failed child).
    Without new_session the child stays in pyinit's session and process group, terminal
    included (dumb-init's no-setsid mode: the shell's job control sees one job)."""
    candidates = _search_path(command[0])
    read_end, write_end = _error_pipe()
    home = _leave_directory()
    try:
        pid = os.fork()
    except OSError as error:
        for fd in (read_end, write_end, home):
            if fd is not None:
                os.close(fd)
        raise SpawnError(f"cannot fork: {error.strerror}", CANNOT_START) from None
    if pid == 0:
        _exec_child(candidates, command, mask, tty, chld_ignored, new_session, home, write_end)
    os.close(write_end)
    if home is not None:
        os.close(home)
    with open(read_end, "rb") as pipe:
        report = pipe.read()
    if not report:
        return pid
    os.waitpid(pid, 0)
    code = int(report)
    status = NOT_FOUND if code in (errno.ENOENT, errno.ENOTDIR) else NOT_EXECUTABLE
    raise SpawnError(f"cannot execute '{command[0]}': {os.strerror(code)}", status)


def _leave_directory() -> int | None:
    """Move pyinit to / so it never keeps a mount busy (as dumb-init does); the child goes back
    to the starting directory through the returned fd before exec. Done before fork, so the
    child can never see pyinit still in the starting directory."""
    try:
        home = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # nothing to go back to: stay where we are
    try:
        os.chdir("/")
    except OSError:
        os.close(home)
        return None
    return home


def _error_pipe() -> tuple[int, int]:
    """A close-on-exec pipe whose ends stay clear of descriptors 0-2, even when pyinit was
    started with them closed: the child must not inherit it as its stdio."""
    try:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
    except OSError as error:  # EMFILE/ENFILE: a tiny RLIMIT_NOFILE or a full system table
        raise SpawnError(f"cannot create a pipe: {error.strerror}", CANNOT_START) from None
    if read_end > 2 and write_end > 2:
        return read_end, write_end
    from pyinit.fds import above_stdio

    try:
        return above_stdio(read_end), above_stdio(write_end)
    except OSError as error:
        raise SpawnError(f"cannot create a pipe: {error.strerror}", CANNOT_START) from None


def _search_path(name: str) -> list[str]:
    """The paths execvp would try, in order; worked out before fork because os.execvp imports
    warnings in the child (~1 ms per start in the frozen bundle)."""
    if not name:
        return []  # like a shell: an empty command is not found
    if "/" in name:
        return [name]
    return [os.path.join(directory, name)
            for directory in os.environ.get("PATH", os.defpath).split(":")]


def _exec_child(candidates: list[str], command: list[str], mask: set[int], tty: bool,
                chld_ignored: bool, new_session: bool, home: int | None,
                error_pipe: int) -> None:
    """In the forked child: never returns, never runs Python's exit handlers."""
    code = 0
    try:
        if home is not None:
            os.fchdir(home)
        if new_session:
            os.setsid()
        if tty:
            _take_terminal()
        # Python ignores PIPE and XFSZ at start-up; everything else the child inherits as pyinit
        # got it: exec resets caught signals and keeps ignored ones.
        _signal.signal(signals.SIGPIPE, _signal.SIG_DFL)
        _signal.signal(signals.SIGXFSZ, _signal.SIG_DFL)
        if chld_ignored:
            _signal.signal(signals.SIGCHLD, _signal.SIG_IGN)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        _exec_first(candidates, command)
    except OSError as error:
        code = error.errno or errno.EINVAL
    except BaseException:
        code = errno.EINVAL
    try:
        os.write(error_pipe, str(code).encode())
    finally:
        os._exit(NOT_FOUND)


def _exec_first(candidates: list[str], command: list[str]) -> None:
    """execvp's rule: try each candidate (a file without #! goes to /bin/sh, as tini and
    dumb-init run it); report the first error other than "not there", or else "not found"."""
    first_error = not_found = None
    for candidate in candidates:
        try:
            os.execv(candidate, command)
        except (FileNotFoundError, NotADirectoryError) as error:
            not_found = error
        except OSError as error:
            if error.errno == errno.ENOEXEC:  # no #! line: execvp(3) runs it with /bin/sh
                try:
                    os.execv("/bin/sh", ["/bin/sh", candidate, *command[1:]])
                except OSError:
                    pass  # no shell: report the file's own error
            first_error = first_error or error
    raise first_error or not_found or FileNotFoundError(errno.ENOENT, command[0])


def _take_terminal() -> None:
    import fcntl
    import termios

    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:
        pass  # the terminal still belongs to another session: run without one
