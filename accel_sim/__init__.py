"""Cycle-level simulator of (sparse) tensor accelerators running BERT-family workloads.

The entry point is :func:`simulate`::

    from accel_sim import load_hardware, simulate
    from workloads import build_workload

    result = simulate(build_workload("bert-base-uncased", seq_len=128),
                      load_hardware("systolic-32x32-ws"))
    result.latency_s, result.energy_j, result.to_frame()

``spec``: the hardware spec (``load_hardware`` reads a preset or YAML file, ``derive`` makes
a validated variant); ``datapaths``: one folder per datapath behind one interface;
``engine.simulate``: run a workload; ``traffic``: where DRAM/SRAM traffic is computed;
``energy``, ``area``, ``formats``: pricing; ``kernels``: the only Numba code; ``validation``:
cross-checks against SCALE-Sim and an event-driven replay.

Names are imported on first use (PEP 562), so ``import accel_sim`` (and the spec alone) stays
cheap: Numba and pandas load only when a simulation or a table needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accel_sim.engine import simulate
    from accel_sim.results import OpResult, SimResult
    from accel_sim.spec import (
        ChipConfig,
        CrossbarChipConfig,
        HardwareConfig,
        HardwareConfigError,
        derive,
        hardware_from_dict,
        list_presets,
        load_hardware,
    )
    from accel_sim.version import __version__

_EXPORTS = {
    "__version__": "accel_sim.version",
    "simulate": "accel_sim.engine",
    "OpResult": "accel_sim.results",
    "SimResult": "accel_sim.results",
    "ChipConfig": "accel_sim.spec",
    "CrossbarChipConfig": "accel_sim.spec",
    "HardwareConfig": "accel_sim.spec",
    "HardwareConfigError": "accel_sim.spec",
    "derive": "accel_sim.spec",
    "hardware_from_dict": "accel_sim.spec",
    "list_presets": "accel_sim.spec",
    "load_hardware": "accel_sim.spec",
}

__all__ = [
    "ChipConfig",
    "CrossbarChipConfig",
    "HardwareConfig",
    "HardwareConfigError",
    "OpResult",
    "SimResult",
    "__version__",
    "derive",
    "hardware_from_dict",
    "list_presets",
    "load_hardware",
    "simulate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'accel_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
