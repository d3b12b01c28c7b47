"""Cycle-level simulator of a (sparse) tensor accelerator running BERT-family workloads."""

from accel_sim.config import (
    HardwareConfig,
    HardwareConfigError,
    hardware_from_dict,
    list_presets,
    load_hardware,
)
from accel_sim.engine import simulate
from accel_sim.results import OpResult, SimResult
from accel_sim.version import __version__

__all__ = [
    "HardwareConfig",
    "HardwareConfigError",
    "OpResult",
    "SimResult",
    "__version__",
    "hardware_from_dict",
    "list_presets",
    "load_hardware",
    "simulate",
]
