"""``python -m wifidiff_fast.estimate ...``: kept as an alias of ``wifidiff-fast estimate ...``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    return cli_main(["estimate", *argv])


if __name__ == "__main__":
    sys.exit(main())
