"""``python -m wifidiff_fast.eval``: see :mod:`wifidiff_fast.eval.runner`."""

import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
