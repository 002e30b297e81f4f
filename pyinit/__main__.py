"""``python -m pyinit``; the installed ``pyinit`` command is bin/pyinit, which skips runpy."""

import sys

from pyinit.init import main

sys.exit(main(sys.argv[1:]))
