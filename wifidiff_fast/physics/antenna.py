"""Antenna patterns: the three-sector mast of BRAT-Lab's WinProp set-up (3GPP TR 36.814 form).

A site has three sectors at azimuths ``rot + 0°, 120°, 240°`` (clockwise from north, row 0 is
north), each with the pattern

    A(φ, θ) = −min(−(A_h(φ) + A_v(θ)), A_m),
    A_h(φ) = −min(12 (φ / φ_3dB)², A_m),    A_v(θ) = −min(12 ((θ − θ_tilt) / θ_3dB)², SLA_v),

where φ is the azimuth off boresight and θ the depression angle from the mast top to the
receiver. The site gain is the power sum of its sectors. The downtilt puts the maximum on a ring
at ``h / tan(θ_tilt)`` from the mast and a null right under it: BRAT's near-mast ring.
"""

from __future__ import annotations

import math

import torch

__all__ = ["SECTOR_OFFSETS_DEG", "sector_gain_db", "wrap_angle"]

SECTOR_OFFSETS_DEG = (0.0, 120.0, 240.0)


def wrap_angle(x: torch.Tensor) -> torch.Tensor:
    """Angle to ``[-π, π)``."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def sector_gain_db(
    az: torch.Tensor,
    elev_deg: torch.Tensor,
    rot,
    tilt_deg,
    vbeam_deg,
    hbeam_deg: float = 65.0,
    gmax_dbi: float = 0.0,
    h_sla_db: float = 25.0,
    v_sla_db: float = 20.0,
) -> torch.Tensor:
    """Three-sector site gain in dB (broadcast over every argument).

    Args:
        az: azimuth of the receiver seen from the site, clockwise from north, radians.
        elev_deg: depression angle from the antenna to the receiver, degrees (> 0 below).
        rot: sector rotation, radians (sector 0's boresight azimuth).
        tilt_deg, vbeam_deg: electrical downtilt and vertical 3 dB beamwidth, degrees.
        hbeam_deg: horizontal 3 dB beamwidth, degrees.
        gmax_dbi: boresight gain.
        h_sla_db, v_sla_db: front-to-back and vertical side-lobe floors, dB.
    """
    av = -torch.clamp(12 * ((elev_deg - tilt_deg) / vbeam_deg) ** 2, max=v_sla_db)
    lin = 0.0
    for off in SECTOR_OFFSETS_DEG:
        phi = torch.rad2deg(wrap_angle(az - rot - math.radians(off)))
        ah = -torch.clamp(12 * (phi / hbeam_deg) ** 2, max=h_sla_db)
        a = -torch.clamp(-(ah + av), max=h_sla_db)
        lin = lin + torch.pow(10.0, a / 10)
    return gmax_dbi + 10 * torch.log10(lin)
