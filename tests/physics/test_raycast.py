"""The ray cast: building length and walls on straight segments."""

import math

import numpy as np
import pytest
import torch

from wifidiff_fast.physics.prior import site_geometry
from wifidiff_fast.physics.raycast import ray_obstruction, segment_obstruction, unknown_rates


def _wall_grid():
    b = torch.zeros(64, 64)
    b[30:34, 10:54] = 1  # a 4-px thick horizontal wall
    return b


def test_a_ray_through_a_wall_counts_its_thickness_and_one_wall():
    length, walls, exit_px = ray_obstruction(
        _wall_grid(), torch.tensor([[10.0, 32.0]]), torch.tensor([[50.0, 32.0]])
    )
    assert walls.item() == 1
    assert exit_px.item() == pytest.approx(50.0 - 33.5, abs=0.5)  # the wall's far side: row 33.5
    assert length.item() == pytest.approx(4.0, abs=0.51)


def test_line_of_sight_has_no_obstruction():
    length, walls, exit_px = ray_obstruction(
        _wall_grid(), torch.tensor([[10.0, 32.0]]), torch.tensor([[20.0, 60.0]])
    )
    assert length.item() == 0 and walls.item() == 0 and exit_px.item() == 0


def test_two_walls_are_counted_twice():
    b = _wall_grid()
    b[40:42, 10:54] = 1
    length, walls, _ = ray_obstruction(b, torch.tensor([[10.0, 32.0]]), torch.tensor([[60.0, 32.0]]))
    assert walls.item() == 2
    assert length.item() == pytest.approx(6.0, abs=0.51)


def test_without_unknown_rates_outside_the_grid_is_open_and_the_mast_roof_is_cleared():
    b = _wall_grid()
    # a site far outside the raster: only the in-grid wall counts
    length, _, _ = ray_obstruction(b, torch.tensor([[-200.0, 32.0]]), torch.tensor([[50.0, 32.0]]))
    assert length.item() == pytest.approx(4.0, abs=0.51)
    # a mast standing on the wall itself does not see its own roof
    length, walls, _ = ray_obstruction(
        b, torch.tensor([[31.5, 32.0]]), torch.tensor([[31.5, 5.0]]), clear_px=30.0
    )
    assert length.item() == 0 and walls.item() == 0


def test_receiver_fraction_keeps_only_the_end_near_the_receiver():
    b = _wall_grid()
    tx, rx = torch.tensor([[10.0, 32.0]]), torch.tensor([[60.0, 32.0]])
    near_rx, _, _ = ray_obstruction(b, tx, rx, receiver_fraction=0.25)  # wall at 20–24 px of 50: not counted
    assert near_rx.item() == 0
    with pytest.raises(ValueError, match="receiver_fraction"):
        ray_obstruction(b, tx, rx, receiver_fraction=0.0)


def test_pairs_match_the_all_pairs_form_and_shapes():
    rng = np.random.default_rng(0)
    b = torch.as_tensor(rng.random((40, 50)) < 0.2, dtype=torch.float32)
    tx = torch.tensor([[5.0, 5.0], [-20.0, 70.0]])
    pts = torch.as_tensor(rng.uniform(0, 39, (30, 2)), dtype=torch.float32)
    L, W, E = ray_obstruction(b, tx, pts, chunk=500)  # small chunks: several passes
    assert L.shape == W.shape == E.shape == (2, 30)
    L2, W2, E2 = segment_obstruction(b, tx.repeat_interleave(30, 0), pts.repeat(2, 1))
    np.testing.assert_allclose(L.reshape(-1), L2)
    np.testing.assert_array_equal(W.reshape(-1), W2)
    np.testing.assert_allclose(E.reshape(-1), E2)


def test_unknown_rates_are_the_building_fraction_and_facades_per_pixel():
    b = torch.zeros(10, 20)
    b[:, 5:7] = 1  # one 2-px wall across every row: 1 façade entered per row of 20 px
    rho, lam = unknown_rates(b)
    assert rho == pytest.approx(0.1)
    # rows enter it once in 19 transitions each; columns never cross it
    assert lam == pytest.approx((1 / 19) / 2)
    assert unknown_rates(torch.zeros(5, 5)) == (0.0, 0.0)


def test_outside_pixels_add_the_expected_obstruction():
    b = _wall_grid()
    tx, rx = torch.tensor([[-200.0, 32.0]]), torch.tensor([[50.0, 32.0]])
    length, walls, exit_px = ray_obstruction(b, tx, rx, unknown=(0.1, 0.02))
    # 200 px lie outside the raster (less the 1.5 px cleared at the mast), the wall inside is known
    assert length.item() == pytest.approx(4.0 + 0.1 * 198.5, abs=0.6)
    assert walls.item() == pytest.approx(1.0 + 0.02 * 198.5, abs=0.05)
    assert exit_px.item() == pytest.approx(50.0 - 33.5, abs=0.5)  # the known wall is the last one
    # no known building on the way: the expected ones lie before the ray enters the raster
    length, walls, exit_px = ray_obstruction(
        b, torch.tensor([[-200.0, 5.0]]), torch.tensor([[50.0, 5.0]]), unknown=(0.1, 0.02)
    )
    assert walls.item() == pytest.approx(0.02 * 198.5, abs=0.05)
    assert exit_px.item() == pytest.approx(50.0, abs=1.0)  # half-pixel march steps
    # inside the raster nothing changes
    inside = ray_obstruction(b, torch.tensor([[10.0, 32.0]]), rx, unknown=(0.1, 0.02))
    plain = ray_obstruction(b, torch.tensor([[10.0, 32.0]]), rx)
    assert [x.item() for x in inside] == [x.item() for x in plain]


def test_site_geometry_counts_the_outside_with_the_rasters_own_statistics():
    b = _wall_grid()
    tx, pts = torch.tensor([[-100.0, 5.0]]), torch.tensor([[20.0, 5.0]])
    raster = site_geometry(b, tx, pts)
    explicit = site_geometry(b, tx, pts, unknown=unknown_rates(b))
    opened = site_geometry(b, tx, pts, unknown=None)
    assert raster.walls.item() == explicit.walls.item() > 0
    assert opened.walls.item() == 0
    with pytest.raises(ValueError, match="unknown"):
        site_geometry(b, tx, pts, unknown="open")


def _march_one(occ, a, b, step, clear, fraction, unknown):
    """One segment marched step by step in plain Python: the docstring's definition, written out
    (positions and comparisons in float32, as the batched march computes them)."""
    H, W = occ.shape
    f32 = torch.float32
    d = (b - a).to(f32)
    ll = d.norm().clamp_min(1e-6)
    u = d / ll
    n = max(1, math.ceil(float(d.norm()) / step))
    length = walls = out_px = 0.0
    last = last_out = 0.0
    prev = 0.0
    for k in range(n):
        s = torch.tensor(k + 0.5, dtype=f32) * step
        if not (s < ll - 0.5 and s > clear and s > (1.0 - fraction) * ll):
            prev = 0.0  # steps off the ray never block
            continue
        r, c = float(torch.round(a[0] + u[0] * s)), float(torch.round(a[1] + u[1] * s))
        if 0 <= r < H and 0 <= c < W:
            o = float(occ[int(r), int(c)])
        else:
            o, out_px, last_out = 0.0, out_px + step, float(s)
        length += o * step
        walls += float(o > prev)
        last = float(s) if o else last
        prev = o
    if unknown is not None:
        length += out_px * unknown[0]
        walls += out_px * unknown[1]
        if last == 0 and out_px * (unknown[0] + unknown[1]) > 0:
            last = last_out
    return length, walls, (float(ll) - last) if last > 0 else 0.0


@pytest.mark.parametrize("fraction", [1.0, 0.4])
@pytest.mark.parametrize("unknown", [None, (0.2, 0.05)])
def test_the_batched_march_equals_marching_each_ray_alone(fraction, unknown):
    """The batched, chunked march (sorted by length, masks fused) against one ray at a time, for
    rays that start inside, outside and across the raster."""
    g = torch.Generator().manual_seed(3)
    occ = (torch.rand(40, 56, generator=g) < 0.3).to(torch.uint8)
    a = torch.rand(60, 2, generator=g) * torch.tensor([80.0, 100.0]) - torch.tensor([20.0, 22.0])
    b = torch.rand(60, 2, generator=g) * torch.tensor([39.0, 55.0])
    got = segment_obstruction(
        occ, a, b, step_px=0.7, clear_px=1.5, chunk=4096, receiver_fraction=fraction, unknown=unknown
    )
    for q in range(len(a)):
        want = _march_one(occ, a[q], b[q], 0.7, 1.5, fraction, unknown)
        for name, x, y in zip(("length", "walls", "exit"), got, want):
            assert float(x[q]) == pytest.approx(y, abs=1e-4), (name, q)
