"""Training: batch sources, sample conditions, a resumable 2-step run, the correction stage, export."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch

from wifidiff_fast import _env
from wifidiff_fast.data.symmetry import dihedral
from wifidiff_fast.models.checkpoint import load_checkpoint
from wifidiff_fast.pipeline.estimator import RadioMapEstimator
from wifidiff_fast.pipeline.params import PipelineConfig
from wifidiff_fast.train.__main__ import _progress_bar, main as train_main
from wifidiff_fast.train.data import N_RANGE, BatchSource, draw_conditions
from wifidiff_fast.train.loop import TrainConfig, Trainer, parse_mix, training_data

pytestmark = pytest.mark.usefixtures("one_thread")


def _data_dir():
    data = _env.data_dir()
    if not (data / "brat").is_dir():
        pytest.skip(f"BRAT data not found under {data} (set WIFIDIFF_DATA_DIR)")
    return str(data)


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------- data
def test_draw_conditions_n_in_range_and_never_on_buildings():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(16, 40, 40, generator=g) * 2 - 1
    B = (torch.rand(16, 40, 40, generator=g) < 0.4).float()
    S, M, n = draw_conditions(x0, B, torch.Generator().manual_seed(1))
    assert S.shape == M.shape == x0.shape and n.shape == (16,)
    assert ((n >= N_RANGE[0]) & (n <= N_RANGE[1])).all()
    assert (M[B > 0] == 0).all()
    assert set(M.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(M.sum((1, 2)).long(), n)  # 960 open pixels per map > 300: exactly n samples
    assert torch.equal(S, x0 * M)
    assert len(set(n.tolist())) > 1  # N varies per map
    _S2, M2, n2 = draw_conditions(x0, B, torch.Generator().manual_seed(1))
    assert torch.equal(M, M2) and torch.equal(n, n2)  # seeded


def test_draw_conditions_with_fewer_open_pixels_than_n():
    x0 = torch.zeros(2, 32, 32)
    B = torch.ones(2, 32, 32)
    B[:, 3, :3] = 0  # three open pixels
    _S, M, n = draw_conditions(x0, B, torch.Generator().manual_seed(0), n_range=(10, 20))
    assert ((n >= 10) & (n <= 20)).all()
    assert torch.equal(M.sum((1, 2)), torch.full((2,), 3.0)) and (M[B > 0] == 0).all()


def test_dihedral_gives_the_eight_symmetries():
    x = torch.arange(12.0).reshape(3, 4)
    x = torch.stack([x, x])  # batched: acts on the last two dims
    outs = [dihedral(x, k) for k in range(8)]
    assert torch.equal(outs[0], x)
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    for o in outs:
        assert torch.equal(o.flatten().sort().values, x.flatten().sort().values)


def test_parse_mix():
    assert parse_mix("brat:0.5,sim:0.5") == {"brat": 0.5, "sim": 0.5}
    assert parse_mix("sim") == {"sim": 1.0}
    assert parse_mix(" brat:2 , raytrace:1") == {"brat": 2.0, "raytrace": 1.0}


def test_training_record_names_the_data_it_read():
    """A simulator-only run must not claim BRAT region 1: cross-region checks trust brat_regions."""
    assert training_data("sim:1") == {"data": "wifidiff_fast simulator", "brat_regions": []}
    assert training_data("brat:0,sim:1")["brat_regions"] == []
    mixed = training_data("brat:0.5,sim:0.3,raytrace:0.2")
    assert mixed["brat_regions"] == [1]
    assert mixed["data"].startswith("BRAT region 1") and mixed["data"].endswith("Sionna RT corpus")


def test_batch_source_refuses_unknown_or_no_sources():
    with pytest.raises(ValueError, match="unknown training source.*'brta'"):
        BatchSource(mix={"brta": 1.0})
    with pytest.raises(ValueError, match="no training source is available"):
        BatchSource(mix={"raytrace": 1.0}, raytrace_dir=None)


def test_batch_source_brat():
    data = _data_dir()
    src = BatchSource(size=64, mix={"brat": 1.0}, seed=3, data_dir=data)
    batch = src.next(3)
    x0, B, S, M, n = batch["x0"], batch["B"], batch["S"], batch["M"], batch["n"]
    assert x0.shape == B.shape == S.shape == M.shape == (3, 64, 64)
    assert x0.min() >= -1 and x0.max() <= 1
    assert (x0[B > 0] == -1).all()  # buildings filled with −1
    assert (M[B > 0] == 0).all() and torch.equal(S, x0 * M)
    assert ((n >= N_RANGE[0]) & (n <= N_RANGE[1])).all()
    assert torch.equal(M.sum((1, 2)).long(), torch.minimum(n, (B == 0).sum((1, 2))))
    assert x0[B == 0].std() > 0.01  # a real map, not a constant
    again = BatchSource(size=64, mix={"brat": 1.0}, seed=3, data_dir=data).next(3)
    assert all(torch.equal(batch[k], again[k]) for k in batch)  # seeded


def test_batch_source_crops_at_the_full_maps_sample_density():
    src = BatchSource(size=64, mix={"sim": 1.0}, seed=4, crop=32)
    batch = src.next(6)
    assert all(batch[k].shape == (6, 32, 32) for k in ("x0", "B", "S", "M"))
    assert (batch["x0"][batch["B"] > 0] == -1).all() and (batch["M"][batch["B"] > 0] == 0).all()
    lo, hi = max(1, round(N_RANGE[0] / 4)), round(N_RANGE[1] / 4)  # a quarter of the area
    assert ((batch["n"] >= lo) & (batch["n"] <= hi)).all()
    full = BatchSource(size=64, mix={"sim": 1.0}, seed=4).next(6)
    assert full["x0"].shape == (6, 64, 64)
    with pytest.raises(ValueError, match="crop"):
        BatchSource(size=64, mix={"sim": 1.0}, crop=128)


# ---------------------------------------------------------------------------- training
def _cfg(run, **kw):
    base = dict(
        preset="tiny",
        run_dir=str(run),
        device="cpu",
        batch=1,
        max_steps=2,
        minutes=10.0,
        save_every=1000,
        val_every=1,
        mix="brat:1",
        data_dir=_data_dir(),
        raytrace_dir=None,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_two_step_run_resumes_and_exports(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(_cfg(run))
    before = {k: v.clone() for k, v in trainer.nets.boost.state_dict().items()}
    trainer.train_joint()
    assert trainer.step == 2 and (run / "state.pt").is_file()
    rows = _rows(run / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(float(r["loss_boost"])) and math.isfinite(float(r["loss_den"]))
        assert float(r["val_rmse_db_boost"]) > 0  # validated on BRAT region 2 every step here
    after = trainer.nets.boost.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved

    resumed = Trainer(_cfg(run, max_steps=3))
    assert resumed.step == 2  # picked up from state.pt
    for k, v in trainer.nets.denoiser.state_dict().items():
        assert torch.equal(resumed.nets.denoiser.state_dict()[k], v)
    for k, v in trainer.ema.boost.state_dict().items():
        assert torch.equal(resumed.ema.boost.state_dict()[k], v)
    assert resumed.opt_boost.state_dict()["state"]  # optimiser moments restored too
    resumed.train_joint()
    assert resumed.step == 3
    assert [int(r["step"]) for r in _rows(run / "log.csv")] == [1, 2, 3]

    out = resumed.export(tmp_path / "ckpt", "tiny-run")
    nets, config = load_checkpoint(out)  # sha256 verified
    assert config["name"] == "tiny-run" and config["preset"] == "tiny"
    assert config["training"]["steps"] == 3 and config["training"]["correction_trained"] is False
    assert "loss_boost" in config["training"]["final_losses"]
    for k, v in resumed.ema.boost.state_dict().items():  # the EMA networks, in fp16
        assert torch.equal(nets.boost.state_dict()[k], v.half().float() if v.is_floating_point() else v)
    est = RadioMapEstimator.from_pretrained(out, backend="reference")
    b = torch.zeros(32, 32, dtype=torch.uint8)
    b[10:14, 10:20] = 1
    res = est.estimate(b.numpy(), [[1, 1, -60.0], [30, 25, -80.0]], candidates=1, steps=1)
    assert res.rss_dbm.shape == (32, 32) and res.rss_dbm[1, 1] == -60.0


def test_boost_stage_fine_tunes_the_attunet_alone_and_exports_the_best(tmp_path):
    """Stage "boost" from an exported checkpoint: the denoiser stays bit-identical, best.pt holds
    the best validation's EMA, and the export keeps the initial checkpoint's inference settings."""
    init = Trainer(_cfg(tmp_path / "init")).export(tmp_path / "init_ckpt", "init")
    config_path = init / "config.json"
    config = json.loads(config_path.read_text())
    config["pipeline"] = {"boost_candidate": False, "known_sample_write": True}
    config["boost"]["tta"] = True
    config_path.write_text(json.dumps(config))  # the sha256 covers the weights file only

    run = tmp_path / "ft"
    trainer = Trainer(_cfg(run, max_steps=3, init_from=str(init), train_denoiser=False))
    den_before = {k: v.clone() for k, v in trainer.ema.denoiser.state_dict().items()}
    boost_before = {k: v.clone() for k, v in trainer.nets.boost.state_dict().items()}
    trainer.train_joint()
    rows = _rows(run / "log.csv")
    assert all(r["loss_den"] == "" for r in rows) and all(float(r["loss_boost"]) > 0 for r in rows)
    for k, v in trainer.ema.denoiser.state_dict().items():
        assert torch.equal(v, den_before[k])
    assert any(not torch.equal(boost_before[k], v) for k, v in trainer.nets.boost.state_dict().items())
    best = torch.load(run / "best.pt", weights_only=False)
    vals = [float(r["val_nmse_boost"]) for r in rows]
    assert best["best_val"]["nmse"] == min(vals) == trainer.best_val["nmse"]

    out = trainer.export(tmp_path / "ft_ckpt", "ft", select="best")
    nets, exported = load_checkpoint(out)
    assert {k: exported["pipeline"][k] for k in config["pipeline"]} == config["pipeline"]
    assert exported["boost"]["tta"] is True
    assert PipelineConfig.from_dict(exported) == PipelineConfig.from_dict(config)
    assert exported["training"]["exported"] == "best"
    assert exported["training"]["best_validation"]["step"] == best["best_val"]["step"]
    assert exported["training"]["stage"] == "boost"
    assert (
        exported["training"]["steps"] == best["best_val"]["step"] and exported["training"]["run_steps"] == 3
    )
    assert exported["training"]["initial_training"]["steps"] == 0  # the record it started from
    for k, v in best["ema"]["boost"].items():
        assert torch.equal(nets.boost.state_dict()[k], v.half().float() if v.is_floating_point() else v)
    with pytest.raises(ValueError, match="select"):
        trainer.export(tmp_path / "x", "x", select="worst")
    with pytest.raises(FileNotFoundError, match="best.pt"):
        Trainer(_cfg(tmp_path / "fresh")).export(tmp_path / "y", "y", select="best")


def test_a_fine_tune_of_a_physics_checkpoint_keeps_its_calibration(tmp_path):
    """The shipped checkpoint's default is the physics mode: its fine-tune must still run it."""
    from wifidiff_fast.physics.calibrate import write_into_checkpoint
    from wifidiff_fast.physics.prior import load_calibration

    init = Trainer(_cfg(tmp_path / "init")).export(tmp_path / "init_ckpt", "init")
    params = load_calibration().to_dict()
    write_into_checkpoint(
        init, {"params": params, "fitted_on": "test", "check_scores": {}, "date": "2026-12-03"}
    )
    trainer = Trainer(_cfg(tmp_path / "ft", max_steps=1, init_from=str(init), train_denoiser=False))
    trainer.train_joint()
    _, exported = load_checkpoint(trainer.export(tmp_path / "ft_ckpt", "ft"))
    assert exported["pipeline"]["mode"] == "physics"
    assert exported["physics"]["params"] == params
    assert RadioMapEstimator.from_pretrained(tmp_path / "ft_ckpt").physics is not None


def test_training_on_crops_records_the_crop(tmp_path):
    trainer = Trainer(_cfg(tmp_path / "crop", max_steps=1, crop=64, val_every=1000))
    trainer.train_joint()
    _, exported = load_checkpoint(trainer.export(tmp_path / "crop_ckpt", "crop"))
    assert exported["training"]["crop"] == 64 and exported["training"]["steps"] == 1


def test_correction_stage(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(_cfg(run, corr_maps=1, corr_candidates=2, corr_steps=2, corr_epochs=2))
    trainer.train_correction()
    rows = _rows(run / "correction_log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    for k, v in trainer.nets.correction.state_dict().items():  # copied into the exported EMA
        assert torch.equal(trainer.ema.correction.state_dict()[k], v)
    assert Trainer(_cfg(run)).corr_done  # persisted in state.pt


def test_cli_exports_without_training_and_reports_bad_mix(tmp_path, capsys):
    out = tmp_path / "ckpt"
    rc = train_main(
        ["--preset", "tiny", "--run", str(tmp_path / "run"), "--stage", "none", "--export", str(out)]
    )
    assert rc == 0 and "exported checkpoint" in capsys.readouterr().out
    _, config = load_checkpoint(out)
    assert config["name"] == "ckpt" and config["training"]["steps"] == 0
    rc = train_main(
        ["--preset", "tiny", "--run", str(tmp_path / "run2"), "--mix", "bogus:1", "--minutes", "0.01"]
    )
    assert rc == 2 and "unknown training source" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal_or_when_forced_and_never_when_quiet(monkeypatch):
    err = io.StringIO()  # not a terminal (nohup, a scheduler's log file)
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.delenv("WIFIDIFF_PROGRESS", raising=False)
    assert _progress_bar(quiet=False) is None and _progress_bar(quiet=True) is None
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "1")
    assert _progress_bar(quiet=True) is None  # --quiet beats the environment
    update = _progress_bar(quiet=False)
    update(20, {"boost": 0.5})
    assert "training" in err.getvalue()
