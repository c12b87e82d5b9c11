"""Atomic file writes: a reader (or a crashed run) never sees a half-written output.

Every output goes to a temporary file in the destination's folder and is renamed over the
destination only once it is complete (``os.replace`` is atomic on one file system). On any error
the temporary file is removed, so a failed run leaves no partial output behind.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    The temporary name keeps the destination's suffix, so writers that choose the format from the
    suffix (matplotlib, rasterio) see the right one.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
