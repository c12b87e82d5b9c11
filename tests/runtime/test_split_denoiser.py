"""The split denoiser on network backends (runtime/split.py) against the unsplit ε function.

The reference is ``pipeline.generate.make_eps_fn`` on the eager module: the full seven-channel
input at every call. Tolerances: fp32 differs by float summation order only (≈1e-6 on the
network's output; ε divides by √(1−ᾱ_t), up to ×100 at the last step); bf16 follows the
low-precision rule "error ≤ 2 × the unsplit bf16 runner's error + atol" against fp32.
"""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.models.features import Condition
from wifidiff_fast.pipeline.generate import make_eps_fn
from wifidiff_fast.runtime.aot import AOTRunner
from wifidiff_fast.runtime.backends import availability
from wifidiff_fast.runtime.engine import NetworkEngine
from wifidiff_fast.runtime.runners import NetworkRunner
from wifidiff_fast.runtime.split import SplitDenoiser, map_segments
from wifidiff_fast.sampling.schedules import SchedulerConfig, ddim_table

pytestmark = pytest.mark.usefixtures("one_thread")
H, W = 36, 44  # not a multiple of the tiny denoiser's stride (16): the padding path
MAPS, K = 2, 3


def request(prediction_type: str = "sample", steps: int = 3, seed: int = 0):
    """A generation request's ε-function arguments: MAPS maps × K candidates, rasters repeated
    per candidate as the estimator passes them, and the state x ``[MAPS·K, H, W]``."""
    g = torch.Generator().manual_seed(seed)
    B = (torch.rand(MAPS, H, W, generator=g) < 0.2).float()
    S, M, R = (torch.randn(MAPS, H, W, generator=g) for _ in range(3))
    rep = [z.repeat_interleave(K, 0) for z in (B, S, M, R)]
    table, timesteps = ddim_table(SchedulerConfig(prediction_type=prediction_type), steps)
    x = torch.randn(MAPS * K, H, W, generator=g)
    return (table, timesteps, Condition(*rep, 1.0, 1.0), prediction_type), x


def eps_all_steps(eps_fn, x, steps: int = 3) -> torch.Tensor:
    with torch.inference_mode():
        return torch.stack([eps_fn(x, i) for i in range(steps)])


def test_map_segments_cut_chunks_where_a_map_ends():
    assert map_segments(10, 4, 5) == [(0, 4, 0), (4, 5, 0), (5, 8, 1), (8, 10, 1)]
    assert map_segments(8, 16, 4) == [(0, 4, 0), (4, 8, 1)]  # a chunk of two maps: two calls
    assert map_segments(6, 6, 6) == [(0, 6, 0)]  # the paper's case: one call per map
    assert map_segments(3, 2, 1) == [(0, 1, 0), (1, 2, 1), (2, 3, 2)]
    with pytest.raises(ValueError, match="do not split into runs of 4"):
        map_segments(10, 4, 4)


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
@pytest.mark.parametrize("chunk", [K, 4, 64])  # one map per chunk; chunks across maps; one chunk
@pytest.mark.parametrize("channels_last", [False, True])
def test_split_eps_equals_the_unsplit_reference_in_fp32(nets, cache, prediction_type, chunk, channels_last):
    args, x = request(prediction_type)
    ref = eps_all_steps(make_eps_fn(nets.denoiser, *args, chunk), x)
    runner = NetworkRunner(nets.denoiser, "cpu", channels_last=channels_last, cache=cache)
    runner.split = SplitDenoiser(nets.denoiser, "eager", "cpu", channels_last=channels_last, cache=cache)
    out = eps_all_steps(make_eps_fn(runner, *args, chunk, group=K), x)  # dispatched to the split
    assert out.shape == ref.shape == (3, MAPS * K, H, W)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert runner.prepared == [] and len(runner.split.step.prepared) == 1  # the unsplit call never ran


def test_split_eps_in_bf16_is_as_close_to_fp32_as_the_unsplit_runner(nets, cache):
    args, x = request()
    ref = eps_all_steps(make_eps_fn(nets.denoiser, *args, K), x)
    unsplit = NetworkRunner(nets.denoiser, "cpu", dtype=torch.bfloat16, channels_last=True, cache=cache)
    unsplit_err = (eps_all_steps(make_eps_fn(unsplit, *args, K), x) - ref).abs().amax(dim=(1, 2, 3))
    split = SplitDenoiser(
        nets.denoiser, "eager", "cpu", dtype=torch.bfloat16, channels_last=True, cache=cache
    )
    split_err = (eps_all_steps(split.make_eps_fn(*args, K, group=K), x) - ref).abs().amax(dim=(1, 2, 3))
    # per step: ε's scale grows as √(1−ᾱ_t) shrinks, so the atol follows the reference error
    assert (split_err <= 2 * unsplit_err + 1e-3).all(), (split_err, unsplit_err)


def test_the_engine_runs_the_split_on_eager_and_aot_only(nets, cache, monkeypatch):
    eng = NetworkEngine(nets, "cpu", "eager", channels_last=True, cache=cache)
    assert eng.denoiser.split is not None and "split denoiser" in eng.describe()
    assert (
        NetworkEngine(nets, "cpu", "eager", channels_last=True, cache=cache, split=False).denoiser.split
        is None
    )
    monkeypatch.setenv("WIFIDIFF_SPLIT_DENOISER", "0")  # the operator's switch back to the unsplit call
    assert NetworkEngine(nets, "cpu", "eager", cache=cache).denoiser.split is None
    if availability("compile", "cpu").ok:  # no compilation happens before prepare()
        assert NetworkEngine(nets, "cpu", "compile", cache=cache).denoiser.split is None


def test_engine_prepare_builds_the_split_step_not_the_unsplit_call(nets, cache):
    eng = NetworkEngine(nets, "cpu", "eager", dtype="bfloat16", channels_last=True, cache=cache)
    eng.prepare(H, W, 1, boost=False, denoiser_batches=(6, 2))
    assert eng.denoiser.prepared == [] and len(eng.denoiser.split.step.prepared) == 1


def test_the_split_aot_package_has_its_own_cache_key(nets, cache):
    # no compilation: only the keys. The unsplit key keeps its options (existing packages still hit)
    split = SplitDenoiser(nets.denoiser, "eager", "cpu", channels_last=True, cache=cache)
    stem, head = split.condition(*(torch.zeros(1, H, W) for _ in range(4)), torch.ones(1), torch.ones(1))
    step_inputs = (torch.zeros(2, 1, H, W), torch.zeros(2, dtype=torch.long), stem, head)
    split_key = AOTRunner(split.model, "cpu", torch.bfloat16, True, cache, broadcast=(2, 3)).key(step_inputs)
    full_inputs = (torch.zeros(2, 7, H, W), torch.zeros(2, dtype=torch.long))
    full_key = AOTRunner(nets.denoiser, "cpu", torch.bfloat16, True, cache).key(full_inputs)
    assert split_key.digest() != full_key.digest() and split_key.model != full_key.model
    assert split_key.shapes == ((-1, 1, H, W), (-1,), (1, *stem.shape[1:]), (1, *head.shape[1:]))
    assert dict(split_key.options)["form"] == split.model.export_form
    assert set(dict(full_key.options)) == {"channels_last", "input_dtypes"}


@pytest.mark.slow
def test_aot_split_step_matches_eager_for_any_batch_and_loads_from_the_cache(nets, cache):
    if not availability("aot", "cpu").ok:
        pytest.skip(availability("aot", "cpu").reason)
    eager = SplitDenoiser(nets.denoiser, "eager", "cpu", cache=cache)
    args, x = request()
    ref = eps_all_steps(eager.make_eps_fn(*args, 4, group=K), x)
    aot = SplitDenoiser(nets.denoiser, "aot", "cpu", channels_last=True, cache=cache)
    aot.prepare(H, W, 2)
    assert aot.step.last_lookup.built
    # chunk 4 over runs of 3: calls of batch 3, 1, 2 and 3 rows, each with its map's condition
    torch.testing.assert_close(
        eps_all_steps(aot.make_eps_fn(*args, 4, group=K), x), ref, rtol=1e-4, atol=1e-4
    )
    assert len(aot.step.prepared) == 1
    again = SplitDenoiser(nets.denoiser, "aot", "cpu", channels_last=True, cache=cache)
    again.prepare(H, W, 5)  # as in a new process
    assert again.step.last_lookup.reason == "hit" and not again.step.last_lookup.built
