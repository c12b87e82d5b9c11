"""The estimator on network backends: same elected candidate and maps as the eager reference."""

from __future__ import annotations

import numpy as np
import pytest
from rtcases import layout, samples, write_tiny_checkpoint

from wifidiff_fast.pipeline.estimator import RadioMapEstimator
from wifidiff_fast.runtime.backends import NetworkBackendUnavailable, availability

pytestmark = pytest.mark.usefixtures("one_thread")
OPTS = dict(mode="diffusion", candidates=4, steps=3, seed=2, boost_candidate=False, return_candidates=True)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ck"))


def compare(ckpt, **engine_kw):
    ref = RadioMapEstimator.from_pretrained(ckpt, backend="reference", progress=False)
    eng = RadioMapEstimator.from_pretrained(ckpt, backend="reference", progress=False, **engine_kw)
    for i in range(2):
        b = layout(i, 48, 48)  # square: the symmetry-averaged boost needs one grid, not two
        s = samples(b, 15, i)
        a, e = ref.estimate(b, s, **OPTS), eng.estimate(b, s, **OPTS)
        assert e.elected == a.elected
        np.testing.assert_allclose(e.candidates_dbm, a.candidates_dbm, rtol=0, atol=0.02)
        np.testing.assert_allclose(e.scores, a.scores, rtol=1e-3, atol=1e-5)
    return eng


def test_eager_channels_last_engine_matches_the_reference(ckpt):
    eng = compare(ckpt, network_backend="eager", channels_last=True)
    assert eng.engine is not None and eng.engine.channels_last


def test_default_estimator_runs_the_reference_modules_themselves(ckpt):
    est = RadioMapEstimator.from_pretrained(ckpt)
    assert est.engine is None and est.runners is est.nets and est.network_backend == "eager"


def test_prepare_builds_once_and_stays_off_the_request_clock(ckpt, monkeypatch):
    est = RadioMapEstimator.from_pretrained(
        ckpt, backend="reference", network_backend="eager", channels_last=True, progress=False
    )
    calls = []
    original = est.engine.prepare
    monkeypatch.setattr(est.engine, "prepare", lambda *a, **k: calls.append(a) or original(*a, **k))
    b = layout(0)
    est.prepare(b.shape, 1, 4)
    est.estimate(b, samples(b, 10, 0), **OPTS)  # already prepared: nothing more to build
    assert len(calls) == 1
    est.estimate(layout(1, 40, 48), samples(layout(1, 40, 48), 10, 0), **OPTS)  # a new grid: prepared once
    assert len(calls) == 2


@pytest.mark.slow
def test_onnx_engine_matches_the_reference(ckpt, tmp_path, monkeypatch):
    if not availability("onnx", "cpu").ok:
        pytest.skip(availability("onnx", "cpu").reason)
    monkeypatch.setenv("WIFIDIFF_RUNTIME_CACHE_DIR", str(tmp_path))
    eng = compare(ckpt, network_backend="onnx")
    assert eng.network_backend == "onnx" and any(tmp_path.glob("onnx/*/model.onnx"))


def test_unavailable_network_backend_is_a_clear_error(ckpt):
    with pytest.raises(NetworkBackendUnavailable, match="tensorrt.*TensorRT runs on NVIDIA GPUs only"):
        RadioMapEstimator.from_pretrained(ckpt, network_backend="tensorrt")


def test_bad_network_dtype_names_the_choices(ckpt):
    with pytest.raises(ValueError, match="network dtype must be one of"):
        RadioMapEstimator.from_pretrained(ckpt, network_backend="eager", network_dtype="int8")
