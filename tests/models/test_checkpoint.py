"""Checkpoint directories: round trip, sha256 verification, refused configs, packaged names."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from wifidiff_fast.models.checkpoint import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    CheckpointError,
    build_networks,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from wifidiff_fast.models.features import (
    BOOST_CHANNELS,
    CORRECTION_CHANNELS,
    DENOISER_CHANNELS,
)
from wifidiff_fast.models.presets import preset
from wifidiff_fast.pipeline.estimator import CHECKPOINTS_DIR, RadioMapEstimator

pytestmark = pytest.mark.usefixtures("one_thread")


BASE_CONFIG = {
    "name": "tiny-test",
    "preset": "tiny",
    "normalisation": {"p_min_dbm": -130.0, "p_max_dbm": -10.0},
    "scheduler": {
        "num_train_timesteps": 1000,
        "beta_start": 1e-4,
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "timestep_spacing": "leading",
        "prediction_type": "sample",
        "clip_sample": True,
        "clip_sample_range": 1.0,
    },
}


def _nets(seed=0):
    torch.manual_seed(seed)
    nets = build_networks(preset("tiny"))
    with torch.no_grad():  # non-trivial correction head, so its weights matter too
        torch.nn.init.normal_(nets.correction.out.weight, std=0.5)
    return nets


def _outputs(nets):
    g = torch.Generator().manual_seed(3)
    xb = torch.randn(2, BOOST_CHANNELS, 37, 53, generator=g)
    xd = torch.randn(2, DENOISER_CHANNELS, 37, 53, generator=g)
    xc = torch.randn(2, CORRECTION_CHANNELS, 37, 53, generator=g)
    with torch.no_grad():
        return (
            nets.boost.eval()(xb),
            nets.denoiser.eval()(xd, torch.tensor([3, 700])),
            nets.correction.eval()(xc),
        )


@pytest.fixture
def ckpt(tmp_path):
    nets = _nets()
    return save_checkpoint(tmp_path / "ckpt", nets, BASE_CONFIG), nets


def test_fp32_roundtrip_is_exact(tmp_path):
    nets = _nets()
    save_checkpoint(tmp_path, nets, BASE_CONFIG, dtype=torch.float32)
    loaded, config = load_checkpoint(tmp_path)
    for a, b in zip(_outputs(nets), _outputs(loaded)):
        assert torch.equal(a, b)
    assert config["weights"]["dtype"] == "float32"


def test_fp16_roundtrip_keeps_the_fp16_weights_exactly_and_outputs_closely(ckpt, tmp_path):
    path, nets = ckpt
    loaded, config = load_checkpoint(path)
    assert config["format_version"] == FORMAT_VERSION and config["weights"]["dtype"] == "float16"
    assert config["name"] == "tiny-test" and config["networks"]["denoiser"]["time_conditioned"] is True
    for name, module in nets.modules().items():
        for key, value in module.state_dict().items():
            got = loaded.modules()[name].state_dict()[key]
            assert got.dtype == value.dtype  # loaded back as fp32 (ints stay ints)
            expect = value.half().float() if value.is_floating_point() else value
            assert torch.equal(got, expect), f"{name}.{key}"
    for a, b in zip(_outputs(nets), _outputs(loaded)):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)
    # loaded → saved → loaded again is exact (fp16 values survive fp16 storage)
    save_checkpoint(tmp_path / "again", loaded, config)
    again, _ = load_checkpoint(tmp_path / "again")
    for a, b in zip(_outputs(loaded), _outputs(again)):
        assert torch.equal(a, b)
    assert all(not m.training for m in loaded.modules().values())


def test_corrupted_weights_are_refused_naming_the_sha256(ckpt):
    path, _ = ckpt
    weights = path / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError, match=r"does not match the sha256.*corrupted or from another checkpoint"
    ):
        load_checkpoint(path)


def test_weights_swapped_from_another_checkpoint_are_refused(ckpt, tmp_path):
    path, _ = ckpt
    other = save_checkpoint(tmp_path / "other", _nets(seed=1), BASE_CONFIG)
    shutil.copy(other / WEIGHTS_FILE, path / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_missing_weights_file(ckpt):
    path, _ = ckpt
    (path / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match="weights file .* is missing"):
        load_checkpoint(path)


def _edit_config(path, fn):
    cfg = json.loads((path / CONFIG_FILE).read_text())
    fn(cfg)
    (path / CONFIG_FILE).write_text(json.dumps(cfg))


def test_missing_config(tmp_path):
    (tmp_path / WEIGHTS_FILE).write_bytes(b"x")
    with pytest.raises(CheckpointError, match="not a checkpoint: config.json is missing"):
        load_checkpoint(tmp_path)


def test_invalid_json(ckpt):
    path, _ = ckpt
    (path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_config(path)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_wrong_format_version(ckpt, version):
    path, _ = ckpt
    _edit_config(path, lambda c: c.__setitem__("format_version", version))
    with pytest.raises(CheckpointError, match=f"format_version {version!r}.*reads version {FORMAT_VERSION}"):
        load_checkpoint(path)


def test_wrong_format(ckpt):
    path, _ = ckpt
    _edit_config(path, lambda c: c.__setitem__("format", "someone.else"))
    with pytest.raises(CheckpointError, match="is not a wifidiff_fast.checkpoint config"):
        load_checkpoint(path)


@pytest.mark.parametrize("section", ["networks", "weights", "normalisation", "scheduler"])
def test_missing_section(ckpt, section):
    path, _ = ckpt
    _edit_config(path, lambda c: c.pop(section))
    with pytest.raises(CheckpointError, match=f"lacks the '{section}' section"):
        load_checkpoint(path)


def test_architecture_that_does_not_fit_the_weights(ckpt):
    path, _ = ckpt
    _edit_config(path, lambda c: c["networks"]["boost"].__setitem__("base_channels", 16))
    with pytest.raises(CheckpointError, match="weights of 'boost' do not fit its architecture"):
        load_checkpoint(path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_from_pretrained_unknown_name_lists_the_packaged_ones():
    with pytest.raises(CheckpointError, match=r"no checkpoint 'no-such-model'.*packaged: .*small"):
        RadioMapEstimator.from_pretrained("no-such-model")


def test_from_pretrained_takes_a_directory(ckpt):
    path, _ = ckpt
    est = RadioMapEstimator.from_pretrained(str(path), backend="reference")
    assert est.model_id == read_config(path)["weights"]["sha256"]


def test_shipped_small_checkpoint_verifies_and_loads():
    nets, config = load_checkpoint(CHECKPOINTS_DIR / "small")
    assert config["preset"] == "small" and config["scheduler"]["prediction_type"] in ("sample", "epsilon")
    for name in ("boost", "denoiser", "correction"):
        assert nets.modules()[name].cfg.to_dict() == config["networks"][name]
        assert all(torch.isfinite(p).all() for p in nets.modules()[name].parameters())
