"""Save every explanation the physics mode weighs (site sets, plain kriging, the learned map) for
site-holding BRAT windows, so that ways of weighting them can be compared offline
(``scripts/weigh_explanations.py``) without localising again.

    REGION=1 python scripts/dump_explanations.py /tmp/expl_r1
    REGION=2 LEARNED=small python scripts/dump_explanations.py /tmp/expl_r2

Environment: REGION (1, 2, or "rms": the 10 RadioMapSeer maps of the evaluation, at the
estimator's default carrier 5750 MHz), WINDOWS (8 per band), BANDS ("all" or e.g. "5750"; default all),
NS ("10,25,50"), MAX_SETS (8: the most the weighting can then use), LEARNED (a checkpoint whose
boost map joins the explanations, with held-out fold predictions for its evidence; refused on a region its networks trained on), HEATMAP (the
shipped "heatmap_sim", trained on the simulator only; empty for none), LOCALISE (JSON overrides of
LocaliseParams, e.g. '{"bic_per_site": 6}'), SEED (0), SHARD ("i/k": every k-th window from the i-th, to run k processes).
Windows and sample draws are those of ``python -m wifidiff_fast.eval.crossregion`` with the same
seed. Resumable: a (window, N) whose file exists is skipped. One ``.npz`` per (window, N).
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wifidiff_fast.data.protocol import draw_samples, map_seed
from wifidiff_fast.eval.baselines import idw, kriging
from wifidiff_fast.eval.crossregion import _sites_in_margin
from wifidiff_fast.eval.datasets import get_dataset
from wifidiff_fast.eval.windows import site_windows
from wifidiff_fast.physics.prior import load_calibration
from wifidiff_fast.pipeline.evidence import kriging_evidence
from wifidiff_fast.pipeline.localise import LocaliseParams
from wifidiff_fast.pipeline.physics_map import PhysicsSettings, physics_explanations

torch.set_num_threads(1)
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
region_env = os.environ.get("REGION", "1")
region = None if region_env == "rms" else int(region_env)
bands_env = os.environ.get("BANDS", "all")
bands = None if bands_env == "all" else tuple(int(b) for b in bands_env.split(","))
ns = [int(x) for x in os.environ.get("NS", "10,25,50").split(",")]
seed = int(os.environ.get("SEED", 0))
settings = PhysicsSettings(
    localise=LocaliseParams(**json.loads(os.environ.get("LOCALISE", "{}"))),
    max_sets=int(os.environ.get("MAX_SETS", 8)),
    heatmap=os.environ.get("HEATMAP", "heatmap_sim") or None,
)
params = load_calibration()
est = None
if os.environ.get("LEARNED"):
    from wifidiff_fast.pipeline.estimator import RadioMapEstimator

    est = RadioMapEstimator.from_pretrained(os.environ["LEARNED"])
    trained_on = est.config.get("training", {}).get("brat_regions", [1])
    if region in trained_on:
        raise SystemExit(f"LEARNED={os.environ['LEARNED']} trained on region(s) {trained_on}: not {region}")
if region is None:  # sample draws as the evaluation's (eval/runner.py): map_seed(seed, i, N)
    scenes = get_dataset("radiomapseer")
else:
    scenes = site_windows(region, n=int(os.environ.get("WINDOWS", 8)), bands_mhz=bands, seed=seed)
shard, shards = (int(x) for x in os.environ.get("SHARD", "0/1").split("/"))
for i, sc in enumerate(scenes):
    if i % shards != shard:
        continue
    for n in ns:
        path = out / f"{sc.name}_n{n}.npz"
        if path.exists():
            continue
        t0 = time.perf_counter()
        s = draw_samples(sc.rss_dbm, sc.buildings, n, map_seed(seed, i, n))
        learned = heldout = None
        if est is not None:  # what the estimator's physics mode weighs (held-out folds included)
            learned, heldout = est.learned_explanation(sc.buildings, s, seed)
        freq = sc.freq_mhz or 5750.0
        ex = physics_explanations(sc.buildings, s, params, freq, settings, seed, learned_dbm=learned)
        sets = ex.localisation.sets[: ex.n_sets]
        np.savez_compressed(
            path,
            maps=np.stack(ex.maps).astype(np.float32),
            variances=np.stack(ex.variances).astype(np.float32),
            evidence=ex.evidence,
            n_sets=ex.n_sets,
            n_sites=np.array([len(st.sites) for st in sets]),
            has_learned=learned is not None,
            learned_heldout=np.zeros(0) if heldout is None else heldout,
            learned_evidence_heldout=np.nan
            if heldout is None
            else kriging_evidence(s[:, 2].astype(np.float64) - heldout, s[:, :2].astype(np.float64)),
            truth=sc.rss_dbm.astype(np.float32),
            buildings=sc.buildings.astype(np.uint8),
            samples=s.astype(np.float32),
            kriging=kriging(sc.buildings, s).astype(np.float32),
            idw=idw(sc.buildings, s).astype(np.float32),
            true_sites=np.zeros((0, 2)) if region is None else _sites_in_margin(sc, settings.localise.margin),
            set_sites=np.array(
                [[h.rc() for h in st.sites] + [(np.nan, np.nan)] * (8 - len(st.sites)) for st in sets]
            ),
            freq_mhz=freq,
        )
        print(f"{sc.name} N={n}: {len(ex.maps)} explanations ({time.perf_counter() - t0:.1f} s)", flush=True)
