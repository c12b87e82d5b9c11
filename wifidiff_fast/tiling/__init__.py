"""Regions of any size as overlapping, blended tiles (``estimate_region``)."""

from .plan import Tile, blend_weight, plan_tiles
from .region import RegionResult, estimate_region, merge_sites

__all__ = ["RegionResult", "Tile", "blend_weight", "estimate_region", "merge_sites", "plan_tiles"]
