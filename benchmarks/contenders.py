"""Who competes: the inits found on this machine, the floor each is measured against, the
programs they run, and the interleaved order in which they take turns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pyinit import __version__

HERE = Path(__file__).resolve().parent
CHILD = str(HERE / "child.py")
HOLDER = str(HERE / "holder.py")
# The interpreter pyinit runs on (the venv's python is a symlink to it): the floor's too.
PYTHON = os.path.realpath(sys.executable)
BARE = [PYTHON, "-I", "-S"]
FROZEN = Path(os.environ.get("PYINIT_FROZEN", "/opt/pyinit/pyinit"))
# The single file scripts/build-single makes in this checkout.
SINGLE = Path(os.environ.get(
    "PYINIT_SINGLE", HERE.parent / "dist" / f"pyinit-{__version__}-linux-{os.uname().machine}"))
FLOOR = "floor"

T = TypeVar("T")


def contenders() -> dict[str, list[str] | None]:
    """Column name -> the argv prefix that runs COMMAND under that init (None: not available)."""
    venv_bin = Path(sys.executable).parent
    script = venv_bin / "pyinit"
    found: dict[str, list[str] | None] = {
        "pyinit": [str(script), "--"] if os.access(script, os.X_OK) else None,
        "pyinit -m": [sys.executable, "-m", "pyinit", "--"],
        "frozen": [str(FROZEN), "--"] if os.access(FROZEN, os.X_OK) else None,
        "single": [str(SINGLE), "--"] if os.access(SINGLE, os.X_OK) else None,
    }
    anchors = {"tini": ["-s", "--"], "dumb-init": ["--"], "catatonit": ["--"]}
    for name, options in anchors.items():
        path = shutil.which(name)
        found[name] = [path, *options] if path else None
    return found


def versions() -> dict[str, str]:
    out = {}
    for package in ("tini", "dumb-init", "catatonit"):
        try:
            out[package] = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                text=True, timeout=10).stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            out[package] = "?"
    return out


def rotated(names: list[str], index: int) -> list[str]:
    """A B C, B C A, C A B, ...: interleaved, and no one always first."""
    shift = index % len(names)
    return names[shift:] + names[:shift]


def rounds(names: list[str], runs: int, measure: Callable[[str], T]) -> dict[str, list[T]]:
    """RUNS interleaved rounds of measure(name) for every name: name -> its results."""
    results: dict[str, list[T]] = {name: [] for name in names}
    for index in range(runs):
        for name in rotated(names, index):
            results[name].append(measure(name))
    return results
