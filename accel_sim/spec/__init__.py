"""The hardware spec: validated data in SI units, one module per concern.

- ``units``: quantity strings at the edges (``"64 KiB"``, ``"1 GHz"``) and the unit types;
- ``array_chip``: array chips (``datapath`` systolic or pe-array);
- ``crossbar_chip``: ReRAM crossbar chips (``datapath: crossbar``);
- ``dram``, ``cost_tables``: the parts they share or price;
- ``loading``: YAML files, presets, one clear error per bad input.
"""

from accel_sim.spec.array_chip import (
    Dataflow,
    HardwareConfig,
    PEArray,
    Precision,
    SparseSupport,
    Sram,
    SramBuffer,
    VectorUnit,
    WeightFormat,
    ZeroHandling,
)
from accel_sim.spec.crossbar_chip import CrossbarChipConfig
from accel_sim.spec.dram import Dram
from accel_sim.spec.loading import (
    DATAPATHS,
    ChipConfig,
    HardwareConfigError,
    hardware_from_dict,
    list_presets,
    load_hardware,
    preset_dir,
)

__all__ = [
    "DATAPATHS",
    "ChipConfig",
    "CrossbarChipConfig",
    "Dataflow",
    "Dram",
    "HardwareConfig",
    "HardwareConfigError",
    "PEArray",
    "Precision",
    "SparseSupport",
    "Sram",
    "SramBuffer",
    "VectorUnit",
    "WeightFormat",
    "ZeroHandling",
    "hardware_from_dict",
    "list_presets",
    "load_hardware",
    "preset_dir",
]
