"""Every network backend that can run here against the eager module (the specification).

Compiled backends are tested on the ``tiny`` preset at small grids so the suite stays lean on a
2-core CI machine (inductor compiles take tens of seconds there): ONNX on the denoiser (two
inputs, dynamic batch, attention, timestep embedding), AOTInductor and ``torch.compile`` on the
small correction network.
"""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.models.features import CORRECTION_CHANNELS, DENOISER_CHANNELS
from wifidiff_fast.runtime.backends import availability
from wifidiff_fast.runtime.runners import NetworkRunner, make_runner

H, W = 32, 40  # not square, not a multiple of the network stride (padding path)


def denoiser_inputs(batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, DENOISER_CHANNELS, H, W, generator=g), torch.randint(
        0, 1000, (batch,), generator=g
    )


def need(backend):
    st = availability(backend, "cpu")
    if not st.ok:
        pytest.skip(f"{backend} unavailable here: {st.reason}")


def test_eager_runner_with_channels_last_matches_the_module(nets, cache):
    x, t = denoiser_inputs(3)
    runner = NetworkRunner(nets.denoiser, "cpu", channels_last=True, cache=cache)
    with torch.inference_mode():
        ref = nets.denoiser(x, t)
        out = runner(x, t)
    assert out.is_contiguous() and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # the reference module itself is untouched (still NCHW parameters)
    assert nets.denoiser.stem.weight.is_contiguous()


def test_bf16_eager_runner_is_close_to_fp32(nets, cache):
    x, t = denoiser_inputs(2)
    runner = NetworkRunner(nets.denoiser, "cpu", dtype=torch.bfloat16, cache=cache)
    with torch.inference_mode():
        ref, out = nets.denoiser(x, t), runner(x, t)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 0.05


def check_exported(backend, module, inputs, cache):
    """Built on a fresh cache, right for any batch, loaded (not rebuilt) by a second runner."""
    need(backend)
    runner = make_runner(backend, module, "cpu", channels_last=(backend == "aot"), cache=cache)
    runner.prepare(*(x[:2] for x in inputs))
    assert runner.last_lookup.built  # a fresh cache: built here
    with torch.inference_mode():
        for b in (1, inputs[0].shape[0]):  # the batch dimension is dynamic: one artifact serves both
            part = tuple(x[:b] for x in inputs)
            torch.testing.assert_close(runner(*part), module(*part), rtol=1e-4, atol=1e-5)
    assert len(runner.prepared) == 1
    again = make_runner(backend, module, "cpu", channels_last=(backend == "aot"), cache=cache)
    again.prepare(*(x[:3] for x in inputs))  # as in a new process
    assert again.last_lookup.reason == "hit" and not again.last_lookup.built
    with torch.inference_mode():
        torch.testing.assert_close(again(*inputs), module(*inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_onnx_runtime_matches_eager(nets, cache):
    check_exported("onnx", nets.denoiser, denoiser_inputs(5), cache)


@pytest.mark.slow
def test_aot_inductor_matches_eager(nets, cache):
    check_exported("aot", nets.correction, (torch.randn(5, CORRECTION_CHANNELS, H, W),), cache)


@pytest.mark.slow
def test_torch_compile_matches_eager(nets, cache):
    need("compile")
    runner = make_runner("compile", nets.correction, "cpu", channels_last=True, cache=cache)
    x = torch.randn(2, CORRECTION_CHANNELS, H, W)
    runner.prepare(x)
    with torch.inference_mode():
        torch.testing.assert_close(runner(x), nets.correction(x), rtol=1e-4, atol=1e-5)


def test_unprepared_signature_is_prepared_on_first_use_and_logged_once(nets, cache, caplog):
    runner = NetworkRunner(nets.correction, "cpu", cache=cache, name="correction")
    x = torch.randn(2, CORRECTION_CHANNELS, H, W)
    with caplog.at_level("WARNING"), torch.inference_mode():
        runner(x)
        runner(x)
    assert sum("no prepared implementation" in r.message for r in caplog.records) == 1
    assert len(runner.prepared) == 1
