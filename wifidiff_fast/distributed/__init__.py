"""Scale-out on Ray (``pip install 'wifidiff_fast[ray]'``): tiles and many-map jobs over actors
(:class:`RayExecutor`, used by ``estimate_region(..., executor="ray")``) and a Ray Serve
deployment that batches concurrent requests (:mod:`.serve`). Importing this package does not
import Ray."""

from .executor import RayExecutor

__all__ = ["RayExecutor"]
