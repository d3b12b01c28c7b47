"""Per-action energy, static power and area tables of an array chip (overridable in YAML).

``None`` means "derive the published default for the array's precision"; the derivations and
their sources are in ``accel_sim.energy`` and ``accel_sim.area``. The constant defaults here:

* register energy: Aladdin table (40 nm, Accelergy hwcomponents-library ``aladdin.py``),
  0.009 pJ per register bit;
* vector lane-op: Horowitz ISSCC 2014 fp16 multiply, 1.1 pJ (the vector unit computes fp16);
* leakage: stated assumptions of 45 nm order of magnitude (no published default in our
  references);
* areas: Horowitz ISSCC 2014 area table (45 nm) for arithmetic, Aladdin 5.98 um^2 per register
  bit, about 600 lambda^2 per SRAM bit at lambda = 45 nm (Greaves, after CACTI), and the
  assumptions marked [A].
"""

from __future__ import annotations

from pydantic import Field

from accel_sim.spec.units import Joules, SpecModel, SquareMicrons, Watts

PJ = 1e-12


class EnergyTable(SpecModel):
    """Per-action energies in joules."""

    mac_j: Joules | None = None
    # Aladdin (40 nm): 0.009 pJ per register bit -> 0.072 pJ/byte.
    register_j_per_byte: Joules = 0.009 * 8 * PJ
    sram_read_j_per_byte: Joules | None = None
    sram_write_j_per_byte: Joules | None = None
    # One lane-op of the vector unit, which computes in fp16: Horowitz fp16 mult 1.1 pJ.
    vector_op_j: Joules = 1.1 * PJ


class LeakageTable(SpecModel):
    """Static power in watts (assumptions, see the module docstring)."""

    pe_w: Watts = Field(default=10e-6, description="per processing element")
    sram_w_per_byte: Watts = Field(default=20e-9, description="per byte of SRAM")
    vector_lane_w: Watts = Field(default=10e-6, description="per vector lane")


class AreaTable(SpecModel):
    """Per-component areas in um^2 (mm^2 per GB/s for the DRAM interface)."""

    multiplier_um2: SquareMicrons | None = None
    accumulator_adder_um2: SquareMicrons | None = None
    register_um2_per_bit: SquareMicrons = 5.98  # Aladdin 40 nm [V]
    sram_um2_per_byte: SquareMicrons = 600 * 45e-3**2 * 8  # Greaves 600 lambda^2/bit [V]
    vector_lane_um2: SquareMicrons = 1640.0 + 1360.0 + 3 * 16 * 5.98  # fp16 mult+add+regs
    dram_phy_mm2_per_gb_s: SquareMicrons = 0.1  # assumption [A]
    crossbar_um2_per_bit: SquareMicrons = 1.0  # assumption [A]
    mux_um2_per_input_bit: SquareMicrons = 0.5  # assumption [A]
