"""PID 1 of a namespace for the teardown benchmark: ``python3 -I -S holder.py TIMEOUT INIT...``.

Runs INIT (which runs ``child.py escape N``) as its child, so INIT is *not* PID 1 and the
kernel does not clean up for it. Reads the main process's escapee PIDs and exit time from the
stdout pipe, notes when INIT exits (pidfd, no polling), waits 100 ms for in-flight signals to
land, counts the escapees still alive, prints one line ``teardown_ns left total status`` and
exits, which (as PID 1) takes the rest of the namespace down with it.
"""

from __future__ import annotations

import os
import select
import sys
import time


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return False
    return text[text.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def main() -> None:
    timeout = float(sys.argv[1])
    command = sys.argv[2:]
    deadline = time.monotonic() + timeout
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(write_end, 1)
        os.close(read_end)
        os.close(write_end)
        os.execvp(command[0], command)
    os.close(write_end)
    pidfd = os.pidfd_open(pid)
    buffer, pids, exited_ns = b"", [], 0
    while not exited_ns:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([read_end], [], [], max(left, 0))
        if not ready:
            raise SystemExit("holder: timed out waiting for the main process")
        chunk = os.read(read_end, 65536)
        if not chunk:
            raise SystemExit("holder: main process gave no exit time")
        buffer += chunk
        for line in buffer.split(b"\n")[:-1]:
            word, _, rest = line.decode().partition(" ")
            if word == "pids":
                pids = [int(p) for p in rest.split()]
            elif word == "exit":
                exited_ns = int(rest)
        buffer = buffer[buffer.rfind(b"\n") + 1:]
    ready, _, _ = select.select([pidfd], [], [], max(deadline - time.monotonic(), 0))
    if not ready:
        raise SystemExit("holder: timed out waiting for the init to exit")
    init_exit_ns = time.monotonic_ns()
    _, status = os.waitpid(pid, 0)
    time.sleep(0.1)
    left = sum(_alive(p) for p in pids)
    os.write(1, f"{init_exit_ns - exited_ns} {left} {len(pids)} {status}\n".encode())


if __name__ == "__main__":
    main()
