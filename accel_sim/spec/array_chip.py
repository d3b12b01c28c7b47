"""Array chips: a grid of MAC units behind three SRAM buffers, a vector unit and DRAM.

``datapath`` names what the grid is (each has a folder under ``accel_sim/datapaths``):

- ``systolic``: a weight-, output- or input-stationary systolic array (SCALE-Sim's model);
  with ``sparse.zero_handling`` gating, skipping (compaction) or N:M mode;
- ``pe-array``: an unstructured-sparse PE array (EIE / SparTen style): the ``rows x cols``
  PEs own interleaved output rows, and activations are broadcast through per-PE FIFOs;
- ``outer-product``: a dual-side sparse outer-product array (DSTC style): bitmap-coded
  activations and weights, nonzero pairs multiplied as outer products and merged into an
  accumulation buffer; its own parameters are the ``outer_product`` section.
- ``flexible``: a SIGMA-style flexible array (``rows x cols`` multipliers in Flex-DPEs with
  a multicast distribution network and a forwarding adder network; section ``flexible``).

How sparse the weights are belongs to the workload (masks); what the datapath does with the
zeros (``sparse.zero_handling``) and how weights are stored (``sparse.weight_format``) belong
here, as in Sparseloop. ``datapath: systolic`` is the default and is not written out when a
spec is dumped, so specs that predate the field keep their dumps and hashes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, StrictInt, field_validator, model_serializer, model_validator

from accel_sim.spec.cost_tables import AreaTable, EnergyTable, LeakageTable
from accel_sim.spec.dram import Dram
from accel_sim.spec.flexible_array import FlexibleArray
from accel_sim.spec.outer_product import OuterProductSpec
from accel_sim.spec.units import Bytes, Hertz, SpecModel
from safeio import limits

ARRAY_DATAPATHS = ("systolic", "pe-array", "outer-product", "flexible")


class Dataflow(StrEnum):
    WEIGHT_STATIONARY = "ws"
    OUTPUT_STATIONARY = "os"
    INPUT_STATIONARY = "is"


class Precision(StrEnum):
    INT8 = "int8"
    INT16 = "int16"
    FP16 = "fp16"
    FP32 = "fp32"

    @property
    def bytes(self) -> int:
        return {"int8": 1, "int16": 2, "fp16": 2, "fp32": 4}[self.value]


class WeightFormat(StrEnum):
    """How nonzero weights and their positions are stored (``accel_sim.formats``)."""

    DENSE = "dense"
    BITMAP = "bitmap"
    CSR = "csr"
    CSC = "csc"
    BSR = "bsr"
    NM = "nm"
    RLE = "rle"


class PEArray(SpecModel):
    """The grid: rows x cols MAC units."""

    rows: int = Field(gt=0, le=4096, strict=True)
    cols: int = Field(gt=0, le=4096, strict=True)
    dataflow: Dataflow = Dataflow.WEIGHT_STATIONARY
    precision: Precision = Precision.INT8
    clock_hz: Hertz = 1.0e9
    # Partial sums are accumulated at this width (int32 / fp32 accumulators).
    accumulator_bytes: int = Field(default=4, gt=0, le=8, strict=True)


class SramBuffer(SpecModel):
    """One on-chip scratchpad (ifmap, filter or ofmap)."""

    size_bytes: Bytes
    bytes_per_cycle: float = Field(
        ge=limits.MIN_PORT_BYTES_PER_CYCLE,
        le=limits.MAX_PORT_BYTES_PER_CYCLE,
        description="array-side bandwidth of the buffer",
    )


class Sram(SpecModel):
    """The three operand buffers; double buffering halves the resident capacity of each
    and lets DRAM transfers for the next fold overlap the current one."""

    ifmap: SramBuffer
    filter: SramBuffer
    ofmap: SramBuffer
    double_buffered: bool = True


class VectorUnit(SpecModel):
    """SIMD unit for softmax, GELU, LayerNorm, residual adds and gathers."""

    lanes: int = Field(gt=0, le=65536, strict=True)
    pipeline_latency_cycles: int = Field(
        default=8, ge=0, le=limits.MAX_PIPELINE_CYCLES, strict=True
    )


class ZeroHandling(StrEnum):
    """What the datapath does with zero weights (Sparseloop's split: a property of the
    hardware, separate from how sparse the workload's masks are)."""

    NONE = "none"  # zeros are multiplied like any other value
    GATING = "gating"  # MAC and operand reads gated off: energy saved, no time saved
    SKIPPING = "skipping"  # systolic: compacted at skip_granularity; pe-array: zeros skipped
    NM = "nm"  # N:M sparse tensor mode (indices select the inputs)


# What each array datapath can do with zeros.
ZERO_HANDLING_BY_DATAPATH = {
    "systolic": frozenset(ZeroHandling),
    "pe-array": frozenset({ZeroHandling.NONE, ZeroHandling.SKIPPING}),
    "outer-product": frozenset({ZeroHandling.NONE, ZeroHandling.SKIPPING}),
    "flexible": frozenset({ZeroHandling.NONE, ZeroHandling.SKIPPING}),
}


class SparseSupport(SpecModel):
    """Sparse execution: how weights are stored and what the datapath does with zeros."""

    zero_handling: ZeroHandling = ZeroHandling.NONE
    # How weights are stored in DRAM and SRAM (accel_sim.formats); traffic counts values
    # plus metadata, so a compressed format helps memory-bound layers even without skipping.
    weight_format: WeightFormat = WeightFormat.DENSE
    # Skipping: weights are compacted in groups of this many rows of the compacted dimension
    # (K rows per column strip under weight-stationary).
    skip_granularity: int = Field(default=1, gt=0, le=4096, strict=True)
    # N:M mode and the nm format: at most N nonzeros in every group of M along `in`.
    nm: tuple[StrictInt, StrictInt] = (2, 4)  # whole numbers: 2.0 or 1e300 are refused
    # Banked ifmap SRAM feeding the array through a crossbar; None = one bank per array row.
    ifmap_banks: int | None = Field(default=None, gt=0, le=65536, strict=True)
    # pe-array: activation FIFO depth per PE, counting the entry in progress (a property of
    # the array, kept by its baseline).
    fifo_depth: int = Field(default=8, gt=0, le=1 << 20, strict=True)
    # Format metadata widths (accel_sim.formats.format_size); None = minimum that addresses.
    format_block: tuple[StrictInt, StrictInt] = (4, 4)
    index_bits: int | None = Field(default=None, gt=0, le=64, strict=True)
    pointer_bits: int = Field(default=32, gt=0, le=64, strict=True)
    run_bits: int = Field(default=4, gt=0, le=32, strict=True)

    @field_validator("nm")
    @classmethod
    def _valid_nm(cls, value: tuple[int, int]) -> tuple[int, int]:
        n, m = value
        if not (1 <= n <= m and m >= 2):
            raise ValueError(f"expected [N, M] with 1 <= N <= M and M >= 2, got {list(value)}")
        if m > limits.MAX_NM_M:
            raise ValueError(f"M is {m}: the limit is {limits.MAX_NM_M}")
        return value

    @field_validator("format_block")
    @classmethod
    def _valid_block(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError(f"expected [rows, cols] of positive ints, got {list(value)}")
        if max(value) > limits.MAX_FORMAT_BLOCK:
            raise ValueError(
                f"expected [rows, cols] of at most {limits.MAX_FORMAT_BLOCK} each, "
                f"got {list(value)}"
            )
        return value


class MappingOptions(SpecModel):
    """How the mapper (``accel_sim.mapping``) places each GEMM on the array.

    ``search: best`` searches loop order, M tiling and the split across cores per GEMM (and
    per sparse mode: the dense baseline gets its own best mapping); ``fixed`` is SCALE-Sim's
    loop order, untiled, split along the outputs when there are several cores. ``objective``:
    ``latency`` (energy breaks ties), ``energy`` or ``edp`` (their product). ``preload:
    overlapped`` double-buffers the stationary operand, so a fold's preload and drain hide
    behind the previous fold's stream; ``serial`` pays them every fold, as SCALE-Sim does."""

    search: Literal["best", "fixed"] = "best"
    objective: Literal["latency", "energy", "edp"] = "latency"
    preload: Literal["overlapped", "serial"] = "overlapped"


class Residency(SpecModel):
    """What stays on chip between ops and inferences.

    ``activations_on_chip``: an op's output stays in the buffers for the ops that read it when
    it fits (no DRAM round trip; reported per op as DRAM bytes avoided). ``weights_resident``:
    the compressed weights stay on chip across inferences when all of them fit the weight
    buffers (the run says when they do not)."""

    activations_on_chip: bool = True
    weights_resident: bool = False


class FifoArray(SpecModel):
    """The unstructured-sparse PE array's own parameters (``datapath: pe-array``; EIE, Han et
    al., ISCA 2016). ``sparse.fifo_depth`` is its activation queue depth, counting the entry a
    PE is working on (EIE's queue; depth 1 is lockstep)."""

    # Activations the central unit broadcasts per cycle (EIE: one, from its LNZD tree).
    broadcast_width: int = Field(default=1, gt=0, le=4096, strict=True)
    # A per-PE column-occupancy bit at the FIFO input drops activations a PE holds no weight
    # for, so it spends no cycle on them (SparTen-style); EIE reads every column's pointers.
    filter_empty_columns: bool = False
    # Zero activations are never broadcast (EIE's leading non-zero detection).
    skip_zero_activations: bool = True
    # Weight sharing: weights stored as indices of this many bits into a per-matrix codebook
    # of 2**bits words (EIE: 4 bits); None stores the values at the array's precision.
    weight_bits: int | None = Field(default=None, gt=0, le=16, strict=True)


class HardwareConfig(SpecModel):
    """An array chip (``datapath`` systolic, pe-array, outer-product or flexible): ``cores``
    copies of the array, each with its own ``sram`` buffers, behind an optional shared
    ``global_buffer`` and shared DRAM."""

    name: str = Field(min_length=1)
    description: str = ""
    datapath: Literal["systolic", "pe-array", "outer-product", "flexible"] = "systolic"
    pe_array: PEArray
    sram: Sram
    dram: Dram
    vector_unit: VectorUnit
    cores: int = Field(default=1, gt=0, le=4096, strict=True)
    global_buffer: SramBuffer | None = None
    mapping: MappingOptions = MappingOptions()
    residency: Residency = Residency()
    fifo_array: FifoArray = FifoArray()
    sparse: SparseSupport = SparseSupport()
    energy: EnergyTable = EnergyTable()
    leakage: LeakageTable = LeakageTable()
    area: AreaTable = AreaTable()
    # datapath: outer-product only (None there means the defaults); not dumped when None.
    outer_product: OuterProductSpec | None = None
    # datapath flexible only (None there: the defaults); left out of other chips' dumps.
    flexible: FlexibleArray | None = None

    @model_validator(mode="after")
    def _zero_handling_fits_datapath(self) -> HardwareConfig:
        allowed = ZERO_HANDLING_BY_DATAPATH[self.datapath]
        if self.sparse.zero_handling not in allowed:
            names = ", ".join(sorted(z.value for z in allowed))
            raise ValueError(
                f"sparse.zero_handling {self.sparse.zero_handling.value!r} is not available on "
                f"datapath {self.datapath!r}: expected one of {names}"
            )
        if self.outer_product is not None and self.datapath != "outer-product":
            raise ValueError(
                f"outer_product: is a section of datapath 'outer-product', not {self.datapath!r}"
            )
        if self.datapath == "outer-product":
            fmt, skipping = self.sparse.weight_format, self.sparse.zero_handling
            if fmt not in (WeightFormat.DENSE, WeightFormat.BITMAP) or (
                skipping == ZeroHandling.SKIPPING and fmt != WeightFormat.BITMAP
            ):
                raise ValueError(
                    f"sparse.weight_format {fmt.value!r} on datapath 'outer-product': expected "
                    "bitmap (skipping reads bitmap-coded operands) or dense (zero_handling none)"
                )
        return self

    @model_validator(mode="after")
    def _fifo_array_only_on_pe_arrays(self) -> HardwareConfig:
        if self.datapath != "pe-array" and self.fifo_array != FifoArray():
            raise ValueError(
                f"fifo_array configures the pe-array datapath; this chip's datapath is "
                f"{self.datapath!r}: remove fifo_array or set datapath: pe-array"
            )
        return self

    @model_validator(mode="after")
    def _flexible_section_fits_datapath(self) -> HardwareConfig:
        if self.flexible is not None and self.datapath != "flexible":
            raise ValueError(
                f"flexible: this section is for datapath 'flexible', not {self.datapath!r}"
            )
        if self.datapath == "flexible" and self.pe_array.dataflow != Dataflow.WEIGHT_STATIONARY:
            raise ValueError(
                "pe_array.dataflow: datapath 'flexible' keeps the weights stationary: "
                f"expected 'ws', got {self.pe_array.dataflow.value!r}"
            )
        return self

    @model_serializer(mode="wrap")
    def _omit_defaults_of_other_datapaths(self, handler):
        """A systolic chip is dumped without ``datapath``, without the PE array's untouched
        ``fifo_array`` section and without an absent ``outer_product`` section, so its dump
        (and config hash) is what it was before they existed."""
        data = handler(self)
        if data.get("datapath") == "systolic":
            del data["datapath"]
        if self.fifo_array == FifoArray():
            data.pop("fifo_array", None)
        if data.get("outer_product", False) is None:
            del data["outer_product"]
        if data.get("flexible", ...) is None:
            del data["flexible"]
        return data

    @property
    def flexible_array(self) -> FlexibleArray:
        """The ``flexible`` section, defaults when it is left out."""
        return self.flexible if self.flexible is not None else FlexibleArray()

    @property
    def word_bytes(self) -> int:
        return self.pe_array.precision.bytes

    @property
    def clock_hz(self) -> float:
        return self.pe_array.clock_hz

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_bytes_per_s / self.pe_array.clock_hz

    @property
    def ifmap_banks(self) -> int:
        return self.sparse.ifmap_banks or self.pe_array.rows

    @property
    def pe_count(self) -> int:
        """MAC units on the chip, all cores."""
        return self.pe_array.rows * self.pe_array.cols * self.cores

    @property
    def core_sram_bytes(self) -> int:
        return self.sram.ifmap.size_bytes + self.sram.filter.size_bytes + self.sram.ofmap.size_bytes

    @property
    def sram_bytes(self) -> int:
        """On-chip buffer bytes: every core's buffers and the global buffer."""
        shared = self.global_buffer.size_bytes if self.global_buffer is not None else 0
        return self.core_sram_bytes * self.cores + shared

