"""Progress on long work: a tqdm bar on a terminal, nothing when stderr is not a TTY or when
asked to be quiet (``enabled=False``; ``WIFIDIFF_PROGRESS=0``).

Every command line (``train``, ``eval``, ``demo``, ``raytrace``, ``wifidiff-fast``) decides through
:func:`wanted` so one rule holds everywhere: its ``--quiet``/``--no-progress`` flag
(:func:`add_quiet_flag`, read by :func:`for_cli`), then the environment, then the terminal.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from .. import _env


def wanted(enabled: bool | None = None) -> bool:
    """An explicit choice wins, then ``WIFIDIFF_PROGRESS``, then "is stderr a terminal"."""
    if enabled is not None:
        return bool(enabled)
    env = _env.progress()
    if env is not None:
        return env
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def for_cli(quiet: bool) -> bool:
    """A command line's choice: ``--quiet`` turns progress off; without it the environment, then
    the terminal decide (the flag cannot force progress on; ``WIFIDIFF_PROGRESS=1`` can)."""
    return wanted(False if quiet else None)


def add_quiet_flag(parser) -> None:
    """``--quiet`` (alias ``--no-progress``) on an argparse parser, as ``args.quiet``."""
    parser.add_argument(
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress display (default: shown when stderr is a terminal; WIFIDIFF_PROGRESS=0/1 overrides)",
    )


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


@contextmanager
def progress(total: int, desc: str, enabled: bool | None = None, unit: str = "it"):
    """``with progress(S, "generation") as bar: ... bar.update()``."""
    if not wanted(enabled) or total <= 0:
        yield _Quiet()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
