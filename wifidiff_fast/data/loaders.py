"""Loaders for the development data, the bundled examples and user files.

* BRAT-Lab WinProp regions (``<data>/brat/region{k}.npz``): read in place, never copied into the
  package — the files carry no redistribution licence (see their README).
* RadioMapSeer-geometry gain maps (``<data>/radiomapseer_like``, MIT): 8-bit gray levels turned
  into dBm with the RadioUNet convention (below).
* The bundled examples (``wifidiff_fast/data/examples``): seeded simulator scenes and three MIT
  RadioMapSeer maps, so the main job runs without ``../shared`` and without downloads.
* User files: buildings as PNG or NPY, samples as CSV ``row,col,rss_dbm``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _env
from .scene import Scene

CROP = 256

# RadioUNet convention: gray = 255·max((PL + 147)/(M1 + 147), 0), M1 = −47.84 dB; RadioMapSeer
# transmits 23 dBm, so RSS = PL + 23. Gray 0 (deep shadow, truncated) maps to the floor −124 dBm.
RMS_TRUNCATION_DB = -147.0
RMS_MAX_GAIN_DB = -47.84
RMS_TX_POWER_DBM = 23.0

BRAT_CREDIT = (
    "BRAT-Lab (UC Davis) WinProp radio maps via Lxj321/RadioGAT-Multi-band-Radiomap-Reconstruction; "
    "cite Zhang et al., IEEE Commun. Mag. 2024 and IEEE TWC 2024"
)
RMS_CREDIT = "RadioMapSeer (Levie et al., RadioUNet, IEEE TWC 2021; Yapar et al.), MIT, via chg0901/RadioDiff"
URBAN3D_CREDIT = "UrbanRadio3D / RadioDiff-3D (Wang et al., IEEE TNSE 2025), MIT, UNIC-Lab/UrbanRadio3D"
# The three 8-frame UrbanRadio3D files whose labels do not check out (see the data README).
URBAN3D_SUSPECT = ("1", "128_223_106", "136_172_24")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}. Point WIFIDIFF_DATA_DIR (or --data-dir) at the folder "
            "that holds brat/ and radiomapseer_like/."
        )
    return path


@dataclass
class BratRegion:
    """One BRAT region: ``rss_dbm [5, H, W]`` (NaN on buildings) for the 5 bands."""

    index: int
    rss_dbm: np.ndarray
    buildings: np.ndarray
    freqs_mhz: np.ndarray
    tx_rc: np.ndarray


def load_brat_region(index: int, data_dir: str | Path | None = None) -> BratRegion:
    root = Path(data_dir) if data_dir is not None else _env.data_dir()
    path = _require(root / "brat" / f"region{index}.npz", f"BRAT region {index}")
    with np.load(path, allow_pickle=False) as z:
        return BratRegion(
            index,
            z["rss_dbm"].astype(np.float32),
            z["buildings"].astype(np.uint8),
            z["freqs_mhz"].astype(np.int64),
            z["tx_rc"].astype(np.int64),
        )


def crop_origins(height: int, width: int, size: int = CROP) -> list[tuple[int, int]]:
    """Deterministic crop corners: 2 rows × 3 columns of windows spanning the region."""
    if height < size or width < size:
        raise ValueError(f"region {height}x{width} is smaller than the {size}x{size} crop")
    rows = sorted({0, height - size})
    cols = sorted({0, (width - size) // 2, width - size})
    return [(r, c) for r in rows for c in cols]


def brat_scenes(
    index: int, bands_mhz: tuple[int, ...] | None = None, size: int = CROP, data_dir: str | Path | None = None
) -> list[Scene]:
    """The deterministic 256×256 evaluation crops of one BRAT region, for each band."""
    region = load_brat_region(index, data_dir)
    return region_crops(region, crop_origins(*region.buildings.shape, size=size), bands_mhz, size)


def region_crops(
    region: BratRegion, origins, bands_mhz: tuple[int, ...] | None = None, size: int = CROP, tag: str = ""
) -> list[Scene]:
    """Scenes ``brat{k}{tag}_{f}MHz_r{r}c{c}`` of a region at the given crop corners, band by band
    (every band if ``bands_mhz`` is None); the sites keep their position relative to each crop."""
    scenes = []
    for j, f in enumerate(region.freqs_mhz.tolist()):
        if bands_mhz is not None and f not in bands_mhz:
            continue
        for r, c in origins:
            scenes.append(
                Scene(
                    name=f"brat{region.index}{tag}_{f}MHz_r{r}c{c}",
                    rss_dbm=region.rss_dbm[j, r : r + size, c : c + size],
                    buildings=region.buildings[r : r + size, c : c + size],
                    freq_mhz=float(f),
                    tx_rc=region.tx_rc - np.array([r, c]),
                    source=BRAT_CREDIT,
                )
            )
    return scenes


def gray_to_dbm(gray_u8: np.ndarray) -> np.ndarray:
    """RadioMapSeer gray level → RSS in dBm (RadioUNet convention, 23 dBm transmit power)."""
    frac = np.asarray(gray_u8, dtype=np.float32) / 255.0
    return frac * (RMS_MAX_GAIN_DB - RMS_TRUNCATION_DB) + RMS_TRUNCATION_DB + RMS_TX_POWER_DBM


def radiomapseer_scenes(data_dir: str | Path | None = None) -> list[Scene]:
    """The 10 RadioMapSeer DPM maps of city map 0 (buildings = pixels dark in all 10 maps)."""
    root = Path(data_dir) if data_dir is not None else _env.data_dir()
    path = _require(root / "radiomapseer_like" / "radiomapseer_map0_dpm.npz", "RadioMapSeer maps")
    with np.load(path, allow_pickle=False) as z:
        buildings = z["buildings_common"].astype(np.uint8)
        return [
            Scene(
                name=f"rms_{name}",
                rss_dbm=gray_to_dbm(g),
                buildings=buildings,
                tx_rc=tx[None],
                source=RMS_CREDIT,
            )
            for name, g, tx in zip(z["names"].tolist(), z["gain_u8"], z["tx_rc"])
        ]


def urbanradio3d_scenes(data_dir: str | Path | None = None) -> list[Scene]:
    """The 39 trustworthy UrbanRadio3D frames. Their gray scale is undocumented: the RadioMapSeer
    mapping is applied as an approximation, so compare these in normalised units only."""
    root = Path(data_dir) if data_dir is not None else _env.data_dir()
    path = _require(root / "radiomapseer_like" / "urbanradio3d_frame0.npz", "UrbanRadio3D maps")
    with np.load(path, allow_pickle=False) as z:
        return [
            Scene(
                name=f"ur3d_{name}",
                rss_dbm=gray_to_dbm(g),
                buildings=b,
                tx_rc=tx[None],
                source=URBAN3D_CREDIT,
            )
            for name, g, b, tx in zip(z["names"].tolist(), z["gain_u8"], z["buildings"], z["tx_rc"])
            if name not in URBAN3D_SUSPECT
        ]


EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def example_scenes() -> list[Scene]:
    """The scenes bundled inside the package (see ``examples/README.md`` for provenance)."""
    scenes = []
    for path in sorted(EXAMPLES_DIR.glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            scenes.append(
                Scene(
                    name=path.stem,
                    rss_dbm=z["rss_dbm"],
                    buildings=z["buildings"],
                    freq_mhz=float(z["freq_mhz"]) if "freq_mhz" in z.files else None,
                    tx_rc=z["tx_rc"],
                    source=str(z["source"]),
                )
            )
    if not scenes:
        raise FileNotFoundError(f"no bundled example scenes in {EXAMPLES_DIR}; the install is incomplete")
    return scenes


# ---------------------------------------------------------------------------------------------
# User files
# ---------------------------------------------------------------------------------------------


def load_buildings_file(path: str | Path) -> np.ndarray:
    """Buildings from ``.npy`` (0/1 array) or an image (``.png``/...; non-zero = building)."""
    from .validate import check_buildings

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"buildings file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".png", ".bmp", ".tif", ".tiff", ".gif"):
            from PIL import Image

            with Image.open(path) as img:
                arr = (np.asarray(img.convert("L")) > 127).astype(np.uint8)
        else:
            raise ValueError(f"buildings file {path}: unsupported type {suffix!r} (use .npy or .png)")
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"could not read buildings file {path}: {exc}") from None
    return check_buildings(arr)


def load_samples_csv(path: str | Path) -> np.ndarray:
    """Samples from a CSV with columns ``row,col,rss_dbm`` (a header line is optional)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"samples file {path} does not exist")
    rows: list[list[float]] = []
    try:
        with open(path, newline="") as fh:
            for lineno, record in enumerate(csv.reader(fh), start=1):
                if not record or all(not cell.strip() for cell in record):
                    continue
                if lineno == 1 and not _is_number(record[0]):
                    names = [c.strip().lower() for c in record]
                    if names[:3] != ["row", "col", "rss_dbm"]:
                        raise ValueError(f"{path}: header must be row,col,rss_dbm, got {','.join(names)}")
                    continue
                if len(record) != 3:
                    raise ValueError(
                        f"{path}:{lineno}: expected 3 columns row,col,rss_dbm, got {len(record)}"
                    )
                try:
                    rows.append([float(c) for c in record])
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: not a number in {record}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text CSV file") from None
    if not rows:
        raise ValueError(f"{path} holds no samples")
    return np.asarray(rows, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
