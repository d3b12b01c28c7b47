"""Per-action energy: counts of every action times a per-action energy table (joules).

Defaults are published 45 nm figures (see ../shared/reference/energy-tables.md):

* Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V): int8 mult 0.2 pJ,
  int32 add 0.1 pJ, fp16 add/mult 0.4/1.1 pJ, fp32 add/mult 0.9/3.7 pJ; 64-bit SRAM read
  10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB).
* Aladdin table (40 nm, Accelergy hwcomponents-library ``aladdin.py``): register
  0.009 pJ/bit, used for the PE pipeline registers (flip-flops, not a register file).
* DRAM pJ/bit is an input of the hardware spec (``dram.energy_per_bit_j``); the presets use
  LPDDR4 8 pJ/bit from the Accelergy CACTI plug-in (``DRAM_estimate_energy``).

A MAC is a multiply at the operand precision plus an add at the accumulator width (int32 for
integer, fp32 for float). int16 multiply is derived [D] from int8 by the product of operand
widths (multiplier energy grows with width_a * width_b, Aladdin plug-in): 0.2 * 4 = 0.8 pJ.
SRAM write energy defaults to the read energy (Horowitz gives reads only; stated assumption).

Leakage has no published default in our references: the table's values
(``accel_sim.spec.cost_tables``) are stated assumptions of 45 nm order of magnitude, to be
overridden in YAML when a technology figure is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from accel_sim.spec.cost_tables import PJ, EnergyTable, LeakageTable

# Horowitz 2014 [V]; int16 multiply derived [D].
_MULT_J = {"int8": 0.2 * PJ, "int16": 0.8 * PJ, "fp16": 1.1 * PJ, "fp32": 3.7 * PJ}
_ACC_ADD_J = {"int8": 0.1 * PJ, "int16": 0.1 * PJ, "fp16": 0.9 * PJ, "fp32": 0.9 * PJ}

# Horowitz 2014 [V]: energy of one 64-bit (8-byte) SRAM read by array size.
_SRAM_READ_64B_POINTS: tuple[tuple[float, float], ...] = (
    (8 * 1024, 10 * PJ),
    (32 * 1024, 20 * PJ),
    (1024 * 1024, 100 * PJ),
)


def default_mac_j(precision: str) -> float:
    """Energy of one multiply-accumulate at ``precision`` (Horowitz 2014)."""
    return _MULT_J[precision] + _ACC_ADD_J[precision]


def sram_j_per_byte(size_bytes: float) -> float:
    """SRAM access energy per byte for a buffer of ``size_bytes``.

    Log-log interpolation through Horowitz's 8 KB / 32 KB / 1 MB points, extrapolated with
    the nearest segment's slope outside them.
    """
    points = _SRAM_READ_64B_POINTS
    log_size = math.log(size_bytes)
    if log_size <= math.log(points[1][0]):
        (s0, e0), (s1, e1) = points[0], points[1]
    else:
        (s0, e0), (s1, e1) = points[1], points[2]
    slope = (math.log(e1) - math.log(e0)) / (math.log(s1) - math.log(s0))
    energy_64b = math.exp(math.log(e0) + slope * (log_size - math.log(s0)))
    return energy_64b / 8.0


@dataclass(frozen=True)
class ActionCounts:
    """Everything an op did that costs dynamic energy."""

    macs: float = 0.0
    register_bytes: float = 0.0
    sram_ifmap_read_bytes: float = 0.0
    sram_ifmap_write_bytes: float = 0.0
    sram_filter_read_bytes: float = 0.0
    sram_filter_write_bytes: float = 0.0
    sram_ofmap_read_bytes: float = 0.0
    sram_ofmap_write_bytes: float = 0.0
    dram_read_bytes: float = 0.0
    dram_write_bytes: float = 0.0
    vector_lane_ops: float = 0.0

    def scaled(self, factor: float) -> ActionCounts:
        return ActionCounts(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    @property
    def dram_bytes(self) -> float:
        return self.dram_read_bytes + self.dram_write_bytes

    @property
    def sram_read_bytes(self) -> float:
        return self.sram_ifmap_read_bytes + self.sram_filter_read_bytes + self.sram_ofmap_read_bytes

    @property
    def sram_write_bytes(self) -> float:
        return (
            self.sram_ifmap_write_bytes + self.sram_filter_write_bytes + self.sram_ofmap_write_bytes
        )


ENERGY_COMPONENTS = (
    "mac",
    "register",
    "sram_ifmap",
    "sram_filter",
    "sram_ofmap",
    "dram",
    "vector",
    "leakage",
)


def dynamic_energy_j(counts: ActionCounts, hw) -> dict[str, float]:
    """Dynamic energy by component for ``counts`` on hardware ``hw`` (a HardwareConfig)."""
    table: EnergyTable = hw.energy
    mac_j = table.mac_j if table.mac_j is not None else default_mac_j(hw.pe_array.precision.value)

    def sram_pair(size_bytes: int) -> tuple[float, float]:
        read = table.sram_read_j_per_byte
        write = table.sram_write_j_per_byte
        derived = sram_j_per_byte(size_bytes)
        return (derived if read is None else read, derived if write is None else write)

    ifmap_r, ifmap_w = sram_pair(hw.sram.ifmap.size_bytes)
    filter_r, filter_w = sram_pair(hw.sram.filter.size_bytes)
    ofmap_r, ofmap_w = sram_pair(hw.sram.ofmap.size_bytes)
    return {
        "mac": counts.macs * mac_j,
        "register": counts.register_bytes * table.register_j_per_byte,
        "sram_ifmap": counts.sram_ifmap_read_bytes * ifmap_r
        + counts.sram_ifmap_write_bytes * ifmap_w,
        "sram_filter": counts.sram_filter_read_bytes * filter_r
        + counts.sram_filter_write_bytes * filter_w,
        "sram_ofmap": counts.sram_ofmap_read_bytes * ofmap_r
        + counts.sram_ofmap_write_bytes * ofmap_w,
        "dram": counts.dram_bytes * 8.0 * hw.dram.energy_per_bit_j,
        "vector": counts.vector_lane_ops * table.vector_op_j,
    }


def leakage_power_w(hw) -> float:
    """Static power of the whole chip: PEs, all SRAM and vector lanes."""
    leak: LeakageTable = hw.leakage
    return (
        leak.pe_w * hw.pe_count
        + leak.sram_w_per_byte * hw.sram_bytes
        + leak.vector_lane_w * hw.vector_unit.lanes
    )
