"""ReRAM crossbar chips (ISAAC class): spec, mapping of masked weights onto crossbars, timing,
energy and area.

A ``CrossbarChipConfig`` is the hardware spec of a compute-in-memory chip (YAML with
``kind: crossbar``; ``accel_sim.config.load_hardware`` returns one). ``simulate_crossbar``
runs a workload on it and returns a ``CrossbarSimResult`` (a ``SimResult`` with crossbar
counts and an area breakdown); ``accel_sim.engine.simulate`` dispatches here.

**Mapping.** A weight ``[out, in]`` is stored transposed: crossbar rows (wordlines) are
inputs, columns (bitlines) are outputs. It is cut into ``rows x cols`` blocks (edge blocks
padded). A block with no kept weight is never mapped. A mapped block takes
``weight_slices x encoding_factor`` crossbars: ``weight_slices = ceil(weight_bits /
bits_per_cell)``; ``differential`` encoding stores positive and negative parts in two arrays
(factor 2, each converted, subtracted in shift-and-add), ``offset`` encoding (ISAAC) stores
``w + bias`` in one array (factor 1) and removes the bias digitally once per output and vector.
Every slice crossbar of a block holds the block's sparsity pattern (masks say where weights are
zero, not which bits are). ``replication`` copies every matrix ``r`` times; ``auto`` takes
the largest ``r`` whose copies all fit on the chip (capped by ``max_replication`` and the
number of input vectors).

**Timing** (cycle-level per op, ``accel_sim.kernels.crossbar_tiles``; time base = ADC sample
periods, converted to chip cycles per op). Per input vector: a buffer read of its active
inputs (the op's tiles' ``buffer_bytes_per_s``) into the IMA input registers, which hold
``input_register_bytes`` (so a slow ADC queue stalls the buffer reads once they are full;
``_register_depth``), ``input_slices = ceil(input_bits /
dac_bits)`` bit-serial reads on every mapped crossbar (``read_cycle_s`` each); a read is latched
into sample-and-hold once every ADC has converted the previous one, and each ADC converts its
column group's active columns one per sample period (ADC ``a`` serves ``[a * g, (a + 1) *
g)``, ``g = cols / adcs_per_crossbar``; all-zero columns are not converted); the IMA's
shift-and-add consumes the conversions (``shift_adds_per_ima x shift_add_ops_per_adc_cycle``
per period); then the vector's inputs and partial sums cross the network (the op's tiles'
``network_bytes_per_s``) and its outputs are written to the buffers. A fast event recurrence
and a cycle-stepping reference compute the same ticks. ``mapping.execution``: ``layer`` runs
ops one after another (latency = sum of ops); ``pipelined`` streams tokens through every
layer's own crossbars (``_pipelined_ticks``: tile-to-tile transfers over one tile's network
port plus ``network_hop_s``; streaming vector ops as stages on the one digital unit, which
all stages share, so its busy time serialises; attention a barrier on it); a model that does
not fit falls back to ``layer`` with ``execution_note``. If the whole model does not fit on
the chip, every weight GEMM is reprogrammed before it runs, each forward pass (assumption,
stated): its mapped blocks in passes of at most the chip's crossbars, each pass timed on its
own as its write (crossbar rows in parallel, ``rows * program_row_s``, but no faster than the
pass's weights arrive from DRAM) plus every vector streamed through that pass's blocks
(partial sums of row blocks in different passes merge in the buffers; not timed). Attention
GEMMs run on
a digital MAC array (``digital.macs_per_cycle`` MACs per cycle, ideal utilisation) and vector
ops on its SIMD lanes (lane-op counts from ``accel_sim.vector_unit``), operands in the tile
eDRAM; the embedding gather reads DRAM. Cycles are counted at ``clock_hz``.

**Energy** (joules; counts x per-action energies of ``CrossbarEnergy``): ``adc`` per
conversion (active columns x input slices x weight slices x encoding, per vector); ``dac`` per
row drive (active rows, likewise); ``sample_hold`` per sample (one per conversion: all-zero
columns are neither sampled nor converted); ``crossbar`` per read, scaled by the driven
fraction of its rows, plus cell writes when reprogrammed; ``shift_add`` per conversion (the
IMA's units) and per partial-sum merge between row blocks and offset correction (the tile's
unit); ``registers``: the IMA input register per byte read out to the DACs (``dac_bits`` per
row drive), the IMA output register per partial-sum update (one per conversion), the tile
output register per byte of IMA output (active columns x output bytes per mapped block and
vector); ``buffer`` per eDRAM byte (inputs read once per vector, outputs written once);
``network`` per byte moved (inputs delivered to every mapped block, partial sums collected);
``digital`` per MAC / lane-op of the digital unit; ``dram`` per bit (reprogramming and
embedding gather). No leakage is modelled (ISAAC reports component powers at full activity
only); ISAAC's sigmoid and max-pool units, which a transformer never uses, are in the peak tile
power (``tile_power_w``, at their Table I power) but never charged.

**Defaults** (ISAAC: Shafiee et al., ISCA 2016, Table I and text, 32 nm). [T]: read in a
verbatim transcription of Table I and of the quoted text (dyigitpolat/mimarsinan,
``docs/research/physics/isaac_constants_research.md``, commit 5c65ecb4; it transcribes the
paper's PDF, which was not available here); [V]: read in Accelergy's ``hwcomponents-library``
``hwcomponents_library/library/isaac.py`` (commit 19ecd2fc), which quotes Table I and derives
per-action energies; [D] derived here; [A] assumption. Table I's IMA and tile rows are group
totals (12 IMAs per tile; the transcription reconciles them with the printed totals):

* ADC 8 b, 8 per IMA (one per 128x128 crossbar), 16 mW and 0.0096 mm^2 per IMA [T][V] ->
  2 mW and 1200 um^2 each. Rate: Table I says 1.2 GSps [T][V]; the text (sec. V) says "a single
  1.28 GSps ADC unit" converts a crossbar's 128 columns in one 100 ns cycle [T]; the preset
  uses 1.28 GS/s -> 2 mW / 1.28 GS/s = 1.5625 pJ per conversion [D] (library: 1.67 pJ at 1.2).
* DAC 1 b, 8 x 128 per IMA, 4 mW, 0.00017 mm^2 per IMA [T][V] -> 0.39 pJ per row drive at
  one drive per 100 ns [D], 0.166 um^2 each.
* Memristor crossbar 128 x 128, 2 bits per cell, 8 per IMA, 2.4 mW, 0.0002 mm^2 per IMA [T]
  -> 0.3 mW x 100 ns = 30 pJ per full read [D], 25 um^2 each (one significant figure in
  Table I). Read (= pipeline cycle) 100 ns (sec. IV) [T].
* Sample-and-hold 8 x 128 per IMA, 10 uW, 0.00004 mm^2 [T] -> one sample per column and read
  (1024 per 100 ns per IMA = the 8 ADCs' 8 x 1.28 GS/s): 10 uW / 10.24 G/s = 0.977 fJ per
  sample [D], 0.039 um^2 per column.
* Shift-and-add 4 per IMA, 0.2 mW, 0.00024 mm^2 [T] (60 um^2 each [V]) -> 0.2 mW / (8 x 1.28
  GS/s) = 0.0195 pJ per op [D] (library 0.021 pJ at 1.2 GS/s); one more per tile, 0.05 mW,
  0.00006 mm^2 [T] -> one op per IMA output (a 16-bit weight spans 8 two-bit cells, so an IMA
  of 8 crossbars yields 128 outputs per 16 reads; 12 x 128 per 1.6 us = 0.96 G/s per tile):
  0.05 mW / 0.96 G/s = 0.0521 pJ per op [D].
* IMA input register 2 KB (1.24 mW, 0.0021 mm^2) [T]; its size bounds the vectors queued ahead
  of the crossbars. Read out 1 bit per DAC per 100 ns (8 x 128 b = 128 B per 100 ns = 1.28 GB/s
  per IMA): 1.24 mW / 1.28 GB/s = 0.969 pJ per byte read [D]; at ISAAC's rate every bit is
  written once and read once, so the write is folded into the read.
* IMA output register 256 B (0.23 mW, 0.00077 mm^2) [T]: one partial-sum update per conversion,
  0.23 mW / (8 x 1.28 GS/s) = 0.0225 pJ per update [D].
* Tile output register 3 KB (1.68 mW, 0.0032 mm^2) [T]: the IMAs' outputs, 12 x 128 x 2 B per
  1.6 us = 1.92 GB/s per tile: 1.68 mW / 1.92 GB/s = 0.875 pJ per byte [D].
* eDRAM buffer 64 KB per tile, 20.7 mW, 0.083 mm^2 [T][V]; 20.45 pJ per 256-bit access [V]
  -> 0.639 pJ/B; 20.7 mW / 0.639 pJ/B = 32.4 GB/s per tile [D].
* eDRAM-to-IMA bus 384 wires, 7 mW, 0.090 mm^2 per tile [T] (7500 um^2 per IMA [V]);
  0.054 pJ/bit [V]. Router 42 mW and 0.151 mm^2 shared by 4 tiles [T] (the library rounds the
  area to 0.150 mm^2); 20.74 pJ per 256 bits [V]. Network energy = router + bus = 0.648 + 0.432
  = 1.08 pJ/B [D]; 10.5 mW / 0.648 pJ/B = 16.2 GB/s per tile [D]. Router latency is not
  stated in ISAAC: ``network_hop_s`` is [A].
* 12 IMAs per tile (289 mW, 0.157 mm^2), 168 tiles per chip (sec. VII "14x12 tiles"); tile
  330 mW and 0.372 mm^2, 168 tiles 55.4 W and 62.5 mm^2, HyperTransport 10.4 W and 22.88 mm^2,
  chip 65.8 W and 85.4 mm^2 [T]; tile clock 1.2 GHz (Table I header) [T]. Sigmoid (2 units,
  0.52 mW, 0.0006 mm^2) and max-pool (0.4 mW, 0.00024 mm^2) per tile [T] are counted in the
  tile's power and area (Table I's tile total includes them) but never used by a transformer
  (GELU, softmax and layernorm run on the digital unit): idle in the simulation, at their
  stated power in the peak table. HyperTransport is not modelled.
* Not in ISAAC: ReRAM programming energy 10 pJ per cell and 1 us per row (multi-level
  program-and-verify; ISAAC assumes weights resident) [A]; the digital unit for attention and
  vector ops (Horowitz ISSCC 2014, 45 nm, not scaled, as ``accel_sim.energy``: int16 multiply
  0.8 pJ [D] + int32 add 0.1 pJ, fp16 lane-op 1.1 pJ; area 1128 + 137 um^2 per MAC, vector
  lane as ``accel_sim.area``) [A]; DRAM pJ/bit is an input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from accel_sim.config import Bytes
from accel_sim.kernels.crossbar_tiles import (
    book_shared_unit,
    crossbar_cycle_stepping,
    crossbar_event_schedule,
)
from accel_sim.results import OpResult, SimResult, op_identity
from accel_sim.run_hash import run_config_hash
from accel_sim.units import quantity
from accel_sim.vector_unit import INPUTS_PER_ELEMENT, LANE_OPS_PER_ELEMENT
from accel_sim.version import __version__
from workloads.ops import GemmOp, GemmRole, VectorKind, VectorOp, Workload

__all__ = [
    "CROSSBAR_AREA_COMPONENTS",
    "CROSSBAR_ENERGY_COMPONENTS",
    "IDLE_TILE_UNITS",
    "BlockStats",
    "CrossbarChipConfig",
    "CrossbarOpResult",
    "CrossbarSimResult",
    "block_stats",
    "chip_area_mm2",
    "peak_macs_per_s",
    "simulate_crossbar",
    "study_columns",
    "tile_area_mm2",
    "tile_power_w",
]

PJ = 1e-12
UM2_PER_MM2 = 1e6

Hertz = Annotated[float, quantity("Hz"), Field(gt=0)]
BytesPerSecond = Annotated[float, quantity("B/s"), Field(gt=0)]
Joules = Annotated[float, quantity("J"), Field(ge=0)]
Seconds = Annotated[float, Field(gt=0)]
SquareMicrons = Annotated[float, Field(ge=0)]

CROSSBAR_ENERGY_COMPONENTS = (
    "adc",
    "dac",
    "sample_hold",
    "crossbar",
    "shift_add",
    "registers",
    "buffer",
    "network",
    "digital",
    "dram",
)
CROSSBAR_AREA_COMPONENTS = (
    "adc",
    "dac",
    "sample_hold",
    "crossbar",
    "shift_add",
    "registers",
    "buffer",
    "network",
    "sigmoid",
    "max_pool",
    "digital",
)
# Tile units a transformer never uses (ISAAC's CNN units): in the peak tile power at their
# Table I power, never charged by the simulator.
IDLE_TILE_UNITS = ("sigmoid", "max_pool")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CrossbarArray(_Spec):
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


class Encoding(_Spec):
    """Precision and signed-weight encoding."""

    weight_bits: int = Field(default=16, gt=0, le=32, strict=True)
    input_bits: int = Field(default=16, gt=0, le=32, strict=True)
    output_bits: int = Field(default=16, gt=0, le=64, strict=True)  # outputs and partial sums
    signed_weights: Literal["offset", "differential"] = "offset"


class Tile(_Spec):
    """A tile: IMAs of crossbars, an eDRAM buffer and a share of the on-chip network."""

    imas: int = Field(default=12, gt=0, le=1024, strict=True)
    crossbars_per_ima: int = Field(default=8, gt=0, le=1024, strict=True)
    shift_adds_per_ima: int = Field(default=4, ge=0, le=1024, strict=True)  # 0: no S+A limit
    shift_add_ops_per_adc_cycle: int = Field(default=2, gt=0, le=1024, strict=True)  # [A]
    input_register_bytes: Bytes = 2 * 1024  # per IMA (ISAAC's IR)
    buffer_bytes: Bytes = 64 * 1024
    buffer_bytes_per_s: BytesPerSecond = 32.4e9
    network_bytes_per_s: BytesPerSecond = 16.2e9
    network_hop_s: Annotated[float, Field(ge=0)] = 10e-9  # tile-to-tile latency [A]

    @property
    def crossbars(self) -> int:
        return self.imas * self.crossbars_per_ima


class DigitalUnit(_Spec):
    """Digital MAC array (attention GEMMs) and SIMD lanes (vector ops), at the chip clock."""

    macs_per_cycle: int = Field(default=1024, gt=0, strict=True)
    vector_lanes: int = Field(default=64, gt=0, strict=True)
    pipeline_latency_cycles: int = Field(default=8, ge=0, strict=True)


class Dram(_Spec):
    bandwidth_bytes_per_s: BytesPerSecond
    energy_per_bit_j: Joules  # an input, never a hidden constant


class CrossbarEnergy(_Spec):
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
    sigmoid_power_w: Annotated[float, quantity("W"), Field(ge=0)] = 0.52e-3  # per tile, idle
    max_pool_power_w: Annotated[float, quantity("W"), Field(ge=0)] = 0.4e-3  # per tile, idle


class CrossbarArea(_Spec):
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


class CrossbarMapping(_Spec):
    """Mapping options."""

    replication: int | Literal["auto"] = 1
    max_replication: int = Field(default=64, gt=0, strict=True)
    program_row_s: Seconds = 1e-6  # assumption [A]
    execution: Literal["layer", "pipelined"] = "layer"

    @model_validator(mode="after")
    def _positive(self) -> CrossbarMapping:
        if self.replication != "auto" and self.replication < 1:
            raise ValueError(f"replication must be 'auto' or >= 1, got {self.replication}")
        return self


class CrossbarChipConfig(_Spec):
    """A compute-in-memory chip of ReRAM crossbar tiles."""

    kind: Literal["crossbar"]
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
    def pe_count(self) -> int:
        """Peak MACs per clock cycle (for ``SimResult.utilisation``)."""
        return max(1, round(peak_macs_per_s(self) / self.clock_hz))

    def config_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- mapping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockStats:
    """Crossbar blocks of one weight: ``[row_blocks, col_blocks]`` arrays (rows = inputs)."""

    mapped: np.ndarray  # bool: the block holds a kept weight
    active_rows: np.ndarray  # inputs of the block with a kept weight (DAC drives per slice)
    active_cols: np.ndarray  # outputs of the block with a kept weight (ADC conversions)
    busiest_adc: np.ndarray  # most active columns behind one ADC of the block
    adc_load: np.ndarray  # [row_blocks, col_blocks, adcs]: active columns behind each ADC
    active_inputs: int  # inputs of the whole weight with a kept weight
    active_outputs: int  # outputs of the whole weight with a kept weight

    @property
    def mapped_blocks(self) -> int:
        return int(self.mapped.sum())


def block_stats(
    mask: np.ndarray | None, n: int, k: int, rows: int, cols: int, adcs: int
) -> BlockStats:
    """Block statistics of a weight ``[out=n, in=k]`` (``mask`` None: dense) on
    ``rows x cols`` crossbars with ``adcs`` ADCs each (contiguous column groups)."""
    keep = np.ones((n, k), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != (n, k):
        raise ValueError(f"mask shape {keep.shape} is not the weight's ({n}, {k})")
    row_blocks, col_blocks = -(-k // rows), -(-n // cols)
    padded = np.zeros((row_blocks * rows, col_blocks * cols), dtype=bool)
    padded[:k, :n] = keep.T
    blocks = padded.reshape(row_blocks, rows, col_blocks, cols)
    row_live = blocks.any(axis=3)  # [rb, rows, cb]
    col_live = blocks.any(axis=1)  # [rb, cb, cols]
    groups = col_live.reshape(row_blocks, col_blocks, adcs, cols // adcs).sum(axis=3)
    return BlockStats(
        mapped=col_live.any(axis=2),
        active_rows=row_live.sum(axis=1).astype(np.int64),
        active_cols=col_live.sum(axis=2).astype(np.int64),
        busiest_adc=groups.max(axis=2).astype(np.int64),
        adc_load=groups.astype(np.int64),
        active_inputs=int(keep.any(axis=0).sum()),
        active_outputs=int(keep.any(axis=1).sum()),
    )


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrossbarOpResult(OpResult):
    """An op on the crossbar chip; weight GEMMs add their mapping and conversion counts."""

    crossbars: int = 0  # crossbars holding this weight (all replicas)
    blocks: int = 0  # crossbar-sized blocks of the weight
    mapped_blocks: int = 0  # blocks with a kept weight
    replication: int = 1
    adc_conversions: int = 0
    dac_drives: int = 0
    program_passes: int = 0  # reprogramming passes per forward (0: weights stay resident)


@dataclass(frozen=True)
class CrossbarSimResult(SimResult):
    """A forward pass on a crossbar chip: ``SimResult`` plus crossbar counts and area."""

    chip_crossbars: int = 0
    crossbars_per_tile: int = 1
    replication: int = 1
    fits_on_chip: bool = True
    area_breakdown_mm2: dict[str, float] = field(default_factory=dict)
    tile_area_mm2: float = 0.0
    execution: str = "layer"  # what ran: layer | pipelined (mapping.execution, or a fallback)
    execution_note: str = ""  # why pipelined fell back to layer by layer
    forward_cycles: int | None = None  # pipelined forward latency; None: sum of the ops

    @property
    def layer_cycles(self) -> int:
        """Sum of the ops' cycles: the forward latency run layer by layer."""
        return self.compute_cycles + self.stall_cycles

    @property
    def digital_cycles(self) -> int:
        """Busy cycles of the digital unit (attention GEMMs, vector ops): a lower bound on the
        forward latency in either execution, since every stage shares the one unit."""
        return sum(op.cycles for op in self.ops if op.mode in ("digital", "vector"))

    @property
    def cycles(self) -> int:
        """Forward latency in cycles: pipelined when it ran pipelined, else the ops' sum
        (``compute_cycles`` and ``stall_cycles`` stay per-op sums: busy time, not wall time)."""
        return self.forward_cycles if self.forward_cycles is not None else self.layer_cycles

    @property
    def energy_breakdown_j(self) -> dict[str, float]:
        return {
            c: sum(op.energy_breakdown_j.get(c, 0.0) for op in self.ops)
            for c in CROSSBAR_ENERGY_COMPONENTS
        }

    @property
    def crossbars_used(self) -> int:
        """Crossbars holding weights, all replicas (per pass when the model does not fit)."""
        return sum(getattr(op, "crossbars", 0) for op in self.ops)

    @property
    def crossbars_unreplicated(self) -> int:
        return sum(
            getattr(op, "crossbars", 0) // max(1, getattr(op, "replication", 1)) for op in self.ops
        )

    @property
    def crossbar_utilisation(self) -> float:
        """Crossbars used / crossbars on the chip."""
        return min(1.0, self.crossbars_used / self.chip_crossbars) if self.chip_crossbars else 0.0

    @property
    def area_mm2(self) -> float:
        return sum(self.area_breakdown_mm2.values())

    @property
    def mapped_area_mm2(self) -> float:
        """Area of the smallest chip of these tiles that holds one copy of the weights."""
        tiles = math.ceil(self.crossbars_unreplicated / self.crossbars_per_tile)
        return tiles * self.tile_area_mm2 + self.area_breakdown_mm2.get("digital", 0.0)

    @property
    def adc_conversions(self) -> int:
        return sum(getattr(op, "adc_conversions", 0) for op in self.ops)

    def totals(self) -> dict[str, float | None]:
        return {
            **super().totals(),
            "crossbars_used": self.crossbars_used,
            "crossbars_unreplicated": self.crossbars_unreplicated,
            "chip_crossbars": self.chip_crossbars,
            "crossbar_utilisation": self.crossbar_utilisation,
            "replication": self.replication,
            "fits_on_chip": self.fits_on_chip,
            "adc_conversions": self.adc_conversions,
            "area_mm2": self.area_mm2,
            "mapped_area_mm2": self.mapped_area_mm2,
            "layer_cycles": self.layer_cycles,
            "digital_cycles": self.digital_cycles,
        }

    def to_dict(self) -> dict:
        document = super().to_dict()
        document["area_breakdown_mm2"] = dict(self.area_breakdown_mm2)
        document["execution"] = self.execution
        if self.execution_note:
            document["execution_note"] = self.execution_note
        return document

    def to_frame(self) -> pd.DataFrame:
        frame = super().to_frame()
        for component in CROSSBAR_ENERGY_COMPONENTS:
            frame[f"energy_{component}_j"] = [
                op.energy_breakdown_j.get(component, 0.0) for op in self.ops
            ]
        for column in ("crossbars", "mapped_blocks", "adc_conversions", "dac_drives"):
            frame[column] = [getattr(op, column, 0) for op in self.ops]
        return frame


# --- per-tile power, area and peak throughput ------------------------------------------------


def tile_power_w(chip: CrossbarChipConfig) -> dict[str, float]:
    """Power of one tile with every crossbar busy on dense blocks, by component (the keys of
    ``tile_area_mm2``) [D]: the per-action energies the simulator charges, times their rates
    at full activity, plus the units a transformer never uses (``IDLE_TILE_UNITS``) at their
    stated power. Per crossbar and read: ``rows`` DAC drives (``dac_bits`` read out of the input
    register each), ``cols`` samples, conversions and IMA output-register updates; per block
    (``crossbars_per_block`` crossbars) and vector (``input_slices`` reads): ``cols`` outputs
    into the tile output register and through the tile shift-and-add."""
    xb, energy, tile = chip.crossbar, chip.energy, chip.tile
    crossbars = tile.crossbars
    reads_per_s = 1.0 / _read_s(chip)
    conversions_per_s = crossbars * xb.cols * reads_per_s
    register_bytes_per_s = crossbars * xb.rows * xb.dac_bits / 8 * reads_per_s
    outputs_per_s = crossbars / chip.crossbars_per_block * xb.cols * reads_per_s / chip.input_slices
    out_bytes = chip.encoding.output_bits / 8
    return {
        "adc": conversions_per_s * energy.adc_conversion_j,
        "dac": crossbars * xb.rows * reads_per_s * energy.dac_drive_j,
        "sample_hold": conversions_per_s * energy.sample_hold_j,
        "crossbar": crossbars * reads_per_s * energy.crossbar_read_j,
        "shift_add": conversions_per_s * energy.shift_add_j
        + outputs_per_s * energy.tile_shift_add_j,
        "registers": register_bytes_per_s * energy.input_register_j_per_byte
        + conversions_per_s * energy.ima_output_register_j
        + outputs_per_s * out_bytes * energy.tile_output_register_j_per_byte,
        "buffer": tile.buffer_bytes_per_s * energy.buffer_j_per_byte,
        "network": tile.network_bytes_per_s * energy.network_j_per_byte,
        "sigmoid": energy.sigmoid_power_w,
        "max_pool": energy.max_pool_power_w,
    }


def _read_s(chip: CrossbarChipConfig) -> float:
    """One crossbar read at full rate: the read cycle, or the ADCs' conversions if slower."""
    xb = chip.crossbar
    return max(xb.read_cycle_s, xb.cols / xb.adcs_per_crossbar / xb.adc_sample_rate_hz)


def tile_area_mm2(chip: CrossbarChipConfig) -> dict[str, float]:
    """Area of one tile by component (mm^2)."""
    xb, area, tile = chip.crossbar, chip.area, chip.tile
    crossbars = tile.crossbars
    um2 = {
        "adc": crossbars * xb.adcs_per_crossbar * area.adc_um2,
        "dac": crossbars * xb.rows * area.dac_um2,
        "sample_hold": crossbars * xb.cols * area.sample_hold_um2,
        "crossbar": crossbars * area.crossbar_um2 * (xb.rows * xb.cols) / (128 * 128),
        "shift_add": tile.imas * tile.shift_adds_per_ima * area.shift_add_um2
        + area.tile_shift_add_um2,
        "registers": tile.imas * area.ima_registers_um2 + area.tile_registers_um2,
        "buffer": area.edram_um2 * tile.buffer_bytes / (64 * 1024),
        "network": tile.imas * area.bus_um2_per_ima + area.router_um2_per_tile,
        "sigmoid": area.sigmoid_um2,
        "max_pool": area.max_pool_um2,
    }
    return {name: value / UM2_PER_MM2 for name, value in um2.items()}


def chip_area_mm2(chip: CrossbarChipConfig) -> dict[str, float]:
    """Chip area by component (``CROSSBAR_AREA_COMPONENTS``): tiles plus the digital unit."""
    per_tile = tile_area_mm2(chip)
    digital_um2 = (
        chip.digital.macs_per_cycle * chip.area.digital_mac_um2
        + chip.digital.vector_lanes * chip.area.vector_lane_um2
    )
    return {
        **{name: value * chip.tiles for name, value in per_tile.items()},
        "digital": digital_um2 / UM2_PER_MM2,
    }


def peak_macs_per_s(chip: CrossbarChipConfig) -> float:
    """Weight MACs per second with every crossbar busy on dense blocks."""
    xb = chip.crossbar
    weights_per_crossbar = xb.rows * xb.cols / chip.crossbars_per_block
    return chip.chip_crossbars * weights_per_crossbar / (chip.input_slices * _read_s(chip))


def study_columns(
    result: CrossbarSimResult, chip: CrossbarChipConfig
) -> tuple[dict, dict, dict, float, dict]:
    """The hardware columns of a study row (``studies.evaluate``) for a crossbar chip: (array
    and buffer columns, energy by component, chip area by component, peak ops/s, crossbar
    columns). ``zero_handling`` is ``crossbar``: empty blocks, rows and columns are skipped."""
    head = {
        "zero_handling": "crossbar",
        "weight_format": "crossbar",
        "pe_rows": chip.crossbar.rows,
        "pe_cols": chip.crossbar.cols,
        "sram_bytes": chip.tiles * chip.tile.buffer_bytes,
        "dram_bandwidth_bytes_per_s": chip.dram.bandwidth_bytes_per_s,
    }
    breakdown = result.energy_breakdown_j
    energy = {f"energy_{c}_j": breakdown[c] for c in CROSSBAR_ENERGY_COMPONENTS}
    extra = {
        "execution": result.execution,
        "crossbars_used": result.crossbars_used,
        "crossbars_unreplicated": result.crossbars_unreplicated,
        "chip_crossbars": result.chip_crossbars,
        "replication": result.replication,
        "adc_conversions": result.adc_conversions,
        "digital_cycles": result.digital_cycles,
        "mapped_area_mm2": result.mapped_area_mm2,
    }
    return head, energy, chip_area_mm2(chip), 2.0 * peak_macs_per_s(chip), extra


# --- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cost:
    seconds: float
    stall_seconds: float
    energy: dict[str, float]
    macs: int = 0
    useful_macs: int | None = None
    utilisation: float = 0.0
    mode: str = "digital"
    dram_bytes: float = 0.0
    buffer_read_bytes: float = 0.0
    buffer_write_bytes: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _energy(**parts: float) -> dict[str, float]:
    return {c: float(parts.get(c, 0.0)) for c in CROSSBAR_ENERGY_COMPONENTS}


def _ticks(seconds: float, chip: CrossbarChipConfig, at_least: int = 1) -> int:
    """Seconds as whole ADC sample periods (the crossbar pipeline's time base), rounded up."""
    return max(at_least, math.ceil(seconds * chip.crossbar.adc_sample_rate_hz - 1e-9))


@dataclass(frozen=True)
class CrossbarTiming:
    """Inputs of the ``accel_sim.kernels.crossbar_tiles`` engines for one weight GEMM (one
    replica; ticks = ADC sample periods)."""

    adc_load: np.ndarray  # [X, A] conversions per read of each ADC of each crossbar
    ima_of: np.ndarray  # [X] IMA of each crossbar
    sa_rate: int  # conversions per tick of one IMA's shift-and-add units (0: no limit)
    ima_busiest: np.ndarray  # [K] distinct IMA classes: busiest ADC of the IMA ...
    ima_sa_ticks: np.ndarray  # [K] ... and its shift-and-add ticks per read
    replicas: int
    slices: int
    read_ticks: int
    in_ticks: int
    net_ticks: int
    out_ticks: int
    ir_vectors: int  # vectors the IMA input registers hold

    def finish_ticks(self, arrivals: np.ndarray, engine: str = "event") -> np.ndarray:
        """Tick each vector's output is written (``engine``: event or stepping)."""
        arrivals = np.ascontiguousarray(arrivals, dtype=np.int64)
        scalars = (self.replicas, self.slices, self.read_ticks, self.in_ticks)
        scalars += (self.net_ticks, self.out_ticks, self.ir_vectors)
        if self.adc_load.shape[0] == 0:
            return np.zeros_like(arrivals)
        if engine == "event":
            return crossbar_event_schedule(self.ima_busiest, self.ima_sa_ticks, arrivals, *scalars)
        if engine == "stepping":
            return crossbar_cycle_stepping(
                self.adc_load, self.ima_of, self.sa_rate, arrivals, *scalars
            )
        raise ValueError(f"unknown engine {engine!r}: event or stepping")


def crossbar_timing(
    chip: CrossbarChipConfig, op: GemmOp, stats: BlockStats, replication: int
) -> CrossbarTiming:
    """Map one replica of ``op`` onto crossbars (blocks in row-major order, each block's
    ``crossbars_per_block`` slice crossbars side by side, IMAs filled in order, every op on
    IMAs of its own) and express its pipeline in ticks."""
    xb, enc, tile = chip.crossbar, chip.encoding, chip.tile
    per_block = chip.crossbars_per_block
    mapped = stats.mapped
    load = np.repeat(stats.adc_load[mapped].reshape(-1, xb.adcs_per_crossbar), per_block, axis=0)
    n_xbars = load.shape[0]
    ima_of = np.arange(n_xbars, dtype=np.int64) // tile.crossbars_per_ima
    sa_rate = tile.shift_adds_per_ima * tile.shift_add_ops_per_adc_cycle
    if n_xbars:
        starts = np.arange(0, n_xbars, tile.crossbars_per_ima)
        busiest = np.maximum.reduceat(load.max(axis=1), starts)
        conversions = np.add.reduceat(load.sum(axis=1), starts)
        sa = np.ones_like(conversions) if sa_rate == 0 else -(-conversions // sa_rate)
        classes = np.unique(np.stack([busiest, sa], axis=1), axis=0)
    else:
        classes = np.zeros((0, 2), dtype=np.int64)
    tiles = max(1, math.ceil(n_xbars / tile.crossbars))
    in_bytes, out_bytes = enc.input_bits / 8, enc.output_bits / 8
    ir_vectors = _register_depth(stats, per_block, ima_of, tile, in_bytes)
    sum_rows = int(stats.active_rows[mapped].sum())
    sum_cols = int(stats.active_cols[mapped].sum())
    buffer_bw, network_bw = tiles * tile.buffer_bytes_per_s, tiles * tile.network_bytes_per_s
    return CrossbarTiming(
        adc_load=np.ascontiguousarray(load, dtype=np.int64),
        ima_of=ima_of,
        sa_rate=sa_rate,
        ima_busiest=np.ascontiguousarray(classes[:, 0], dtype=np.int64),
        ima_sa_ticks=np.ascontiguousarray(classes[:, 1], dtype=np.int64),
        replicas=replication,
        slices=chip.input_slices,
        read_ticks=_ticks(xb.read_cycle_s, chip),
        in_ticks=_ticks(stats.active_inputs * in_bytes / buffer_bw, chip),
        net_ticks=_ticks((sum_rows * in_bytes + sum_cols * out_bytes) / network_bw, chip),
        out_ticks=_ticks(op.n * out_bytes / buffer_bw, chip),
        ir_vectors=ir_vectors,
    )


def _register_depth(
    stats: BlockStats, per_block: int, ima_of: np.ndarray, tile: Tile, in_bytes: float
) -> int:
    """Vectors the input registers hold: ``input_register_bytes`` over the bytes one vector
    needs in the fullest IMA (the active rows of each distinct row block it holds; slice
    crossbars of a block share their inputs). At least 1."""
    if ima_of.size == 0:
        return 1
    row_block = np.repeat(np.nonzero(stats.mapped)[0], per_block)
    rows = np.repeat(stats.active_rows[stats.mapped], per_block)
    keys = ima_of * stats.mapped.shape[0] + row_block
    unique, inverse = np.unique(keys, return_inverse=True)
    widest = np.zeros(len(unique), dtype=np.int64)
    np.maximum.at(widest, inverse, rows)
    per_ima = np.bincount(unique // stats.mapped.shape[0], weights=widest)
    return max(1, int(tile.input_register_bytes // (per_ima.max() * in_bytes)))


def _weight_gemm_cost(
    op: GemmOp, chip: CrossbarChipConfig, stats: BlockStats, replication: int, reprogram: bool
) -> _Cost:
    xb, enc, e = chip.crossbar, chip.encoding, chip.energy
    per_block = chip.crossbars_per_block
    vectors = op.m * op.count
    slices = chip.input_slices
    mapped = stats.mapped
    sum_rows = int(stats.active_rows[mapped].sum())
    sum_cols = int(stats.active_cols[mapped].sum())
    driven_fraction = float((stats.active_rows[mapped] / xb.rows).sum())
    in_bytes, out_bytes = enc.input_bits / 8, enc.output_bits / 8

    conversions = vectors * slices * sum_cols * per_block
    drives = vectors * slices * sum_rows * per_block
    merges = vectors * (sum_cols - stats.active_outputs)
    offsets = vectors * stats.active_outputs if enc.signed_weights == "offset" else 0
    network_bytes = vectors * (sum_rows * in_bytes + sum_cols * out_bytes)
    buffer_read = vectors * stats.active_inputs * in_bytes
    buffer_write = vectors * op.n * out_bytes

    crossbars = stats.mapped_blocks * per_block
    zeros = np.zeros(vectors, dtype=np.int64)
    if reprogram:
        pass_stats = _program_passes(op, stats, chip)
        passes = len(pass_stats)
        pass_ticks = [
            int(crossbar_timing(chip, op, p, 1).finish_ticks(zeros).max(initial=0))
            for p in pass_stats
        ]
        pass_crossbars = [p.mapped_blocks * per_block for p in pass_stats]
        stall_s = sum(_program_s(chip, p) for p in pass_stats)
    else:
        passes = 0
        timing = crossbar_timing(chip, op, stats, replication)
        pass_ticks = [int(timing.finish_ticks(zeros).max(initial=0))]
        pass_crossbars = [crossbars * replication]
        stall_s = 0.0
    compute_s = sum(pass_ticks) / xb.adc_sample_rate_hz
    written_cells = crossbars * xb.rows * xb.cols if reprogram else 0
    program_bytes = (
        stats.mapped_blocks * xb.rows * xb.cols * enc.weight_bits / 8 if reprogram else 0
    )
    energy = _energy(
        adc=conversions * e.adc_conversion_j,
        dac=drives * e.dac_drive_j,
        sample_hold=conversions * e.sample_hold_j,
        crossbar=vectors * slices * driven_fraction * per_block * e.crossbar_read_j
        + written_cells * e.cell_write_j,
        shift_add=conversions * e.shift_add_j + (merges + offsets) * e.tile_shift_add_j,
        registers=drives * xb.dac_bits / 8 * e.input_register_j_per_byte
        + conversions * e.ima_output_register_j
        + vectors * sum_cols * out_bytes * e.tile_output_register_j_per_byte,
        buffer=(buffer_read + buffer_write) * e.buffer_j_per_byte,
        network=network_bytes * e.network_j_per_byte,
        dram=program_bytes * 8 * chip.dram.energy_per_bit_j,
    )
    nnz = op.weight_nnz if op.weight_nnz is not None else op.n * op.k
    busy = sum(n * t for n, t in zip(pass_crossbars, pass_ticks, strict=True))
    busy /= xb.adc_sample_rate_hz
    capacity = chip.chip_crossbars * (compute_s + stall_s)
    return _Cost(
        seconds=compute_s,
        stall_seconds=stall_s,
        energy=energy,
        macs=op.macs,
        useful_macs=vectors * nnz,
        utilisation=busy / capacity if capacity else 0.0,
        mode="crossbar" if not reprogram else "crossbar-reprogrammed",
        dram_bytes=program_bytes,
        buffer_read_bytes=buffer_read,
        buffer_write_bytes=buffer_write,
        extra={
            "crossbars": crossbars * replication,
            "blocks": int(mapped.size),
            "mapped_blocks": stats.mapped_blocks,
            "replication": replication,
            "adc_conversions": conversions,
            "dac_drives": drives,
            "program_passes": passes,
        },
    )


def _program_passes(op: GemmOp, stats: BlockStats, chip: CrossbarChipConfig) -> list[BlockStats]:
    """The op's mapped blocks (row-major) in passes of at most the chip's crossbars, each
    pass as the block statistics of the weight with only that pass's blocks kept; none for
    a fully pruned weight (nothing to write, nothing to compute)."""
    xb = chip.crossbar
    per_pass = max(1, chip.chip_crossbars // chip.crossbars_per_block)
    blocks = np.argwhere(stats.mapped)
    if len(blocks) == 0:
        return []
    if len(blocks) <= per_pass:
        return [stats]
    keep = np.ones((op.n, op.k), dtype=bool) if op.mask is None else np.asarray(op.mask, bool)
    passes = []
    for first in range(0, len(blocks), per_pass):
        chosen = np.zeros_like(stats.mapped)
        chosen[tuple(blocks[first : first + per_pass].T)] = True
        # block [rb, cb] covers inputs rb * rows.. and outputs cb * cols..: [out, in] selector
        selector = np.kron(chosen.T, np.ones((xb.cols, xb.rows), dtype=bool))[: op.n, : op.k]
        kept = keep & selector
        passes.append(block_stats(kept, op.n, op.k, xb.rows, xb.cols, xb.adcs_per_crossbar))
    return passes


def _program_s(chip: CrossbarChipConfig, stats: BlockStats) -> float:
    """Time to write one pass's crossbars: rows programmed one at a time, all crossbars in
    parallel (``rows x program_row_s``), but no faster than its weights arrive from DRAM."""
    xb = chip.crossbar
    weight_bytes = stats.mapped_blocks * xb.rows * xb.cols * chip.encoding.weight_bits / 8
    return max(xb.rows * chip.mapping.program_row_s, weight_bytes / chip.dram.bandwidth_bytes_per_s)


def _digital_gemm_cost(op: GemmOp, chip: CrossbarChipConfig) -> _Cost:
    """An attention GEMM on the digital MAC array, operands in eDRAM."""
    in_bytes, out_bytes = chip.encoding.input_bits / 8, chip.encoding.output_bits / 8
    cycles = math.ceil(op.macs / chip.digital.macs_per_cycle) + chip.digital.pipeline_latency_cycles
    reads = op.count * (op.m * op.k + op.k * op.n) * in_bytes
    writes = op.count * op.m * op.n * out_bytes
    energy = _energy(
        digital=op.macs * chip.energy.digital_mac_j,
        buffer=(reads + writes) * chip.energy.buffer_j_per_byte,
    )
    seconds = cycles / chip.clock_hz
    utilisation = op.macs / (cycles * chip.digital.macs_per_cycle)
    return _Cost(
        seconds=seconds,
        stall_seconds=0.0,
        energy=energy,
        macs=op.macs,
        utilisation=utilisation,
        buffer_read_bytes=reads,
        buffer_write_bytes=writes,
    )


def _vector_cost(op: VectorOp, chip: CrossbarChipConfig) -> _Cost:
    """A vector op on the digital unit's lanes; the embedding gather reads DRAM."""
    word = chip.encoding.input_bits / 8
    lane_ops = op.elements * LANE_OPS_PER_ELEMENT[op.kind]
    cycles = math.ceil(lane_ops / chip.digital.vector_lanes) + chip.digital.pipeline_latency_cycles
    reads = op.elements * INPUTS_PER_ELEMENT.get(op.kind, 1) * word
    writes = op.outputs * word
    dram_bytes = op.elements * word if op.kind == VectorKind.EMBEDDING_GATHER else 0.0
    compute_s = cycles / chip.clock_hz
    dram_s = dram_bytes / chip.dram.bandwidth_bytes_per_s
    energy = _energy(
        digital=lane_ops * chip.energy.vector_op_j,
        buffer=(reads + writes) * chip.energy.buffer_j_per_byte,
        dram=dram_bytes * 8 * chip.dram.energy_per_bit_j,
    )
    return _Cost(
        seconds=compute_s,
        stall_seconds=max(0.0, dram_s - compute_s),
        energy=energy,
        dram_bytes=dram_bytes,
        buffer_read_bytes=reads,
        buffer_write_bytes=writes,
    )


def _replication(chip: CrossbarChipConfig, needed: int, max_vectors: int) -> int:
    option = chip.mapping.replication
    if needed == 0:
        return 1
    fit = chip.chip_crossbars // needed
    if option == "auto":
        return max(1, min(fit, chip.mapping.max_replication, max_vectors))
    return option if option * needed <= chip.chip_crossbars else 1


def _cycles(seconds: float, clock_hz: float) -> int:
    return math.ceil(seconds * clock_hz - 1e-9) if seconds > 0 else 0


_BRANCH_ROLES = frozenset({GemmRole.QUERY, GemmRole.KEY, GemmRole.VALUE})
_BARRIER_KINDS = frozenset({VectorKind.SOFTMAX})


class _SharedUnit:
    """The digital unit's busy calendar in ticks (``book_shared_unit``): every pipeline stage
    that runs on it books its jobs here, so their busy times never overlap."""

    def __init__(self) -> None:
        self.starts = np.zeros(64, dtype=np.int64)
        self.ends = np.zeros(64, dtype=np.int64)
        self.count = 0

    def book(self, ready: np.ndarray, durations: np.ndarray) -> np.ndarray:
        need = self.count + len(ready) + 1
        if need > len(self.starts):
            grown = max(need, 2 * len(self.starts))
            self.starts = np.resize(self.starts, grown)
            self.ends = np.resize(self.ends, grown)
        ready = np.ascontiguousarray(ready, dtype=np.int64)
        durations = np.ascontiguousarray(durations, dtype=np.int64)
        finish, self.count = book_shared_unit(self.starts, self.ends, self.count, ready, durations)
        return finish

    @property
    def busy_ticks(self) -> int:
        return int((self.ends[: self.count] - self.starts[: self.count]).sum())


def _serial_stage(ready: np.ndarray, service: int) -> np.ndarray:
    """A server taking tokens in order, ``service`` ticks each: ``out_v = max(out_{v-1},
    ready_v) + service`` in closed form (``service * (v + 1) + cummax(ready_u - service * u)``)."""
    steps = service * np.arange(len(ready), dtype=np.int64)
    return service + steps + np.maximum.accumulate(ready - steps)


def _pipelined_ticks(
    workload: Workload,
    chip: CrossbarChipConfig,
    timings: dict[int, CrossbarTiming],
    results: list[CrossbarOpResult],
) -> int:
    """Forward latency in ticks with tokens streamed through every layer's own crossbars.

    Each weight GEMM's input crosses the network to its tiles (one tile's port, in order:
    ``k x input bytes / network_bytes_per_s`` per token, then ``network_hop_s`` in flight) and
    the op's pipeline (``accel_sim.kernels.crossbar_tiles``) starts each token on arrival.
    Query, key and value read the same input side by side. Everything else runs on the one
    digital unit, which every stage shares (``_SharedUnit``: a job takes the earliest gap of
    the unit's calendar, stages booked in program order): streaming vector ops (layernorm,
    GELU, residual adds, the embedding) serve tokens in order, token ``v`` taking its share
    ``floor((v + 1) T / n) - floor(v T / n)`` of the op's layer-by-layer time ``T``. Attention
    (scores, softmax, context) needs every token's key and value: it is a barrier, one job of
    its layer-by-layer time from when the last token is ready, after which every token is
    ready. A non-weight op with a different number of vectors than tokens waits for the last
    token likewise. So the forward takes at least the digital unit's total busy time, and a
    model of one digital op takes exactly its layer-by-layer time."""
    tokens = workload.batch * workload.seq_len
    ready = np.zeros(tokens, dtype=np.int64)
    unit = _SharedUnit()
    source = joined = None  # input and outputs of a query/key/value group
    in_bytes = chip.encoding.input_bits / 8
    hop = _ticks(chip.tile.network_hop_s, chip, at_least=0)
    for op, result in zip(workload, results, strict=True):
        branch = isinstance(op, GemmOp) and op.role in _BRANCH_ROLES
        if joined is not None and not branch:
            ready, source, joined = joined, None, None
        op_ticks = _ticks(result.latency_s, chip, at_least=0)
        if isinstance(op, GemmOp) and op.weight_name is not None:
            inputs = ready if source is None else source
            vectors = op.m * op.count
            if vectors != len(inputs):
                inputs = np.full(vectors, inputs.max(initial=0), dtype=np.int64)
            link = _ticks(op.k * in_bytes / chip.tile.network_bytes_per_s, chip)
            arrivals = _serial_stage(inputs, link) + hop
            out = timings[id(op)].finish_ticks(arrivals)
            out = np.maximum(out, arrivals) if len(out) else out
            if branch:
                source = inputs if source is None else source
                joined = out if joined is None else np.maximum(joined, out)
            else:
                ready = out
        elif isinstance(op, GemmOp) or op.kind in _BARRIER_KINDS:
            start = np.array([ready.max(initial=0)], dtype=np.int64)
            done = unit.book(start, np.array([op_ticks], dtype=np.int64))[0]
            ready = np.full(len(ready), done, dtype=np.int64)
        elif op_ticks:
            shares = np.diff(np.arange(len(ready) + 1, dtype=np.int64) * op_ticks // len(ready))
            ready = unit.book(ready, shares)
    if joined is not None:
        ready = joined
    return int(ready.max(initial=0))


def simulate_crossbar(
    workload: Workload, chip: CrossbarChipConfig, seed: int = 0, *, baseline: bool | None = None
) -> CrossbarSimResult:
    """Run ``workload`` layer by layer on ``chip``; with masks attached (or ``baseline``
    True) also the dense mapping of the same model on the same chip as ``result.baseline``."""
    started = time.perf_counter()
    xb = chip.crossbar
    weighted = [op for op in workload.gemms if op.weight_name is not None]
    stats = {
        id(op): block_stats(op.mask, op.n, op.k, xb.rows, xb.cols, xb.adcs_per_crossbar)
        for op in weighted
    }
    needed = sum(s.mapped_blocks for s in stats.values()) * chip.crossbars_per_block
    fits = needed <= chip.chip_crossbars
    max_vectors = max((op.m * op.count for op in weighted), default=1)
    replication = _replication(chip, needed, max_vectors) if fits else 1

    results, timings = [], {}
    for op in workload:
        if isinstance(op, GemmOp) and op.weight_name is not None:
            cost = _weight_gemm_cost(op, chip, stats[id(op)], replication, reprogram=not fits)
            timings[id(op)] = crossbar_timing(chip, op, stats[id(op)], replication)
        elif isinstance(op, GemmOp):
            cost = _digital_gemm_cost(op, chip)
        else:
            cost = _vector_cost(op, chip)
        results.append(_op_result(op, cost, chip))

    execution, forward_cycles, note = chip.mapping.execution, None, ""
    if execution == "pipelined" and not fits:
        execution = "layer"
        note = (
            f"pipelined execution needs the whole model on the chip ({needed:,} crossbars, "
            f"chip {chip.chip_crossbars:,}): ran layer by layer with reprogramming"
        )
    elif execution == "pipelined":
        ticks = _pipelined_ticks(workload, chip, timings, results)
        forward_cycles = math.ceil(ticks * chip.clock_hz / xb.adc_sample_rate_hz - 1e-9)

    dense_run = None
    has_masks = any(op.mask is not None for op in workload.gemms)
    if baseline if baseline is not None else has_masks:
        dense_ops = tuple(
            dataclasses.replace(op, mask=None) if isinstance(op, GemmOp) else op for op in workload
        )
        dense = dataclasses.replace(workload, ops=dense_ops)
        dense_run = simulate_crossbar(dense, chip, seed, baseline=False)
    return CrossbarSimResult(
        model_name=workload.model_name,
        hardware_name=chip.name,
        batch=workload.batch,
        seq_len=workload.seq_len,
        clock_hz=chip.clock_hz,
        pe_count=chip.pe_count,
        ops=tuple(results),
        config_hash=run_config_hash(workload, chip, seed),
        version=__version__,
        seed=seed,
        simulation_s=time.perf_counter() - started,
        baseline=dense_run,
        chip_crossbars=chip.chip_crossbars,
        crossbars_per_tile=chip.tile.crossbars,
        replication=replication,
        fits_on_chip=fits,
        area_breakdown_mm2=chip_area_mm2(chip),
        tile_area_mm2=sum(tile_area_mm2(chip).values()),
        execution=execution,
        execution_note=note,
        forward_cycles=forward_cycles,
    )


def _op_result(op: GemmOp | VectorOp, cost: _Cost, chip: CrossbarChipConfig) -> CrossbarOpResult:
    is_gemm = isinstance(op, GemmOp)
    compute = _cycles(cost.seconds, chip.clock_hz)
    stall = _cycles(cost.stall_seconds, chip.clock_hz)
    return CrossbarOpResult(
        **op_identity(op),
        macs=cost.macs,
        compute_cycles=compute,
        stall_cycles=stall,
        latency_s=(compute + stall) / chip.clock_hz,
        energy_breakdown_j=cost.energy,
        dram_read_bytes=float(cost.dram_bytes),
        dram_write_bytes=0.0,
        sram_read_bytes=float(cost.buffer_read_bytes),
        sram_write_bytes=float(cost.buffer_write_bytes),
        utilisation=cost.utilisation,
        mode=cost.mode if is_gemm else "vector",
        useful_macs=cost.useful_macs,
        **cost.extra,
    )
