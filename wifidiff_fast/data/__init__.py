"""Data: units, input checks, the sampling protocol, loaders and the simulators."""

from .scene import Scene
from .units import P_MAX_DBM, P_MIN_DBM, dbm_to_model, dbm_to_unit, model_to_dbm

__all__ = ["Scene", "P_MIN_DBM", "P_MAX_DBM", "dbm_to_model", "model_to_dbm", "dbm_to_unit"]
