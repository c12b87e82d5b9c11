"""wifidiff_fast: fast fine-grained WiFi radio-map estimation with diffusion models.

Importing this package builds nothing, touches no GPU and prints nothing; heavy pieces load on
first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["RadioMapEstimator", "EstimateResult", "__version__"]


def __getattr__(name: str):
    if name in ("RadioMapEstimator", "EstimateResult"):
        from .pipeline import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'wifidiff_fast' has no attribute {name!r}")
