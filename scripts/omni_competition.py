"""Should omni site sets compete with the sector ones by default? Measured on the explanation
dumps of ``scripts/dump_explanations.py``.

For every dumped (window, N) the omni explanations are computed once (``antenna="omni"``: no
sector pattern, the power free; the best 4 sets) and cached in ``CACHE``; then the shipped
weighting (sector sets + plain kriging + the learned map, held-out evidence, fallback share 0.5) is
compared with the same weighting over the pooled sector and omni sets, and with omni sets alone.
MSE gain over the best of IDW and kriging, per N:

    python scripts/omni_competition.py /tmp/expl_r1 /tmp/omni_r1          # the tuning region
    NS=50 python scripts/omni_competition.py /tmp/expl_r2 /tmp/omni_r2    # the check
    python scripts/omni_competition.py /tmp/expl_rms /tmp/omni_rms        # one omni transmitter

Environment: NS (the sample counts to use, default all dumped), CALIBRATION (a calibration JSON;
default the shipped one, as the dumps). Resumable: a cached file is reused.
"""

import os
import sys
from pathlib import Path

import numpy as np
import torch

from wifidiff_fast.physics.prior import load_calibration
from wifidiff_fast.pipeline.physics_map import PhysicsSettings, physics_explanations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from weigh_explanations import peer, rule  # noqa: E402

torch.set_num_threads(1)
MAX_SETS = 4
SHIPPED = rule(fallback_share=0.5, heldout=True)


def omni_explanations(dump: dict, params) -> dict:
    settings = PhysicsSettings(
        antenna="omni", heatmap="heatmap_sim", max_sets=MAX_SETS, kriging_fallback=False
    )
    ex = physics_explanations(dump["buildings"], dump["samples"], params, float(dump["freq_mhz"]), settings)
    return {"maps": np.stack(ex.maps).astype(np.float32), "evidence": ex.evidence}


def with_sets(dump: dict, maps, evidence, n_sets: int) -> dict:
    """The dump with its site sets replaced (the fallbacks kept, after them)."""
    first = int(dump["n_sets"])
    out = dict(dump)
    out["maps"] = np.concatenate([maps, dump["maps"][first:]])
    out["evidence"] = np.concatenate([evidence, dump["evidence"][first:]])
    out["n_sets"] = n_sets
    return out


def pooled(dump: dict, omni: dict) -> np.ndarray:
    """The shipped weighting over the best sector sets and the omni sets together."""
    n = min(int(dump["n_sets"]), MAX_SETS)
    merged = with_sets(
        dump,
        np.concatenate([dump["maps"][:n], omni["maps"]]),
        np.concatenate([dump["evidence"][:n], omni["evidence"]]),
        n + len(omni["evidence"]),
    )
    return rule(fallback_share=0.5, heldout=True, max_sets=len(merged["maps"]))(merged)


def main(folder: Path, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    calibration = os.environ.get("CALIBRATION")
    params = load_calibration(calibration) if calibration else load_calibration()
    ns = {int(x) for x in os.environ["NS"].split(",")} if os.environ.get("NS") else None
    rows: dict[int, dict[str, list[float]]] = {}
    for path in sorted(folder.glob("*.npz")):
        n = int(path.stem.rsplit("_n", 1)[1])
        if ns is not None and n not in ns:
            continue
        dump = dict(np.load(path))
        if not (cache / path.name).exists():
            np.savez(cache / path.name, **omni_explanations(dump, params))
        omni = dict(np.load(cache / path.name))
        mask, truth = dump["buildings"] == 0, dump["truth"].astype(np.float64)

        def err(pred, mask=mask, truth=truth):
            return float(np.mean((pred[mask] - truth[mask]) ** 2))

        cell = rows.setdefault(n, {k: [] for k in ("idw", "kriging", "shipped", "pooled", "omni")})
        cell["idw"].append(err(dump["idw"]))
        cell["kriging"].append(err(dump["kriging"]))
        cell["shipped"].append(err(SHIPPED(dump)))
        cell["pooled"].append(err(pooled(dump, omni)))
        cell["omni"].append(
            err(SHIPPED(with_sets(dump, omni["maps"], omni["evidence"], len(omni["evidence"]))))
        )
        print(path.stem, {k: round(v[-1], 1) for k, v in cell.items()}, flush=True)
    print(f"\n{folder}: MSE gain over the best of IDW and kriging")
    print(f"{'N':>4s} {'maps':>5s} {'shipped (sector)':>17s} {'sector + omni':>14s} {'omni only':>10s}")
    for n in sorted(rows):
        c = rows[n]
        gain = {k: peer(c) / np.mean(c[k]) for k in ("shipped", "pooled", "omni")}
        print(
            f"{n:4d} {len(c['idw']):5d} {gain['shipped']:16.2f}x {gain['pooled']:13.2f}x {gain['omni']:9.2f}x"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
