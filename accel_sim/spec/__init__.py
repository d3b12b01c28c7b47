"""The hardware spec: validated data in SI units, one module per concern.

- ``units``: quantity strings at the edges (``"64 KiB"``, ``"1 GHz"``) and the unit types;
- ``array_chip``: array chips (``datapath`` systolic, pe-array or flexible; the flexible
  array's own section is ``flexible_array``);
- ``crossbar_chip``: ReRAM crossbar chips (``datapath: crossbar``);
- ``dram``, ``cost_tables``: the parts they share or price;
- ``loading``: YAML files (``extends`` chains), presets, one clear error per bad input;
- ``scalesim_cfg``: a SCALE-Sim ``.cfg`` file read as a spec.
"""

from accel_sim.spec.array_chip import (
    Dataflow,
    FifoArray,
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
from accel_sim.spec.flexible_array import FlexibleArray
from accel_sim.spec.loading import (
    DATAPATHS,
    ChipConfig,
    HardwareConfigError,
    derive,
    hardware_from_dict,
    list_presets,
    load_hardware,
    preset_dir,
    resolve_extends,
    set_dotted,
)
from accel_sim.spec.units import DecimalBufferWarning

__all__ = [
    "DATAPATHS",
    "ChipConfig",
    "CrossbarChipConfig",
    "Dataflow",
    "DecimalBufferWarning",
    "Dram",
    "FifoArray",
    "FlexibleArray",
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
    "derive",
    "hardware_from_dict",
    "list_presets",
    "load_hardware",
    "preset_dir",
    "resolve_extends",
    "set_dotted",
]
