"""Give the child exactly the environment the user gave pyinit.

Two things add to pyinit's own environment before any of its code runs:
- CPython's locale coercion (PEP 538) sets LC_CTYPE=C.UTF-8 when the locale is C/POSIX, which
  is every `env -i` or scratch image; the value pyinit was started with is still in
  /proc/self/environ, which setenv() never rewrites.
- a PyInstaller bootloader sets LD_LIBRARY_PATH (saving an earlier value in
  LD_LIBRARY_PATH_ORIG) and _PYI_* variables; a child that kept them would load the bundle's
  libraries instead of its own. What the bootloader consumes cannot come back: a caller's own
  _PYI_* variables and PYINSTALLER_RESET_ENVIRONMENT (which it reads and unsets), and a caller's
  LD_LIBRARY_PATH_ORIG when LD_LIBRARY_PATH was set too (it overwrites it).
Undoing both in os.environ (which calls putenv/unsetenv) lets the child inherit through exec.
"""

from __future__ import annotations

import os
import sys

_COERCED = ("C.UTF-8", "C.utf8", "UTF-8")
_BOOTLOADER_PREFIXES = ("_PYI_", "_MEIPASS")


def restore() -> None:
    if getattr(sys, "frozen", False):
        _undo_bootloader()
    _undo_locale_coercion()


def _undo_bootloader() -> None:
    """The onedir bootloader re-execs itself with LD_LIBRARY_PATH set to its _internal directory,
    prepended to the caller's value, which it also copies to LD_LIBRARY_PATH_ORIG (only when that
    value was set and not empty). Undo exactly that: a caller's own LD_LIBRARY_PATH_ORIG survives
    when the bootloader did not overwrite it."""
    home = getattr(sys, "_MEIPASS", None)
    value = os.environ.get("LD_LIBRARY_PATH")
    if home and value == home:
        del os.environ["LD_LIBRARY_PATH"]  # the caller's was unset (or empty: the same to ld.so)
    elif home and value is not None and value.startswith(home + ":"):
        original = value[len(home) + 1:]
        os.environ["LD_LIBRARY_PATH"] = original
        if os.environ.get("LD_LIBRARY_PATH_ORIG") == original:
            del os.environ["LD_LIBRARY_PATH_ORIG"]
    else:  # a bootloader that does it differently: trust its saved copy
        original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = original
    for key in [key for key in os.environ if key.startswith(_BOOTLOADER_PREFIXES)]:
        del os.environ[key]


def _undo_locale_coercion() -> None:
    if os.environ.get("LC_CTYPE") not in _COERCED or "LC_ALL" in os.environ:
        return
    try:
        with open("/proc/self/environ", "rb") as initial:
            entries = initial.read().split(b"\0")
    except OSError:
        return  # no /proc: keep what we have rather than guess
    for entry in entries:
        if entry.startswith(b"LC_CTYPE="):
            os.environb[b"LC_CTYPE"] = entry[len(b"LC_CTYPE="):]
            return
    del os.environ["LC_CTYPE"]
