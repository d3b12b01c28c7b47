"""Off-chip DRAM: the part of the spec every chip has, whatever its datapath."""

from __future__ import annotations

from accel_sim.spec.units import BytesPerSecond, JoulesPerBit, SpecModel


class Dram(SpecModel):
    bandwidth_bytes_per_s: BytesPerSecond
    # An input, never a hidden constant: it varies ~5x across sources (energy-tables.md).
    energy_per_bit_j: JoulesPerBit
