"""The CUDA-graph runner: bucket keys, static buffers and the capture/replay bookkeeping on the
CPU; capture and replay against the eager pipeline on a GPU (``make gpu-check``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rtcases import layout, samples, write_tiny_checkpoint

from wifidiff_fast.runtime.graphs import BucketKey, GraphCache, GraphCaptureOOM, StaticBuffers


def key(**over):
    base = dict(batch=1, H=64, W=48, K=8, S=4, backend="eager")
    base.update(over)
    return BucketKey(**base)


def test_every_shape_field_and_option_makes_a_new_bucket():
    base = key()
    variants = [
        key(batch=2),
        key(H=65),
        key(W=49),
        key(K=9),
        key(S=5),
        key(backend="aot"),
        key(start=2),
        key(eta=0.5),
        key(known_write=True),
        key(boost_candidate=False),
        key(dtype="bfloat16"),
    ]
    assert base == key() and hash(base) == hash(key())
    assert len({base, *variants}) == len(variants) + 1


def test_stage_two_buckets_are_their_own_graph():
    assert key().stage == "full" and key(start=3).stage == "stage2"


@pytest.mark.parametrize("bad", [dict(batch=0), dict(K=0), dict(S=0), dict(start=4), dict(start=-1)])
def test_impossible_buckets_are_value_errors(bad):
    with pytest.raises(ValueError):
        key(**bad)


def test_input_spec_has_noise_only_for_stochastic_sampling():
    spec = key(batch=2, K=3, start=1).input_spec()
    assert spec["x"][0] == (6, 64, 48) and spec["B"][0] == (2, 64, 48) and "noise" not in spec
    noisy = key(batch=2, K=3, start=1, eta=0.3).input_spec()
    assert noisy["noise"][0] == (3, 6, 64, 48)  # the steps the graph runs: start..S-1
    assert key(K=64, H=256, W=256).nbytes() > key(K=8, H=256, W=256).nbytes()


def test_static_buffers_copy_in_place_and_refuse_other_shapes():
    bufs = StaticBuffers({"a": ((2, 3), torch.float32), "b": ((4,), torch.int64)}, "cpu")
    ptr = bufs.tensors["a"].data_ptr()
    bufs.load(a=torch.ones(2, 3), b=torch.arange(4))
    assert bufs.tensors["a"].data_ptr() == ptr and bufs.tensors["a"].sum() == 6
    assert bufs.nbytes == 2 * 3 * 4 + 4 * 8
    with pytest.raises(ValueError, match="different shape is a different bucket"):
        bufs.load(a=torch.ones(3, 3), b=torch.arange(4))
    with pytest.raises(TypeError, match="torch.float64"):
        bufs.load(a=torch.ones(2, 3, dtype=torch.float64), b=torch.arange(4))
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        bufs.load(a=torch.ones(2, 3))


class FakeGraph:
    """Stands in for CapturedGraph on the CPU: 'replays' by calling the function on the buffers."""

    def __init__(self, key, fn, buffers):
        self.key, self.fn, self.buffers = key, fn, buffers
        self.outputs = fn(**buffers.tensors)  # a real capture runs the function once

    def replay(self, **inputs):
        self.buffers.load(**inputs)
        out = self.fn(**self.buffers.tensors)
        for k, v in out.items():
            self.outputs[k].copy_(v)  # static outputs, overwritten each replay
        return self.outputs


def test_cache_captures_once_per_bucket_logs_once_and_copies_outputs(caplog):
    built = []

    def build(k):
        built.append(k)
        return lambda B, S, M, x, random_points: {"y": x * 2 + B.sum()}

    cache = GraphCache(build, "cpu", capture=FakeGraph)
    k = key(H=4, W=4, K=2)
    args = dict(
        B=torch.zeros(1, 4, 4),
        S=torch.zeros(1, 4, 4),
        M=torch.zeros(1, 4, 4),
        random_points=torch.zeros(1, 3, 2, dtype=torch.int64),
    )
    with caplog.at_level("INFO"):
        first = cache.run(k, x=torch.ones(2, 4, 4), **args)
        second = cache.run(k, x=torch.full((2, 4, 4), 3.0), **args)
    assert cache.captures == 1 and built == [k]
    assert sum("capturing a CUDA graph" in r.message for r in caplog.records) == 1
    assert first["y"].max() == 2 and second["y"].max() == 6  # the first result was not overwritten
    cache.run(key(H=4, W=4, K=2, start=1), x=torch.ones(2, 4, 4), **args)
    assert cache.captures == 2


def test_cache_is_bounded():
    cache = GraphCache(lambda k: lambda **kw: {"y": kw["x"] + 0}, "cpu", capture=FakeGraph, max_buckets=2)
    for K in (1, 2, 3):
        cache.run(
            key(H=4, W=4, K=K),
            B=torch.zeros(1, 4, 4),
            S=torch.zeros(1, 4, 4),
            M=torch.zeros(1, 4, 4),
            x=torch.zeros(K, 4, 4),
            random_points=torch.zeros(1, 0, 2, dtype=torch.int64),
        )
    assert len(cache.graphs) == 2 and key(H=4, W=4, K=1) not in cache.graphs


def test_cuda_graphs_need_a_cuda_device(tmp_path):
    from wifidiff_fast.pipeline.estimator import RadioMapEstimator

    with pytest.raises(ValueError, match="cuda_graphs=True needs device='cuda'"):
        RadioMapEstimator.from_pretrained(write_tiny_checkpoint(tmp_path), cuda_graphs=True)


@pytest.mark.gpu
@pytest.mark.parametrize("reuse,eta", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.3)])
def test_graph_replay_equals_the_eager_request_on_gpu(tmp_path, reuse, eta):
    from wifidiff_fast.pipeline.estimator import RadioMapEstimator

    ck = write_tiny_checkpoint(tmp_path)
    eager = RadioMapEstimator.from_pretrained(ck, device="cuda", progress=False)
    graphed = RadioMapEstimator.from_pretrained(ck, device="cuda", progress=False, cuda_graphs=True)
    kw = dict(mode="diffusion", candidates=4, steps=4, seed=1, reuse=reuse, eta=eta, return_candidates=True)
    for i in range(3):  # capture on the first, replay on the others (same bucket, new inputs)
        b = layout(0, 64, 64)
        s = samples(b, 20, i)
        a, g = eager.estimate(b, s, **kw), graphed.estimate(b, s, **kw)
        assert g.elected == a.elected
        np.testing.assert_allclose(g.candidates_dbm, a.candidates_dbm, rtol=0, atol=1e-2)
        np.testing.assert_allclose(g.rss_dbm, a.rss_dbm, rtol=0, atol=1e-2)
    assert graphed.graphs.captures == 1 and "graph" in g.timings_ms


@pytest.mark.gpu
def test_out_of_memory_while_capturing_names_the_bucket(monkeypatch):
    from wifidiff_fast.runtime import graphs

    def boom(**kw):
        raise torch.OutOfMemoryError("CUDA out of memory")

    bufs = StaticBuffers({"x": ((2,), torch.float32)}, "cuda")
    with pytest.raises(GraphCaptureOOM, match="bucket .*K=8"):
        graphs.CapturedGraph(key(), boom, bufs)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(
    "opts",
    [
        dict(reuse=0.0),
        dict(reuse=0.5),
        dict(reuse=0.5, eta=0.3, known_write=True),
        dict(boost_candidate=False),
    ],
    ids=["plain", "reuse", "reuse-eta-known", "pure"],
)
def test_the_graph_request_is_the_eager_request_on_the_cpu(tmp_path, opts):
    """The graph path without the capture (FakeGraph replays the request function through its
    static buffers): the same maps as the eager path, so the GPU capture records the right
    computation."""
    from wifidiff_fast.pipeline.estimator import RadioMapEstimator
    from wifidiff_fast.runtime.graphs import request_function

    ck = write_tiny_checkpoint(tmp_path)
    eager = RadioMapEstimator.from_pretrained(ck, backend="reference", progress=False)
    graphed = RadioMapEstimator.from_pretrained(ck, backend="reference", progress=False)
    graphed.graphs = GraphCache(lambda k: request_function(graphed, k), "cpu", capture=FakeGraph)
    kw = dict(mode="diffusion", candidates=3, steps=3, seed=1, return_candidates=True, **opts)
    b = layout(0, 48, 48)
    for i in range(2):  # capture, then replay with new inputs
        s = samples(b, 15, i)
        a, g = eager.estimate(b, s, **kw), graphed.estimate(b, s, **kw)
        assert g.elected == a.elected and "graph" in g.timings_ms
        for name in ("candidates_dbm", "rss_dbm", "uncertainty_db", "scores", "R_hat_dbm", "critical_points"):
            np.testing.assert_array_equal(getattr(g, name), getattr(a, name), err_msg=name)
        assert g.alpha == a.alpha
    assert graphed.graphs.captures == 1
