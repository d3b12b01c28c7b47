"""Silicon area of the accelerator: per-component figures times counts, in mm^2.

The area model is a table (``AreaTable``, overridable in YAML under ``area:`` like
``energy:``) and one function, :func:`area_mm2`, that prices a ``HardwareConfig``:

- **PE array**: every PE holds a multiplier at the operand precision, an adder at the
  accumulator width and pipeline registers (weight, input, partial sum).
- **SRAM**: the three operand buffers, per byte (double buffering is inside ``size_bytes``).
- **Vector unit**: per lane, an fp16 multiplier, an fp16 adder and three 16-bit registers.
- **DRAM interface** (PHY and controller), per GB/s of bandwidth.
- **Sparse support**: priced by each datapath (``sparse_area_um2``): the PE array's
  activation FIFOs, skipping's ifmap crossbar, N:M mode's input multiplexers.

Defaults, and where they come from (45 nm unless noted, no technology scaling):

* Arithmetic [V]: Horowitz, "Computing's energy problem", ISSCC 2014, area table (45 nm):
  8-bit add 36, 16-bit add 67, 32-bit add 137, 8-bit mult 282, 32-bit mult 3495, fp16 add
  1360, fp16 mult 1640, fp32 add 4184, fp32 mult 7700 (um^2). int16 multiply is derived [D]
  from 8-bit by the product of operand widths (282 x 4 = 1128 um^2), the same rule the energy
  table uses.
* Register [V]: Aladdin (Shao et al., ISCA 2014), 40 nm, as tabulated in Accelergy's
  hwcomponents-library ``aladdin.py``: 5.98 um^2 per register bit.
* SRAM [V, rule of thumb]: about 600 lambda^2 per bit cell at lambda = 45 nm (D. J. Greaves,
  Cambridge System-on-Chip lecture notes, "45nm SRAM memory area", after CACTI): 1.215 um^2
  per bit, 9.72 um^2 per byte, i.e. about 10 mm^2 per MiB. This is on the generous side of a
  bare 6T cell (~0.35 um^2 at 45 nm) because it stands for the array with its periphery.
* **Assumptions** [A] (no published figure in our references; override them): DRAM PHY and
  controller 0.1 mm^2 per GB/s; crossbar crosspoint 1 um^2 per bit; multiplexer input
  0.5 um^2 per bit.
"""

from __future__ import annotations

from accel_sim.spec.cost_tables import AreaTable

__all__ = ["AREA_COMPONENTS", "area_mm2", "pe_area_um2", "word_bits"]

UM2_PER_MM2 = 1e6

# Horowitz ISSCC 2014 area table, um^2 at 45 nm [V]; int16 multiply derived [D].
_MULT_UM2 = {"int8": 282.0, "int16": 282.0 * 4, "fp16": 1640.0, "fp32": 7700.0}
# Accumulator add: int32 for integer precisions, fp32 for float.
_ACC_ADD_UM2 = {"int8": 137.0, "int16": 137.0, "fp16": 4184.0, "fp32": 4184.0}
_PRECISION_BITS = {"int8": 8, "int16": 16, "fp16": 16, "fp32": 32}

AREA_COMPONENTS = ("pe_array", "sram", "vector", "dram_phy", "sparse")


def pe_area_um2(hw) -> float:
    """One PE: multiplier, accumulator adder and weight/input/partial-sum registers."""
    table: AreaTable = hw.area
    precision = hw.pe_array.precision.value
    mult = table.multiplier_um2 if table.multiplier_um2 is not None else _MULT_UM2[precision]
    add = (
        table.accumulator_adder_um2
        if table.accumulator_adder_um2 is not None
        else _ACC_ADD_UM2[precision]
    )
    bits = 2 * _PRECISION_BITS[precision] + 8 * hw.pe_array.accumulator_bytes
    return mult + add + bits * table.register_um2_per_bit


def word_bits(hw) -> int:
    """Bits of one operand word at the array's precision."""
    return _PRECISION_BITS[hw.pe_array.precision.value]


def area_mm2(hw, sparse_um2: float = 0.0) -> dict[str, float]:
    """Area breakdown of ``hw`` (a HardwareConfig) in mm^2, by component (``AREA_COMPONENTS``);
    ``sparse_um2`` is the datapath's sparse-support hardware (its ``sparse_area_um2``).

    The total is ``sum(area_mm2(hw).values())``.
    """
    table: AreaTable = hw.area
    sram_bytes = hw.sram_bytes
    return {
        "pe_array": hw.pe_count * pe_area_um2(hw) / UM2_PER_MM2,
        "sram": sram_bytes * table.sram_um2_per_byte / UM2_PER_MM2,
        "vector": hw.vector_unit.lanes * table.vector_lane_um2 / UM2_PER_MM2,
        "dram_phy": hw.dram.bandwidth_bytes_per_s / 1e9 * table.dram_phy_mm2_per_gb_s,
        "sparse": sparse_um2 / UM2_PER_MM2,
    }
