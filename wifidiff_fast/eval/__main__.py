"""``python -m wifidiff_fast.eval``: see :mod:`wifidiff_fast.eval.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
