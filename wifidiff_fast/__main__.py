"""``python -m wifidiff_fast``: the same as the ``wifidiff-fast`` console script (see :mod:`.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
