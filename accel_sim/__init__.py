"""Cycle-level simulator of (sparse) tensor accelerators running BERT-family workloads.

``spec``: the hardware spec; ``datapaths``: one folder per datapath behind one interface;
``engine.simulate``: run a workload; ``traffic``: where DRAM/SRAM traffic is computed;
``energy``, ``area``, ``formats``: pricing; ``kernels``: the only Numba code; ``validation``:
cross-checks against SCALE-Sim and an event-driven replay.
"""

from accel_sim.engine import simulate
from accel_sim.results import OpResult, SimResult
from accel_sim.spec import (
    ChipConfig,
    CrossbarChipConfig,
    HardwareConfig,
    HardwareConfigError,
    hardware_from_dict,
    list_presets,
    load_hardware,
)
from accel_sim.version import __version__

__all__ = [
    "ChipConfig",
    "CrossbarChipConfig",
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
