"""ReRAM crossbar chips (ISAAC class): the spec, ``datapath: crossbar`` in YAML.

A chip is ``tiles`` tiles of IMAs of crossbars (``Tile``), each crossbar with its DACs and
shared ADCs (``CrossbarArray``), a weight/input encoding (``Encoding``), a digital unit for
attention and vector ops (``DigitalUnit``), DRAM, per-action energies (``CrossbarEnergy``),
areas (``CrossbarArea``) and mapping options (``CrossbarMapping``). The defaults are ISAAC's
(Shafiee et al., ISCA 2016, Table I); where each value comes from is stated in
``accel_sim/datapaths/crossbar/__init__.py`` and in ``accel_sim/presets/isaac-crossbar.yaml``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from accel_sim.spec.dram import Dram
from accel_sim.spec.units import (
    Bytes,
    BytesPerSecond,
    Hertz,
    Joules,
    Seconds,
    SpecModel,
    SquareMicrons,
    Watts,
)
from safeio import limits

PJ = 1e-12


class CrossbarArray(SpecModel):
    """One ReRAM crossbar with its DACs (per row) and shared ADCs (per column group)."""

    rows: int = Field(default=128, gt=0, le=4096, strict=True)
    cols: int = Field(default=128, gt=0, le=4096, strict=True)
    bits_per_cell: int = Field(default=2, gt=0, le=8, strict=True)
    read_cycle_s: Seconds = 100e-9
    dac_bits: int = Field(default=1, gt=0, le=16, strict=True)
    adc_bits: int = Field(default=8, gt=0, le=16, strict=True)
    adcs_per_crossbar: int = Field(default=1, gt=0, le=4096, strict=True)
    adc_sample_rate_hz: Hertz = 1.28e9

    @model_validator(mode="after")
    def _adcs_divide_columns(self) -> CrossbarArray:
        if self.cols % self.adcs_per_crossbar:
            raise ValueError(
                f"adcs_per_crossbar ({self.adcs_per_crossbar}) must divide cols ({self.cols}): "
                "each ADC serves an equal group of columns"
            )
        return self


class Encoding(SpecModel):
    """Precision and signed-weight encoding."""

    weight_bits: int = Field(default=16, gt=0, le=32, strict=True)
    input_bits: int = Field(default=16, gt=0, le=32, strict=True)
    output_bits: int = Field(default=16, gt=0, le=64, strict=True)  # outputs and partial sums
    signed_weights: Literal["offset", "differential"] = "offset"


class Tile(SpecModel):
    """A tile: IMAs of crossbars, an eDRAM buffer and a share of the on-chip network."""

    imas: int = Field(default=12, gt=0, le=1024, strict=True)
    crossbars_per_ima: int = Field(default=8, gt=0, le=1024, strict=True)
    shift_adds_per_ima: int = Field(default=4, ge=0, le=1024, strict=True)  # 0: no S+A limit
    shift_add_ops_per_adc_cycle: int = Field(default=2, gt=0, le=1024, strict=True)  # [A]
    input_register_bytes: Bytes = 2 * 1024  # per IMA (ISAAC's IR)
    buffer_bytes: Bytes = 64 * 1024
    buffer_bytes_per_s: BytesPerSecond = 32.4e9
    network_bytes_per_s: BytesPerSecond = 16.2e9
    # tile-to-tile latency [A]
    network_hop_s: Annotated[float, Field(ge=0, le=limits.MAX_STEP_S)] = 10e-9

    @property
    def crossbars(self) -> int:
        return self.imas * self.crossbars_per_ima


class DigitalUnit(SpecModel):
    """Digital MAC array (attention GEMMs) and SIMD lanes (vector ops), at the chip clock."""

    macs_per_cycle: int = Field(
        default=1024, gt=0, le=limits.MAX_DIGITAL_MACS_PER_CYCLE, strict=True
    )
    vector_lanes: int = Field(default=64, gt=0, le=limits.MAX_LANES, strict=True)
    pipeline_latency_cycles: int = Field(
        default=8, ge=0, le=limits.MAX_PIPELINE_CYCLES, strict=True
    )


class CrossbarEnergy(SpecModel):
    """Per-action energies in joules (module docstring: sources)."""

    adc_conversion_j: Joules = 2e-3 / 1.28e9
    dac_drive_j: Joules = 4e-3 / (8 * 128 * 1e7)
    crossbar_read_j: Joules = 0.3e-3 * 100e-9  # one read with every row driven
    shift_add_j: Joules = 0.2e-3 / (8 * 1.28e9)
    sample_hold_j: Joules = 10e-6 / (8 * 1.28e9)  # per sample (= per conversion)
    input_register_j_per_byte: Joules = 1.24e-3 / (8 * 128 / 8 / 100e-9)  # per byte read out
    ima_output_register_j: Joules = 0.23e-3 / (8 * 1.28e9)  # per partial-sum update
    tile_output_register_j_per_byte: Joules = 1.68e-3 / (12 * 128 * 2 / 1.6e-6)
    tile_shift_add_j: Joules = 0.05e-3 / (12 * 128 / 1.6e-6)  # per IMA output merged
    buffer_j_per_byte: Joules = 20.45 * PJ / 32
    network_j_per_byte: Joules = 20.74 * PJ / 32 + 0.054 * PJ * 8
    cell_write_j: Joules = 10 * PJ  # assumption [A]
    digital_mac_j: Joules = 0.9 * PJ
    vector_op_j: Joules = 1.1 * PJ
    sigmoid_power_w: Watts = 0.52e-3  # per tile, idle
    max_pool_power_w: Watts = 0.4e-3  # per tile, idle


class CrossbarArea(SpecModel):
    """Per-component areas in um^2 (module docstring: sources)."""

    adc_um2: SquareMicrons = 1200.0
    dac_um2: SquareMicrons = 170.0 / 1024
    sample_hold_um2: SquareMicrons = 40.0 / 1024  # per column
    crossbar_um2: SquareMicrons = 25.0
    shift_add_um2: SquareMicrons = 60.0
    ima_registers_um2: SquareMicrons = 2100.0 + 770.0  # input + output register per IMA
    tile_registers_um2: SquareMicrons = 3200.0  # tile output register
    tile_shift_add_um2: SquareMicrons = 60.0
    sigmoid_um2: SquareMicrons = 600.0  # per tile (ISAAC: 2 units)
    max_pool_um2: SquareMicrons = 240.0  # per tile
    edram_um2: SquareMicrons = 83000.0
    bus_um2_per_ima: SquareMicrons = 7500.0
    router_um2_per_tile: SquareMicrons = 151000.0 / 4
    digital_mac_um2: SquareMicrons = 1128.0 + 137.0
    vector_lane_um2: SquareMicrons = 1640.0 + 1360.0 + 3 * 16 * 5.98


class CrossbarMapping(SpecModel):
    """Mapping options."""

    replication: Annotated[int, Field(le=limits.MAX_REPLICATION)] | Literal["auto"] = 1
    max_replication: int = Field(default=64, gt=0, le=limits.MAX_REPLICATION, strict=True)
    program_row_s: Seconds = 1e-6  # assumption [A]
    execution: Literal["layer", "pipelined"] = "layer"

    @model_validator(mode="after")
    def _positive(self) -> CrossbarMapping:
        if self.replication != "auto" and self.replication < 1:
            raise ValueError(f"replication must be 'auto' or >= 1, got {self.replication}")
        return self


class CrossbarChipConfig(SpecModel):
    """A compute-in-memory chip of ReRAM crossbar tiles."""

    datapath: Literal["crossbar"]
    name: str = Field(min_length=1)
    description: str = ""
    clock_hz: Hertz = 1e9
    tiles: int = Field(default=168, gt=0, le=1 << 20, strict=True)
    crossbar: CrossbarArray = CrossbarArray()
    encoding: Encoding = Encoding()
    tile: Tile = Tile()
    digital: DigitalUnit = DigitalUnit()
    dram: Dram
    energy: CrossbarEnergy = CrossbarEnergy()
    area: CrossbarArea = CrossbarArea()
    mapping: CrossbarMapping = CrossbarMapping()

    @property
    def chip_crossbars(self) -> int:
        return self.tiles * self.tile.crossbars

    @property
    def weight_slices(self) -> int:
        return math.ceil(self.encoding.weight_bits / self.crossbar.bits_per_cell)

    @property
    def encoding_factor(self) -> int:
        return 2 if self.encoding.signed_weights == "differential" else 1

    @property
    def crossbars_per_block(self) -> int:
        return self.weight_slices * self.encoding_factor

    @property
    def input_slices(self) -> int:
        return math.ceil(self.encoding.input_bits / self.crossbar.dac_bits)

    @property
    def read_s(self) -> float:
        """One crossbar read at full rate: the read cycle, or the ADCs' conversions if
        slower."""
        xb = self.crossbar
        return max(xb.read_cycle_s, xb.cols / xb.adcs_per_crossbar / xb.adc_sample_rate_hz)

    @property
    def peak_macs_per_s(self) -> float:
        """Weight MACs per second with every crossbar busy on dense blocks."""
        xb = self.crossbar
        weights_per_crossbar = xb.rows * xb.cols / self.crossbars_per_block
        return self.chip_crossbars * weights_per_crossbar / (self.input_slices * self.read_s)

    @property
    def pe_count(self) -> int:
        """Peak MACs per clock cycle of the whole chip, for ``SimResult.utilisation``: the
        crossbars' (``peak_macs_per_s``) plus the digital unit's, which runs attention."""
        return max(1, round(self.peak_macs_per_s / self.clock_hz)) + self.digital.macs_per_cycle

