"""Progress on long work: a tqdm bar on a terminal, nothing when stderr is not a TTY or when
asked to be quiet (``enabled=False``; ``WIFIDIFF_PROGRESS=0``)."""

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
