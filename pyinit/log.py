"""The one place that writes pyinit's own lines to stderr.

Levels: 0 errors only (-q), 1 warnings (default), 2 lifecycle events (-v; more -v change nothing).
Writes go straight to fd 2 so nothing is buffered when pyinit exits or is stopped.
"""

from __future__ import annotations

import os

ERROR, WARNING, INFO = 0, 1, 2
level = WARNING


def emit(at: int, message: str) -> None:
    if at <= level:
        try:
            os.write(2, f"pyinit: {message}\n".encode(errors="replace"))
        except OSError:
            pass  # stderr closed or a full pipe: never worth dying for


def error(message: str) -> None:
    emit(ERROR, message)


def warning(message: str) -> None:
    emit(WARNING, message)


def info(message: str) -> None:
    emit(INFO, message)

