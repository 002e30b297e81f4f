"""``python -m pyinit`` and the console script both land here."""

import sys

from pyinit.init import main


def run() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
