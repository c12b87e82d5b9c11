"""Named data sets."""

import sys
import types

import numpy as np
import pytest

from wifidiff_fast import _env
from wifidiff_fast.data.scene import Scene
from wifidiff_fast.eval.datasets import DATASETS, get_dataset

DATA = _env.data_dir()
needs_brat = pytest.mark.skipif(
    not (DATA / "brat" / "region2.npz").exists(), reason=f"BRAT data not found under {DATA}"
)
needs_rms = pytest.mark.skipif(
    not (DATA / "radiomapseer_like").is_dir(), reason=f"RadioMapSeer data not found under {DATA}"
)


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as info:
        get_dataset("brat-test")
    for name in DATASETS:
        assert name in str(info.value)


def test_bad_limit():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="limit"):
            get_dataset("brat-val", limit=bad)


def test_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="WIFIDIFF_DATA_DIR"):
        get_dataset("brat-val", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="WIFIDIFF_DATA_DIR"):
        get_dataset("radiomapseer", data_dir=tmp_path)


@needs_brat
def test_brat_sets():
    val = get_dataset("brat-val")
    assert len(val) == 30 and all(s.name.startswith("brat2_") and s.shape == (256, 256) for s in val)
    assert len({s.name for s in val}) == 30
    train = get_dataset("brat-train")
    assert len(train) == 30 and all(s.name.startswith("brat1_") for s in train)
    assert [s.name for s in get_dataset("brat-dev")] == [s.name for s in train + val]
    band = get_dataset("brat-val-5750")
    assert len(band) == 6 and all(s.freq_mhz == 5750 and s.name.startswith("brat2_") for s in band)
    first = get_dataset("brat-val", limit=4)
    assert [s.name for s in first] == [s.name for s in val[:4]]


@needs_rms
def test_radiomapseer_sets():
    rms = get_dataset("radiomapseer")
    assert len(rms) == 10
    ur = get_dataset("urbanradio3d")
    assert len(ur) == 39
    for s in rms + ur:
        assert np.all(np.isnan(s.rss_dbm[s.buildings == 1]))
        assert np.all(np.isfinite(s.rss_dbm[s.buildings == 0]))


def test_sim_test_calls_the_simulator_lazily(monkeypatch):
    calls = []

    def simulate_scenes(n, size, seed):
        calls.append((n, size, seed))
        b = np.zeros((8, 8), np.uint8)
        return [Scene(f"sim{i}", np.full((8, 8), -60.0), b) for i in range(n)]

    fake = types.ModuleType("wifidiff_fast.data.simulator")
    fake.simulate_scenes = simulate_scenes
    monkeypatch.setitem(sys.modules, "wifidiff_fast.data.simulator", fake)
    import wifidiff_fast.data as data_pkg

    monkeypatch.setattr(data_pkg, "simulator", fake, raising=False)
    scenes = get_dataset("sim-test", limit=5)
    assert calls == [(24, 256, 12345)]
    assert len(scenes) == 5


def test_examples_set():
    try:
        scenes = get_dataset("examples")
    except FileNotFoundError as exc:  # the bundle is produced by another part of the project
        assert "bundled" in str(exc)
        return
    assert scenes and all(isinstance(s, Scene) for s in scenes)
