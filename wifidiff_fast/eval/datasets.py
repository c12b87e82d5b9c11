"""Named evaluation sets: ``get_dataset(name, data_dir=None, limit=None) -> list[Scene]``.

| name | scenes |
| --- | --- |
| ``brat-val`` | BRAT region 2 (the validation region; models train on region 1), 5 bands × 6 crops = 30 |
| ``brat-train`` | BRAT region 1, 30 crops |
| ``brat-dev`` | regions 1 and 2, 60 crops |
| ``brat-val-5750`` | region 2 at 5750 MHz only (the paper's band), 6 crops |
| ``radiomapseer`` | the 10 RadioMapSeer DPM maps of city map 0 |
| ``urbanradio3d`` | the 39 trustworthy UrbanRadio3D frames (approximate dBm scale) |
| ``examples`` | the scenes bundled in the package |
| ``sim-test`` | 24 seeded simulator scenes, ``simulate_scenes(n=24, size=256, seed=12345)`` |

BRAT regions 3–10 are held out and deliberately not reachable from here. ``limit`` keeps the
first ``limit`` scenes (in the loader's deterministic order).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..data import loaders
from ..data.scene import Scene

__all__ = ["DATASETS", "get_dataset", "dataset_names"]


def _sim_test(data_dir) -> list[Scene]:
    from ..data.simulator import simulate_scenes  # lazy: heavy, and written by another module

    return list(simulate_scenes(n=24, size=256, seed=12345))


DATASETS: dict[str, Callable[[str | Path | None], list[Scene]]] = {
    "brat-val": lambda d: loaders.brat_scenes(2, data_dir=d),
    "brat-train": lambda d: loaders.brat_scenes(1, data_dir=d),
    "brat-dev": lambda d: loaders.brat_scenes(1, data_dir=d) + loaders.brat_scenes(2, data_dir=d),
    "brat-val-5750": lambda d: loaders.brat_scenes(2, bands_mhz=(5750,), data_dir=d),
    "radiomapseer": lambda d: loaders.radiomapseer_scenes(data_dir=d),
    "urbanradio3d": lambda d: loaders.urbanradio3d_scenes(data_dir=d),
    "examples": lambda d: loaders.example_scenes(),
    "sim-test": _sim_test,
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def get_dataset(name: str, data_dir: str | Path | None = None, limit: int | None = None) -> list[Scene]:
    """The scenes of one named evaluation set (see the module docstring).

    Raises ``ValueError`` for an unknown name or a bad ``limit`` and ``FileNotFoundError`` (from
    the loader, naming the missing file and ``WIFIDIFF_DATA_DIR``/``--data-dir``) when the data
    is not there.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer, got {limit}")
    scenes = DATASETS[name](data_dir)
    if not scenes:
        raise ValueError(f"dataset {name!r} is empty")
    return scenes[: int(limit)] if limit is not None else scenes
