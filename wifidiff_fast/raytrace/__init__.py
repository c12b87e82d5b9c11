"""Ray-traced training maps with Sionna RT (optional extra ``raytrace``).

Building rasters are extruded into boxes (one watertight mesh on the pixel grid, a height per
building, concrete walls over a ground plane), transmitter sites stand outside buildings on masts,
and ``RadioMapSolver`` (LOS, specular reflection, refraction through walls, first-order wedge
diffraction; depth 3, 10⁷ rays) computes the path gain on a ``size × size`` grid of ``pixel_m``
cells at receiver height. RSS in dBm is ``tx power + path gain`` summed over every sector and site;
a light normalised smoothing (σ = 1 px, over non-building cells, in linear power) removes
Monte-Carlo speckle far from the sites; cells that no path reaches are clipped to a floor
(``units.P_MIN_DBM`` = −130 dBm) and building pixels are NaN.

BRAT mimicry (see ``shared/data/brat/README.md``): each site carries 3 sectors (azimuths
θ₀ + 0/120/240°, 10° mechanical downtilt, 3GPP TR 38.901 element, 65° beamwidth, 8 dBi) at
46 dBm each, on 1–3 sites per map, in the 5 BRAT bands. The three sectors are traced as one
transmitter whose pattern is their power sum (exact for incoherent sectors, 3× the rays per
sector). θ₀ is random per site (BRAT's azimuth convention is unknown), and the TR 38.901 element
stands in for BRAT's Kathrein 720842A2, which Sionna does not have.

Building sources:

* ``procedural``: ``wifidiff_fast.data.layouts.random_layouts`` (the simulator's city layouts);
* ``brat``: random crops (with random rot90/flip) of BRAT **region 1** building footprints only —
  region 2 is the validation region and never feeds training data;
* ``mixed``: each map picks one of the two at random.

The scene covers the map plus a ``margin`` of context on every side, so sites may also stand just
outside the map (``tx_rc`` then lies outside ``[0, size)``) and buildings beyond the edge still
shadow it.

Corpus (``--out``): one ``rt_{seed}_{index:05d}.npz`` per map with ``rss_dbm`` float32 [H,W] (NaN on
buildings), ``buildings`` uint8 [H,W], ``tx_rc`` float32 [n_sites,2], ``freq_mhz`` float32,
``source`` str (``procedural`` | ``brat1``), plus ``tx_z_m`` float32 [n_sites] (mast-top heights) and a
``manifest.json`` (config, count done, timings). Every map is a pure, bit-reproducible function of
``(seed, index, config)``, so a rerun skips the files that exist and resumes where the last run
stopped, and the files do not depend on the number of worker processes.

Reproducibility: Dr.Jit runs single-threaded here (throughput comes from worker processes). With
several threads, Sionna's diffraction-wedge hash table is filled in a racy order and the same map
differed run to run by tens of dB in shadows. The table is also enlarged (``wedge_table``): the
default 10 000 slots silently drop most of the tens of thousands of edges of a 320² city mesh.

Setup: ``bash scripts/setup_raytrace.sh`` (installs Debian's ``libllvm19`` and ``sionna-rt``).
Dr.Jit crashes with the LLVM 15 of Debian 12, so unless ``DRJIT_LIBLLVM_PATH`` is already set this
package (``backend.py``) points it at Debian's libLLVM 19 before importing Sionna.

CLI::

    python -m wifidiff_fast.raytrace --out corpus/raytrace --n 200 --size 256 --seed 0 \\
        [--source procedural|brat|mixed] [--rays 1e7] [--batch 8] [--workers 2]

Modules: ``config`` (RTConfig, bands, sources), ``scene`` (buildings, heights, mesh, sites),
``backend`` (the lazy Sionna import), ``trace`` (one map through ``RadioMapSolver``), ``corpus``
(files, manifest, worker processes), ``__main__`` (the CLI). Outside the runtime data path: the
estimator never imports this package.
"""

from .backend import import_sionna, llvm19_path, sionna_available
from .config import BRAT_BANDS_MHZ, BRAT_TRAIN_REGION, SOURCES, RTConfig
from .corpus import generate, make_map, map_path
from .scene import building_heights, extrude_mesh, pixel_to_xy, sample_buildings, sample_sites
from .trace import smooth_power, trace_map

__all__ = [
    "import_sionna",
    "llvm19_path",
    "sionna_available",
    "BRAT_BANDS_MHZ",
    "BRAT_TRAIN_REGION",
    "SOURCES",
    "RTConfig",
    "generate",
    "make_map",
    "map_path",
    "building_heights",
    "extrude_mesh",
    "pixel_to_xy",
    "sample_buildings",
    "sample_sites",
    "smooth_power",
    "trace_map",
]
