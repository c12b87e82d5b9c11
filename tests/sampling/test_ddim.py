"""Noise schedules, the DDIM coefficient table and the sampling loop, against diffusers (those
comparisons skip without diffusers; the sampler's own properties always run)."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.reference.ddim_step import ddim_step_ref
from wifidiff_fast.sampling.ddim import ddim_sample
from wifidiff_fast.sampling.schedules import (
    TABLE_COLUMNS,
    SchedulerConfig,
    alphas_cumprod,
    betas,
    ddim_table,
    ddim_timesteps,
)

CFG = SchedulerConfig()  # linear β 1e-4..0.02, T = 1000, leading spacing, clip to ±1


def _diffusers(**kw):
    """diffusers' DDIMScheduler, the reference for the schedule. Only the tests that compare with
    it skip when diffusers is missing; the properties below (split run = one run, ...) still run."""
    DDIMScheduler = pytest.importorskip(
        "diffusers", reason="diffusers is the reference for the DDIM schedule"
    ).DDIMScheduler
    args = dict(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        clip_sample=True,
        clip_sample_range=1.0,
        set_alpha_to_one=True,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )
    args.update(kw)
    return DDIMScheduler(**args)


def fake_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    """A fixed, smooth, t-dependent 'network' (large enough that x0 clipping happens)."""
    return torch.tanh(1.5 * x + 0.3) * (0.5 + t / 1000.0) + 0.1 * torch.sin(3.0 * x)


def _start(shape=(2, 1, 8, 8), seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_schedule_matches_diffusers():
    for schedule in ("linear", "scaled_linear"):
        ref = _diffusers(beta_schedule=schedule)
        cfg = SchedulerConfig(beta_schedule=schedule)
        torch.testing.assert_close(betas(cfg).float(), ref.betas, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(alphas_cumprod(cfg).float(), ref.alphas_cumprod, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="beta_schedule 'cosine' is not supported"):
        betas(SchedulerConfig(beta_schedule="cosine"))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 3, 7, 10, 50, 1000])
def test_timesteps_match_diffusers(spacing, steps):
    ref = _diffusers(timestep_spacing=spacing)
    ref.set_timesteps(steps)
    ts = ddim_timesteps(SchedulerConfig(timestep_spacing=spacing), steps)
    assert ts.dtype == torch.int64
    assert ts.tolist() == ref.timesteps.tolist()


@pytest.mark.parametrize("steps", [0, 1001, -3])
def test_steps_out_of_range(steps):
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        ddim_table(CFG, steps)


def test_negative_eta_is_refused():
    with pytest.raises(ValueError, match="eta must be >= 0"):
        ddim_table(CFG, 10, eta=-0.1)


def test_table_shape_and_last_row_goes_to_alpha_one():
    table, ts = ddim_table(CFG, 10, eta=0.0, dtype=torch.float64)
    assert table.shape == (10, len(TABLE_COLUMNS)) and ts.shape == (10,)
    assert table[-1, 2] == 1.0  # sqrt_alpha_bar_prev of the last step: ᾱ = 1 (set_alpha_to_one)
    assert (table[:, 4] == 0).all()  # σ = 0 for η = 0
    ab = alphas_cumprod(CFG)
    torch.testing.assert_close(table[:, 0] ** 2 + table[:, 1] ** 2, torch.ones(10, dtype=torch.float64))
    torch.testing.assert_close(table[:, 0], ab[ts].sqrt())


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_whole_trajectory_matches_diffusers_ddim(eta):
    """10 deterministic steps (η = 0) or 10 steps with injected noise (η > 0) agree step by step."""
    steps = 10
    table, ts = ddim_table(CFG, steps, eta=eta, dtype=torch.float64)
    ref = _diffusers()
    ref.set_timesteps(steps)
    assert ts.tolist() == ref.timesteps.tolist()
    noises = [_start(seed=100 + i) for i in range(steps)]

    x_ref = _start()
    ref_traj, ref_x0 = [], []
    for i, t in enumerate(ref.timesteps):
        out = ref.step(
            fake_eps(x_ref, int(t)), int(t), x_ref, eta=eta, variance_noise=noises[i] if eta > 0 else None
        )
        x_ref = out.prev_sample
        ref_traj.append(x_ref)
        ref_x0.append(out.pred_original_sample)

    ours_traj, ours_x0 = [], []

    def cb(i, x, x0):
        ours_traj.append(x)
        ours_x0.append(x0)

    x, x0 = ddim_sample(
        lambda x, i: fake_eps(x, int(ts[i])),
        _start(),
        table,
        noise_fn=(lambda i: noises[i]) if eta > 0 else None,
        callback=cb,
    )
    assert len(ours_traj) == steps
    clipped = sum(bool((r.abs() >= 1.0).any()) for r in ref_x0)
    assert clipped > 0  # the case exercises clip_sample
    # diffusers keeps ᾱ in float32: at η = 1 the direction coefficient of the step t = 100 → 0,
    # sqrt(1 − ᾱ_prev − σ²) ≈ 3e-4, cancels catastrophically there (ours is float64), so from that
    # step on the two differ by ~1e-4; everywhere else they agree to 1e-6.
    # At η = 1 the injected noise is scaled by σ computed from float32 ᾱ in diffusers: with
    # diffusers 0.42.1 that leaves float32-rounding differences of up to ~9e-6 in x̂0 at every step
    # (measured with that version), so η = 1 gets 2e-5 before the cancelling step.
    tol = 1e-6 if eta < 1 else 1e-3
    for i in range(steps):
        tol_i = (1e-6 if eta < 1 else 2e-5) if i < 8 else tol
        torch.testing.assert_close(ours_traj[i], ref_traj[i], rtol=tol_i, atol=tol_i, msg=f"x at step {i}")
        torch.testing.assert_close(ours_x0[i], ref_x0[i], rtol=tol_i, atol=tol_i, msg=f"x0 at step {i}")
    torch.testing.assert_close(x, x_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(x0, ref_x0[-1], rtol=tol, atol=tol)


def test_float32_table_matches_diffusers_closely():
    table, ts = ddim_table(CFG, 10)
    assert table.dtype == torch.float32
    ref = _diffusers()
    ref.set_timesteps(10)
    x_ref = _start().float()
    for t in ref.timesteps:
        x_ref = ref.step(fake_eps(x_ref, int(t)), int(t), x_ref, eta=0.0).prev_sample
    x, _ = ddim_sample(lambda x, i: fake_eps(x, int(ts[i])), _start().float(), table)
    torch.testing.assert_close(x, x_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("m", [0, 1, 4, 9, 10])
def test_split_run_equals_one_run(m):
    table, ts = ddim_table(CFG, 10, eta=0.7)

    def noise_fn(i):
        return torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(7 + i))

    def eps_fn(x, i):
        return fake_eps(x, int(ts[i]))

    x_T = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(1))
    full, full_x0 = ddim_sample(eps_fn, x_T, table, noise_fn=noise_fn)
    mid, _ = ddim_sample(eps_fn, x_T, table, 0, m, noise_fn=noise_fn)
    end, end_x0 = ddim_sample(eps_fn, mid, table, m, None, noise_fn=noise_fn)
    assert torch.equal(full, end)
    if m < 10:
        assert torch.equal(full_x0, end_x0)
    if 0 < m < 10:
        assert not torch.equal(mid, full)


def test_sample_without_clipping_differs_and_uses_step_fn():
    table, _ts = ddim_table(CFG, 5)
    x_T = 3.0 * torch.ones(1, 4, 4)
    calls = []

    def step_fn(*args, **kw):
        calls.append(kw["clip_sample"])
        return ddim_step_ref(*args, **kw)

    clipped, _ = ddim_sample(lambda x, i: torch.zeros_like(x), x_T, table, step_fn=step_fn)
    free, _ = ddim_sample(lambda x, i: torch.zeros_like(x), x_T, table, clip_sample=False)
    assert calls == [True] * 5
    # ε = 0: x0 = x_t/√ᾱ_t, which is clipped to 1 → the final sample is 1 (not 3/√ᾱ)
    torch.testing.assert_close(clipped, torch.ones_like(clipped))
    assert (free > 2.9).all()
