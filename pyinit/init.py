"""pyinit's whole life, top to bottom: configure, start the child, forward and reap until it
exits, tear down what is left, exit with its status.

No signal handlers anywhere: every handled signal is blocked before the child exists and taken
with sigwaitinfo, so none is lost, none interrupts pyinit's own code, and nothing wakes pyinit
while nothing happens.
"""

from __future__ import annotations

import _signal
import os
import sys

import _prctl

from pyinit import cgroup, cli, environ, log, probe, reaper, signals, spawn, teardown


def run() -> None:
    """The command's entry point. Exits without interpreter finalization: tearing down the
    modules costs ~3 ms on every container start and nothing is left to flush (pyinit's own
    lines go straight to fd 2)."""
    os._exit(main(sys.argv))


def main(argv: list[str]) -> int:
    """argv as the process got it: argv[0] chooses pyinit's own options or tini's/dumb-init's."""
    original_mask = signals.block()  # first: from here on no signal is lost or fatal
    log.check_stderr()  # before pyinit opens anything that could land on a closed fd 2
    config = cli.configure(argv, os.environ)
    log.level = config.verbosity
    log.json_lines = config.log_format == "json"
    environ.restore()
    _configure_process(config.pdeathsig)

    chld_ignored = _signal.getsignal(signals.SIGCHLD) == _signal.SIG_IGN
    _signal.signal(signals.SIGCHLD, _signal.SIG_DFL)  # an ignored SIGCHLD would auto-reap
    claimed = cgroup.claim()  # before the child exists: alone in it, or not ours to answer for
    tty = config.new_session and spawn.release_terminal()
    try:
        child = spawn.start(config.command, original_mask, tty, chld_ignored,
                            config.new_session)
    except spawn.SpawnError as error:
        log.error(str(error), "spawn_failed", command=" ".join(config.command),
                  status=error.status)
        return error.status
    log.info(f"started {child}: {' '.join(config.command)}", "started", pid=child,
             command=" ".join(config.command))

    status = _forward_until_exit(child, config)
    code = reaper.exit_code(status)
    log.info(f"main child {child} exited: {code}", "exited", pid=child, status=code)

    stop_signal = config.rewrites.get(signals.SIGTERM) or signals.SIGTERM
    teardown.run(stop_signal, config.grace, child, claimed)
    log.report_dropped()
    return 0 if code in config.expect_exit else code


def _configure_process(pdeathsig: int) -> None:
    """Subreaper (so orphans come to pyinit even when it is not PID 1), parent-death signal, and
    the name `ps` shows."""
    try:
        if not probe.available("subreaper"):
            raise OSError(0, "disabled by PYINIT_TEST_DISABLE")
        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
    except OSError as error:
        if os.getpid() != 1:
            log.warning(f"cannot become a child subreaper ({error.strerror}): orphans that "
                        "leave the child's tree will not be reaped or torn down", "no_subreaper")
    if pdeathsig:
        try:
            _prctl.prctl(_prctl.PR_SET_PDEATHSIG, pdeathsig)
        except OSError as error:
            log.warning(f"cannot set the parent-death signal ({error.strerror})", "no_pdeathsig")
    try:
        _prctl.prctl(_prctl.PR_SET_NAME, "pyinit")
    except OSError:
        pass  # a seccomp profile that denies prctl: only `ps` loses the name


def _forward_until_exit(child: int, config: cli.Config) -> int:
    """Forward every signal but SIGCHLD; reap on SIGCHLD. Returns the main child's wait status."""
    target = child if config.single_child else -child
    describe = log.level >= log.INFO
    orphan_rate = reaper.OrphanRate()
    while True:
        sig = signals.wait()
        if sig != signals.SIGCHLD:
            _forward(sig, target, config.rewrites)
            if sig in config.suspend_on and os.getpid() != 1:
                # Like dumb-init: stop with the child, so the shell that sent the job-control
                # signal sees pyinit stopped too; its SIGCONT then resumes pyinit and is
                # forwarded.
                os.kill(os.getpid(), signals.SIGSTOP)
            if not signals.take(signals.SIGCHLD):
                continue
        main_status = None
        orphans = 0
        for pid, status, name in reaper.reap(describe):
            if pid == child:
                main_status = status
                continue
            orphans += 1
            if config.warn_reaped:  # worded as tini -w words it, for whoever greps for it
                log.warning(f"Reaped zombie process with pid={pid}", "reaped", pid=pid)
            elif describe:  # storms reap thousands: build no message nobody reads
                code = reaper.exit_code(status)
                log.info(f"reaped orphan {pid} ({name}): exit {code}", "reaped", pid=pid,
                         command=name, status=code)
        if orphans:
            orphan_rate.add(orphans)
        if main_status is not None:
            return main_status


def _forward(sig: int, target: int, rewrites: dict[int, int]) -> None:
    sent = rewrites.get(sig, sig)
    whom = f"process group {-target}" if target < 0 else f"child {target}"
    if not sent:
        log.info(f"dropped {signals.name(sig)}", "dropped", signal=signals.name(sig))
        return
    try:
        os.kill(target, sent)
    except ProcessLookupError:
        return  # exited, not yet reaped: the SIGCHLD is on its way
    except PermissionError:
        # e.g. pyinit runs as nobody and the child became root through a setuid program
        log.warning(f"cannot send {signals.name(sent)} to {whom}: permission denied",
                    "forward_denied", signal=signals.name(sent), pid=target)
        return
    if sent == sig:
        log.info(f"forwarded {signals.name(sig)} to {whom}", "forwarded",
                 signal=signals.name(sig), pid=target)
    else:
        log.info(f"rewrote {signals.name(sig)} to {signals.name(sent)} for {whom}", "forwarded",
                 signal=signals.name(sent), received=signals.name(sig), pid=target)
