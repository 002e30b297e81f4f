"""Descriptors pyinit opens for itself must never take the place of a closed stdin, stdout or
stderr: the child would inherit them as its stdio, or pyinit would log into them."""

from __future__ import annotations

import fcntl
import os


def above_stdio(fd: int) -> int:
    """fd itself when it is above 2; else a close-on-exec duplicate at 3 or higher (fd closed)."""
    if fd > 2:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)
