"""The learned site heat map: inputs, targets and decoding agree on where a site is; the network
and its trainer run, and the trainer resumes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from wifidiff_fast import _env
from wifidiff_fast.models.heatmap import (
    IN_CELLS,
    OUT_CELLS,
    SiteHeatmapNet,
    cell_size,
    decode_sites,
    heatmap_inputs,
    site_targets,
)
from wifidiff_fast.train.heatmap import _dihedral, _dihedral_rc, focal_loss

pytestmark = pytest.mark.usefixtures("one_thread")
needs_region1 = pytest.mark.skipif(
    not (_env.data_dir() / "brat" / "region1.npz").exists(),
    reason=f"BRAT region 1 not found under {_env.data_dir()} (set WIFIDIFF_DATA_DIR)",
)


def test_inputs_place_samples_and_the_window_where_they_belong():
    b = np.zeros((256, 256), np.uint8)
    b[:64, :64] = 1
    s = np.array([[128.0, 128.0, -40.0], [10.0, 250.0, -80.0]])
    x = heatmap_inputs(b, s, 5750.0)
    assert x.shape == (6, IN_CELLS, IN_CELLS)
    ch, _ = cell_size((256, 256), IN_CELLS)
    assert ch == 4.0
    # the window occupies the middle half of the extended area; its top-left quarter is built
    assert x[1, 32:96, 32:96].min() == 1 and x[1, :32].max() == 0
    assert x[0, 32:48, 32:48].min() == pytest.approx(1.0) and x[0, 60:90, 60:90].max() == 0
    # samples: the loudest at its cell with value 0 against the max, the other 40 dB quieter
    assert x[2, 64, 64] == 1 and x[3, 64, 64] == 0 and x[3, 34, 94] == pytest.approx(-2.0)
    assert x[2].sum() == 2
    assert x[5, 64, 64] == pytest.approx(1.0) and x[5, 0, 0] == 0


@pytest.mark.parametrize("site", [(100.0, 37.0), (-90.0, 300.0)], ids=["inside", "outside"])
def test_a_target_peak_decodes_back_to_its_site(site):
    t = site_targets(np.array([site]), (256, 256))
    assert t.max() == 1.0 and (t >= 0.999).sum() == 1
    logits = torch.logit(t.clamp(1e-4, 1 - 1e-4))
    found = decode_sites(logits, (256, 256), k=2)
    assert found.shape == (2, 3)
    cell, _ = cell_size((256, 256), OUT_CELLS)
    assert np.linalg.norm(found[0, :2] - np.array(site)) <= cell  # within one output cell
    assert found[0, 2] > found[1, 2]


def test_sites_beyond_the_extended_area_have_no_target():
    assert site_targets(np.array([[-300.0, 10.0]]), (256, 256)).max() == 0


def test_dihedral_moves_sites_with_the_map():
    for k in range(8):
        a = np.zeros((9, 9))
        a[2, 6] = 1
        rc = _dihedral_rc(np.array([[2.0, 6.0]]), k, 9)
        assert _dihedral(a, k)[int(rc[0, 0]), int(rc[0, 1])] == 1


def test_the_network_learns_one_batch():
    torch.manual_seed(0)
    net = SiteHeatmapNet(width=8)
    b = np.zeros((256, 256), np.uint8)
    rng = np.random.default_rng(0)
    s = np.column_stack([rng.integers(0, 256, (20, 2)), rng.uniform(-90, -40, 20)])
    x = heatmap_inputs(b, s, 3750.0)[None]
    y = site_targets(np.array([[60.0, 200.0]]), (256, 256))[None]
    assert net(x).shape == (1, OUT_CELLS, OUT_CELLS)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    first = focal_loss(net(x), y).item()
    for _ in range(40):
        loss = focal_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    found = decode_sites(net(x)[0].detach(), (256, 256), k=1)
    assert np.linalg.norm(found[0, :2] - np.array([60.0, 200.0])) <= 16.0


@needs_region1
def test_the_trainer_resumes_and_exports(tmp_path: Path):
    from safetensors.torch import load_file

    from wifidiff_fast.train.heatmap import main

    args = [
        "--work",
        str(tmp_path / "w"),
        "--batch",
        "2",
        "--sim-maps",
        "0",
        "--sim-fraction",
        "0",
        "--save-every",
        "1",
    ]
    assert main(args + ["--steps", "1"]) == 0
    assert main(args + ["--steps", "2"]) == 0
    log = (tmp_path / "w" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["1", "2"]  # step 2 continued from step 1
    assert main(args + ["--export", str(tmp_path / "ck")]) == 0
    net = SiteHeatmapNet()
    net.load_state_dict(load_file(str(tmp_path / "ck" / "weights.safetensors")))
