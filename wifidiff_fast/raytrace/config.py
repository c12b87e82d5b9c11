"""What a ray-traced corpus is made with: the BRAT-like bands, the building sources, :class:`RTConfig`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..data.units import P_MIN_DBM

BRAT_BANDS_MHZ = (1750.0, 2750.0, 3750.0, 4750.0, 5750.0)
# Region 2 is the validation region: it must never be used to make training data.
BRAT_TRAIN_REGION = 1
SOURCES = ("procedural", "brat", "mixed")


@dataclass
class RTConfig:
    size: int = 256  # map side [px]
    pixel_m: float = 2.0  # cell size [m]
    margin: int = 32  # context around the map [px] (buildings and sites)
    source: str = "procedural"  # procedural | brat | mixed
    rays: int = 10_000_000  # rays per map, shared by all sectors
    max_depth: int = 3
    diffraction: bool = True
    refraction: bool = True
    building_height_m: tuple[float, float] = (10.0, 35.0)
    rx_height_m: float = 1.5
    mast_height_m: tuple[float, float] = (10.0, 30.0)  # above ground, mast top
    n_sites: tuple[int, int] = (1, 3)
    sectors: int = 3  # 3 → BRAT-like sectors, 1 → one isotropic antenna
    smooth_px: float = 1.0  # σ of the normalised Monte-Carlo smoothing [px]; 0 = off
    wedge_table: int = 1 << 20  # diffraction-wedge hash slots (Sionna's default: 10 000)
    downtilt_deg: float = 10.0
    tx_power_dbm: float = 46.0  # per sector
    freqs_mhz: tuple[float, ...] = BRAT_BANDS_MHZ
    floor_dbm: float = P_MIN_DBM
    building_material: str = "concrete"
    ground_material: str = "medium_dry_ground"
    outside_site_prob: float = 0.2  # chance that a site stands in the margin, off the map

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.size < 8 or self.margin < 0 or self.pixel_m <= 0:
            raise ValueError("size must be >= 8, margin >= 0 and pixel_m > 0")
        if self.sectors not in (1, 3):
            raise ValueError("sectors must be 1 (isotropic) or 3 (BRAT-like)")
        self.building_height_m = tuple(float(v) for v in self.building_height_m)
        self.mast_height_m = tuple(float(v) for v in self.mast_height_m)
        self.n_sites = tuple(int(v) for v in self.n_sites)
        self.freqs_mhz = tuple(float(v) for v in self.freqs_mhz)

    @property
    def extent(self) -> int:
        return self.size + 2 * self.margin

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
