"""``python -m pyinit``; the installed ``pyinit`` command is bin/pyinit, which skips runpy."""

from pyinit.init import run

run()
