"""Radio physics shared by inference, localisation, calibration and the simulator.

* :mod:`.raycast` — building length and walls along transmitter→point rays.
* :mod:`.antenna` — the three-sector mast pattern with downtilt.
* :mod:`.prior` — the calibrated propagation prior (:class:`PropagationParams`, ``prior_map``).
* :mod:`.calibrate` — fit the prior on one BRAT region, check it on another (CLI).
"""

from .prior import PRIOR_VERSION, PropagationParams, load_calibration, power_sum_db, prior_map

__all__ = ["PRIOR_VERSION", "PropagationParams", "load_calibration", "power_sum_db", "prior_map"]
