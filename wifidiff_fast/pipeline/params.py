"""Pipeline hyper-parameters the papers leave blank, stored in every checkpoint's config."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BoostParams:
    n_critical: int = 32   # capacity of the critical-point detector
    n_random: int = 32     # seeded random points added to S′ (paper §IV-A)
    sigma: float = 1.5     # Gaussian window of the structure tensor, px
    min_response: float = 1e-8

    def to_dict(self) -> dict:
        return asdict(self)
