"""The one record every loader returns and every evaluator consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Scene:
    """A ground-truth radio map on a grid.

    Attributes:
        name: unique, human-readable id (``brat2_5750MHz_r0c0``).
        rss_dbm: ``float32 [H, W]`` received power in dBm, NaN on buildings.
        buildings: ``uint8 [H, W]``, 1 = building.
        freq_mhz: carrier frequency, or ``None`` when the source does not say.
        tx_rc: ``int [n_tx, 2]`` transmitter (row, col) in this grid; may lie outside it.
        source: where the map comes from, with its credit.
    """

    name: str
    rss_dbm: np.ndarray
    buildings: np.ndarray
    freq_mhz: float | None = None
    tx_rc: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    source: str = ""

    def __post_init__(self) -> None:
        self.rss_dbm = np.asarray(self.rss_dbm, dtype=np.float32)
        self.buildings = np.asarray(self.buildings, dtype=np.uint8)
        if self.rss_dbm.shape != self.buildings.shape or self.rss_dbm.ndim != 2:
            raise ValueError(
                f"scene {self.name}: rss_dbm {self.rss_dbm.shape} and buildings {self.buildings.shape} "
                "must be the same 2-D shape"
            )
        self.rss_dbm = np.where(self.buildings == 1, np.nan, self.rss_dbm).astype(np.float32)
        self.tx_rc = np.asarray(self.tx_rc, dtype=np.int64).reshape(-1, 2)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rss_dbm.shape  # type: ignore[return-value]
