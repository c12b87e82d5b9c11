"""The transmitter-aware path through the Estimator, end to end, and its checkpoint block."""

import dataclasses
import json

import numpy as np
import pytest

from wifidiff_fast.physics.prior import PRIOR_VERSION, load_calibration, prior_map

from pipecases import SHIPPED, estimator, layout, write_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(H=64, W=64):
    b = layout(H, W, seed=5, fill=0.15)
    truth = prior_map(
        b, np.array([[20.0, 40.0]], np.float32), 5750.0, load_calibration(), step_px=1.0
    ).numpy()
    rng = np.random.default_rng(0)
    open_ = np.argwhere(b == 0)
    pick = open_[rng.choice(len(open_), 30, replace=False)]
    s = np.column_stack([pick, truth[pick[:, 0], pick[:, 1]]]).astype(np.float64)
    return b, s, truth


def test_the_shipped_default_is_the_physics_path():
    est = estimator(SHIPPED, backend="auto")
    assert est.mode == "physics" and est.physics is not None


def test_physics_estimate_end_to_end(tiny_ckpt):
    b, s, truth = _scene()
    res = estimator(tiny_ckpt).estimate(b, s, mode="physics", seed=0)
    assert res.mode == "physics"
    assert res.rss_dbm.shape == b.shape and np.array_equal(np.isnan(res.rss_dbm), b == 1)
    r, c = s[:, 0].astype(int), s[:, 1].astype(int)
    np.testing.assert_allclose(res.rss_dbm[r, c], s[:, 2], atol=1e-3)  # measurements win
    assert res.transmitters.shape[1] == 5 and res.n_sites >= 1
    assert np.hypot(*(res.transmitters[0, :2] - [20.0, 40.0])) <= 3.0
    open_ = b == 0
    assert np.all(res.uncertainty_db[open_] >= 0) and np.isfinite(res.uncertainty_db[open_]).all()
    assert np.sqrt(np.mean((res.rss_dbm[open_] - truth[open_]) ** 2)) < 1.5  # noiseless, planted physics


def test_known_transmitters_skip_localisation(tiny_ckpt):
    b, s, _ = _scene()
    est = estimator(tiny_ckpt)
    res = est.estimate(b, s, mode="physics", transmitters=[[20.0, 40.0]])
    np.testing.assert_allclose(res.transmitters[0, :2], [20.0, 40.0])
    with pytest.raises(ValueError, match="outside the grid margin"):
        est.estimate(b, s, mode="physics", transmitters=[[20.0, 400.0]])
    with pytest.raises(ValueError, match="physics"):
        est.estimate(b, s, mode="diffusion", transmitters=[[20.0, 40.0]])
    with pytest.raises(ValueError, match="mode must be one of"):
        est.estimate(b, s, mode="magic")
    with pytest.raises(ValueError, match="freq_mhz"):
        est.estimate(b, s, mode="physics", freq_mhz=5.0)


def test_the_user_can_say_the_transmitters_are_omni(tiny_ckpt):
    """antenna="omni" reaches the physics path (the planted omni AP of unknown power is found);
    other values and the diffusion mode are refused."""
    b = layout(64, 64, seed=5, fill=0.15)
    omni = dataclasses.replace(load_calibration(), omni=True)
    truth = prior_map(b, np.array([[30.0, 18.0]], np.float32), 5750.0, omni, step_px=1.0).numpy() - 20.0
    open_ = np.argwhere(b == 0)
    pick = open_[np.random.default_rng(0).choice(len(open_), 30, replace=False)]
    s = np.column_stack([pick, truth[pick[:, 0], pick[:, 1]]]).astype(np.float64)
    est = estimator(tiny_ckpt)
    res = est.estimate(b, s, mode="physics", antenna="omni")
    assert np.hypot(*(res.transmitters[0, :2] - [30.0, 18.0])) <= 3.0
    assert abs(res.transmitters[0, 2] - (-20.0)) < 1.0  # its power, fitted freely
    with pytest.raises(ValueError, match="antenna must be one of sector, omni"):
        est.estimate(b, s, mode="physics", antenna="dipole")
    with pytest.raises(ValueError, match="antenna= is used by mode='physics' only"):
        est.estimate(b, s, mode="diffusion", antenna="omni")


def _rewrite(path, edit):
    cfg = json.loads((path / "config.json").read_text())
    edit(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def test_missing_or_stale_physics_block_is_refused(tmp_path):
    ckpt = write_tiny_checkpoint(tmp_path / "a")
    _rewrite(ckpt, lambda c: c.pop("physics"))
    est = estimator(ckpt)  # diffusion mode loads without it ...
    b, s, _ = _scene()
    with pytest.raises(ValueError, match="physics-calibration block"):
        est.estimate(b, s, mode="physics")  # ... but cannot run the physics path
    _rewrite(ckpt, lambda c: c["pipeline"].update(mode="physics"))
    with pytest.raises(ValueError, match="no physics-calibration block"):
        estimator(ckpt)
    stale = write_tiny_checkpoint(tmp_path / "b")
    _rewrite(stale, lambda c: c["physics"].update(version=PRIOR_VERSION + 1))
    with pytest.raises(ValueError, match="version"):
        estimator(stale)


def test_the_learned_maps_evidence_comes_from_held_out_folds(tiny_ckpt, monkeypatch):
    """The physics mode scores the boost map by single-pass maps of the sample folds (one batch),
    and ``learned_heldout_folds = 0`` scores it in-sample instead."""
    import wifidiff_fast.pipeline.estimator as estimator_module

    b, s, _ = _scene()
    est = estimator(tiny_ckpt)
    seen = {}
    real = estimator_module.physics_map

    def spy(*args, **kwargs):
        seen["heldout"] = kwargs["learned_heldout"]
        return real(*args, **kwargs)

    monkeypatch.setattr(estimator_module, "physics_map", spy)
    est.estimate(b, s, mode="physics")
    held = seen["heldout"]
    assert held is not None and held.shape == (len(s),) and np.isfinite(held).all()
    folds = est._single_pass_maps(b, [s[: len(s) // 2], s[len(s) // 2 :]])
    one_pass = est.estimate(b, s[: len(s) // 2], mode="diffusion", candidates=0, tta=False).R_hat_dbm
    open_ = b == 0
    np.testing.assert_allclose(folds[0][open_], one_pass[open_], atol=1e-4)  # same network, one pass
    assert not np.allclose(folds[0][open_], folds[1][open_])  # each fold sees its own samples

    from dataclasses import replace

    est.physics = replace(est.physics, settings=replace(est.physics.settings, learned_heldout_folds=0))
    est.estimate(b, s, mode="physics")
    assert seen["heldout"] is None


def test_heldout_folds_setting_is_checked():
    from wifidiff_fast.pipeline.physics_map import PhysicsSettings

    with pytest.raises(ValueError, match="learned_heldout_folds"):
        PhysicsSettings(learned_heldout_folds=1)
    assert PhysicsSettings.from_dict({"learned_heldout_folds": 0}).learned_heldout_folds == 0


def test_physics_requests_build_their_networks_before_the_clock(tiny_ckpt, monkeypatch):
    """Both boost batches the physics mode runs (the map, and the held-out folds in one batch) are
    prepared before its timer starts, so a first build never lands in ``timings_ms["boost"]``."""
    b, s, _ = _scene()
    est = estimator(tiny_ckpt)
    events = []
    real_prepare, real_learned = est.prepare, est.learned_explanation

    def prepare(shape, maps=1, candidates=None, tta=None):
        events.append(("prepare", int(maps), candidates, tta))
        return real_prepare(shape, maps, candidates, tta)

    def learned(*args, **kwargs):
        events.append(("learned",))
        return real_learned(*args, **kwargs)

    monkeypatch.setattr(est, "prepare", prepare)
    monkeypatch.setattr(est, "learned_explanation", learned)
    est.estimate(b, s, mode="physics")
    first_learned = events.index(("learned",))
    before = events[:first_learned]
    folds = est.physics.settings.learned_heldout_folds
    assert ("prepare", 1, 0, None) in before
    assert ("prepare", folds, 0, False) in before
