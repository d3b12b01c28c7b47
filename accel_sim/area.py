"""Silicon area of the accelerator: per-component figures times counts, in mm^2.

The area model is a table (``AreaTable``, overridable in YAML under ``area:`` like
``energy:``) and one function, :func:`area_mm2`, that prices a ``HardwareConfig``:

- **PE array**: every PE holds a multiplier at the operand precision, an adder at the
  accumulator width and pipeline registers (weight, input, partial sum).
- **SRAM**: the three operand buffers, per byte (double buffering is inside ``size_bytes``).
- **Vector unit**: per lane, an fp16 multiplier, an fp16 adder and three 16-bit registers.
- **DRAM interface** (PHY and controller), per GB/s of bandwidth.
- **Sparse support**: unstructured-pe activation FIFOs (``fifo_depth`` entries of a word and
  an index per PE); skipping's ifmap crossbar (``ifmap_banks x rows`` crosspoints of a word);
  N:M mode's input multiplexers (``M`` inputs of a word per PE).

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

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AREA_COMPONENTS", "AreaTable", "area_mm2", "pe_area_um2"]

UM2_PER_MM2 = 1e6

# Horowitz ISSCC 2014 area table, um^2 at 45 nm [V]; int16 multiply derived [D].
_MULT_UM2 = {"int8": 282.0, "int16": 282.0 * 4, "fp16": 1640.0, "fp32": 7700.0}
# Accumulator add: int32 for integer precisions, fp32 for float.
_ACC_ADD_UM2 = {"int8": 137.0, "int16": 137.0, "fp16": 4184.0, "fp32": 4184.0}
_PRECISION_BITS = {"int8": 8, "int16": 16, "fp16": 16, "fp32": 32}

SquareMicrons = Annotated[float, Field(ge=0)]

AREA_COMPONENTS = ("pe_array", "sram", "vector", "dram_phy", "sparse")


class AreaTable(BaseModel):
    """Per-component areas in um^2 (mm^2 per GB/s for the DRAM interface).

    ``None`` means "derive the published default for the array's precision".
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    multiplier_um2: SquareMicrons | None = None
    accumulator_adder_um2: SquareMicrons | None = None
    register_um2_per_bit: SquareMicrons = 5.98  # Aladdin 40 nm [V]
    sram_um2_per_byte: SquareMicrons = 600 * 45e-3**2 * 8  # Greaves 600 lambda^2/bit [V]
    vector_lane_um2: SquareMicrons = 1640.0 + 1360.0 + 3 * 16 * 5.98  # fp16 mult+add+regs
    dram_phy_mm2_per_gb_s: SquareMicrons = 0.1  # assumption [A]
    crossbar_um2_per_bit: SquareMicrons = 1.0  # assumption [A]
    mux_um2_per_input_bit: SquareMicrons = 0.5  # assumption [A]


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


def _sparse_um2(hw) -> float:
    table: AreaTable = hw.area
    spec = hw.sparse
    word_bits = _PRECISION_BITS[hw.pe_array.precision.value]
    handling = spec.zero_handling.value
    if handling == "unstructured-pe":
        index_bits = spec.index_bits or 16
        fifo_bits = spec.fifo_depth * (word_bits + index_bits)
        return hw.pe_count * fifo_bits * table.register_um2_per_bit
    if handling == "skipping":
        return hw.ifmap_banks * hw.pe_array.rows * word_bits * table.crossbar_um2_per_bit
    if handling == "nm":
        return hw.pe_count * spec.nm[1] * word_bits * table.mux_um2_per_input_bit
    return 0.0


def area_mm2(hw) -> dict[str, float]:
    """Area breakdown of ``hw`` (a HardwareConfig) in mm^2, by component (``AREA_COMPONENTS``).

    The total is ``sum(area_mm2(hw).values())``.
    """
    table: AreaTable = hw.area
    sram_bytes = hw.sram.ifmap.size_bytes + hw.sram.filter.size_bytes + hw.sram.ofmap.size_bytes
    return {
        "pe_array": hw.pe_count * pe_area_um2(hw) / UM2_PER_MM2,
        "sram": sram_bytes * table.sram_um2_per_byte / UM2_PER_MM2,
        "vector": hw.vector_unit.lanes * table.vector_lane_um2 / UM2_PER_MM2,
        "dram_phy": hw.dram.bandwidth_bytes_per_s / 1e9 * table.dram_phy_mm2_per_gb_s,
        "sparse": _sparse_um2(hw) / UM2_PER_MM2,
    }
