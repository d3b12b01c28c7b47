"""ReRAM crossbar chips (ISAAC class): spec, mapping of masked weights onto crossbars, timing,
energy and area.

A ``CrossbarChipConfig`` (``accel_sim.spec.crossbar_chip``) is the hardware spec of a
compute-in-memory chip (YAML with ``datapath: crossbar``). The ``CrossbarChip`` datapath runs
a workload on it and returns a ``CrossbarSimResult`` (a ``SimResult`` with crossbar counts and
an area breakdown). The model is split by concern: ``mapping`` (blocks, replication,
reprogramming passes), ``timing`` (the per-op pipeline and the pipelined forward pass),
``costs`` (per-op counts and energy), ``power_area`` (peak power and area), ``results`` and
``datapath``.

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
layer's own crossbars (``timing.pipelined_ticks``: tile-to-tile transfers over one tile's network
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

from accel_sim.datapaths.crossbar.datapath import CrossbarChip
from accel_sim.datapaths.crossbar.mapping import BlockStats, block_stats
from accel_sim.datapaths.crossbar.power_area import (
    chip_area_mm2,
    peak_macs_per_s,
    tile_area_mm2,
    tile_power_w,
)
from accel_sim.datapaths.crossbar.results import (
    CROSSBAR_AREA_COMPONENTS,
    CROSSBAR_ENERGY_COMPONENTS,
    IDLE_TILE_UNITS,
    CrossbarOpResult,
    CrossbarSimResult,
)
from accel_sim.datapaths.crossbar.timing import CrossbarTiming, crossbar_timing
from accel_sim.spec.crossbar_chip import CrossbarChipConfig

__all__ = [
    "CROSSBAR_AREA_COMPONENTS",
    "CROSSBAR_ENERGY_COMPONENTS",
    "IDLE_TILE_UNITS",
    "BlockStats",
    "CrossbarChip",
    "CrossbarChipConfig",
    "CrossbarOpResult",
    "CrossbarSimResult",
    "CrossbarTiming",
    "block_stats",
    "chip_area_mm2",
    "crossbar_timing",
    "peak_macs_per_s",
    "tile_area_mm2",
    "tile_power_w",
]
