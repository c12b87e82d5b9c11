"""wifidiff_fast: fast fine-grained WiFi radio-map estimation with diffusion models.

Importing this package builds nothing, touches no GPU and prints nothing; heavy pieces load on
first use. How the pieces fit: ``docs/ARCHITECTURE.md``.

Symbols
-------
Names follow the paper; shapes in docstrings are written ``[B, K, H, W]``. A letter means one
thing inside a module; the few modules that give a letter another meaning are listed here and
say so in their docstring.

* ``B`` — batch: maps per call (a dimension). The paper's building map is always ``buildings``
  (``uint8 [B, H, W]``, 1 = building), never ``B``.
* ``K`` — candidates per map (the diffusion samples that compete in the election).
* ``H, W`` — map rows and columns; ``(row, col)`` pairs index pixels (``tx_rc``, ``points``).
* ``N`` — number of sparse samples of the protocol (``data.protocol``, ``eval``: 10…200).
  Elsewhere: ``ops.ddim_step``'s ``[N, C, H, W]`` = the B·K candidates flattened;
  ``data.simulator``'s map side ``N × N``.
* ``S``, ``M`` — sample raster (values at the sampled pixels, 0 elsewhere) and its 0/1 mask,
  ``[B, H, W]``. A step count is ``steps`` / ``n_steps``, never ``S``.
* ``S_prime``, ``M_prime`` (S′, M′) — the condition after the boost merge: R̂ at the boost
  points, the real samples written last.
* ``R_hat`` (R̂) — the boost block's rough map (one network pass).
* ``reuse`` — the midpoint-reuse ratio in ``[0, 1)`` (``NAME@R=r`` in ``eval`` method names);
  never a bare ``R`` in code.
* ``x_t``, ``eps``, ``x0_pred``, ``alpha_bar_t``, ``sigma_t`` — DDIM state, predicted noise,
  predicted clean map, cumulative ᾱ_t, noise scale σ_t(η) (Song et al. 2021, eq. 12 and 16);
  ``T`` = ``num_train_timesteps`` in ``sampling``; ``table [n_steps, 5]`` holds the per-step
  coefficients (``sampling.schedules.TABLE_COLUMNS``).
* ``L_s``, ``D``, ``alpha`` (α_b) — election sample error, correction term and its per-map
  weight; ``I(k)``, ``lam`` (λ), ``gamma`` (γ) — physics indicator, its weight, the ray-term
  weight; ``ring_radii``, ``n_angles``, ``n_rays`` — its geometry.
* ``tx_rc``, ``n_tx`` — transmitter positions and count; ``T = MAX_TX`` slots in
  ``data.simulator``.
* ``freq_mhz``, ``rss_dbm`` — carrier frequency and received signal strength in dBm.

Not yet following the table: ``pipeline/boost.py`` and ``pipeline/generate.py`` name the building
tensor ``B``, and the Estimator's internals name the step count ``S`` and the reuse ratio ``R``;
``pipeline/`` is being reworked by the transmitter-aware issue and adopts these names there.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["RadioMapEstimator", "EstimateResult", "__version__"]


def __getattr__(name: str):
    if name in ("RadioMapEstimator", "EstimateResult"):
        from .pipeline import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'wifidiff_fast' has no attribute {name!r}")
