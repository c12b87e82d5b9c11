"""Compare ways of weighting the physics mode's explanations on files written by
``scripts/dump_explanations.py``: MSE gain over the best of IDW and kriging (mean MSE over maps,
per N, as in eval/crossregion.py), for the weighting before session 5 (in-sample evidence of the
learned map, no prior share), the shipped default (held-out evidence, fallback share 0.5) and
variants, with two bounds that no weighting can beat (the
best single explanation per map, and the best convex combination fitted to the truth).

    python scripts/weigh_explanations.py /tmp/expl_r1

Choose settings on region 1's files only; region 2's are the check.
"""

import functools
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import nnls

import wifidiff_fast
from wifidiff_fast.models.heatmap import OUT_CELLS, _to_cells, heatmap_inputs, load_heatmap
from wifidiff_fast.pipeline.evidence import evidence_weights
from wifidiff_fast.pipeline.physics_map import PhysicsSettings, _explanation_prior


def weighted(f, w):
    return np.tensordot(w, f["maps"], axes=1)


@functools.lru_cache(maxsize=1)
def _heat_net():
    return load_heatmap(Path(wifidiff_fast.__file__).parent / "checkpoints" / "heatmap_sim")


def heat_log_prob(f) -> np.ndarray:
    """Per site set: Σ over its sites of log p, p the simulator-only heat map's site probability
    (max over the 3×3 cells around the site), at least 1e-3."""
    with torch.no_grad():
        logits = _heat_net()(heatmap_inputs(f["buildings"], f["samples"], float(f["freq_mhz"]))[None])[0]
    prob = F.max_pool2d(torch.sigmoid(logits)[None, None], 3, 1, 1)[0, 0].numpy()
    out = []
    for sites in f["set_sites"]:
        sites = sites[np.isfinite(sites[:, 0])]
        cells = np.clip(
            np.floor(_to_cells(sites, f["buildings"].shape, OUT_CELLS)).astype(int), 0, OUT_CELLS - 1
        )
        out.append(float(np.log(np.maximum(prob[cells[:, 0], cells[:, 1]], 1e-3)).sum()))
    return np.array(out)


def rule(
    temperature=16.0, max_sets=4, fallback_share=None, learned=True, heldout=False, heat=0.0, site_penalty=0.0
):
    """The shipped weighting (physics_map.combine) with its knobs exposed; ``heldout``: the
    learned map's evidence from predictions that did not see each sample; ``heat``: β of a log
    prior β·(log p_m − mean over sets) from the heat map (site sets only); ``site_penalty``: c of
    an extra −c·log N per site on each set's evidence (the optimism of positions fitted to the
    samples, beyond BIC's)."""

    def fn(f):
        evidence = f["evidence"].copy()
        if site_penalty:
            n_sets = int(f["n_sets"])
            evidence[:n_sets] -= site_penalty * f["n_sites"][:n_sets] * np.log(len(f["samples"]))
        if heat:
            h = f["heat"][: int(f["n_sets"])]
            evidence[: len(h)] += temperature * heat * (h - h[:max_sets].mean())
        if heldout and bool(f["has_learned"]):
            evidence[-1] = float(f["learned_evidence_heldout"])
        n_sets = min(int(f["n_sets"]), max_sets)
        keep = list(range(n_sets)) + list(range(int(f["n_sets"]), len(f["maps"])))
        if not learned and bool(f["has_learned"]):
            keep = keep[:-1]
        cfg = PhysicsSettings(evidence_temperature=temperature, fallback_share=fallback_share)
        w = evidence_weights(
            evidence[keep], temperature, log_prior=_explanation_prior(cfg, n_sets, len(keep))
        )
        full = np.zeros(len(f["maps"]))
        full[keep] = w
        return weighted(f, full)

    return fn


def best_single(f, mask, truth):
    return min(np.mean((m[mask] - truth[mask]) ** 2) for m in f["maps"])


def best_convex(f, mask, truth):
    """Least squares over non-negative weights summing to 1 (the sum as a heavily weighted row)."""
    a = np.stack([m[mask] for m in f["maps"]], axis=1).astype(np.float64)
    big = 1e3
    w, _ = nnls(np.vstack([a, big * np.ones((1, a.shape[1]))]), np.concatenate([truth[mask], [big]]))
    return np.mean((a @ w - truth[mask]) ** 2)


BY_BAND = (
    "before (T=16, 4 sets, in-sample)",
    "learned evidence held out",
    "default: held out + fallback_share 0.5",
)


def peer(cell) -> float:
    """The best peer as the cross-region evaluation takes it: the lower of IDW's and kriging's
    mean MSE over the maps (eval/crossregion.py)."""
    return min(np.mean(cell["idw"]), np.mean(cell["kriging"]))


def main(folder: Path):
    variants = {
        "before (T=16, 4 sets, in-sample)": rule(),
        "T=4": rule(4.0),
        "T=8": rule(8.0),
        "T=32": rule(32.0),
        "best set + fallbacks (1 set)": rule(max_sets=1),
        "8 sets": rule(max_sets=8),
        "fallback_share 0.5": rule(fallback_share=0.5),
        "no learned map": rule(learned=False),
        "learned evidence held out": rule(heldout=True),
        "held out, T=32": rule(32.0, heldout=True),
        "default: held out + fallback_share 0.5": rule(fallback_share=0.5, heldout=True),
        "site penalty c=2": rule(site_penalty=2.0),
        "site penalty c=4": rule(site_penalty=4.0),
        "heat prior β=0.5": rule(heat=0.5),
        "heat prior β=1": rule(heat=1.0),
        "held out + heat β=1": rule(heldout=True, heat=1.0),
    }
    mse = defaultdict(lambda: defaultdict(list))
    by_band = defaultdict(lambda: defaultdict(list))  # (band, N) -> the three main rows
    for path in sorted(folder.glob("*.npz")):
        f = dict(np.load(path))
        f["heat"] = heat_log_prob(f)
        n = int(path.stem.rsplit("_n", 1)[1])
        band = int(f["freq_mhz"])
        mask = f["buildings"] == 0
        truth = f["truth"].astype(np.float64)

        def err(pred, mask=mask, truth=truth):
            return float(np.mean((pred[mask] - truth[mask]) ** 2))

        mse[n]["kriging"].append(err(f["kriging"]))
        mse[n]["idw"].append(err(f["idw"]))
        by_band[(band, n)]["kriging"].append(mse[n]["kriging"][-1])
        by_band[(band, n)]["idw"].append(mse[n]["idw"][-1])
        for name, fn in variants.items():
            if "held out" in name and not bool(f["has_learned"]):
                continue
            mse[n][name].append(err(fn(f)))
            if name in BY_BAND:
                by_band[(band, n)][name].append(mse[n][name][-1])
        mse[n]["bound: best single explanation"].append(best_single(f, mask, truth))
        mse[n]["bound: best convex weights"].append(best_convex(f, mask, truth))
    ns = sorted(mse)
    print(f"{folder}: MSE gain over the best peer (maps per N: {[len(mse[n]['idw']) for n in ns]})")
    print(f"{'weighting':36s}" + "".join(f"{'N=' + str(n):>9s}" for n in ns))
    for name in [*variants, "bound: best single explanation", "bound: best convex weights"]:
        if not mse[ns[0]][name]:
            continue
        print(f"{name:36s}" + "".join(f"{peer(mse[n]) / np.mean(mse[n][name]):8.2f}x" for n in ns))
    print("\nper band (MHz):")
    for band in sorted({b for b, _ in by_band}):
        for name in BY_BAND:
            if by_band[(band, ns[0])][name]:
                cells = [by_band[(band, n)] for n in ns]
                print(f"{band:5d} {name:40s}" + "".join(f"{peer(c) / np.mean(c[name]):8.2f}x" for c in cells))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
