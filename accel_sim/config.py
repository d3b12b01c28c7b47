"""Hardware specification of the simulated accelerator: validated data, SI units.

A ``HardwareConfig`` is pure data (pydantic, unknown keys rejected). It is built from a YAML
file or a preset name in ``configs/hw/``; quantities may be written with units at the edge
(``"64 KiB"``, ``"1 GHz"``, ``"16 GB/s"``, ``"8 pJ"``) and are stored as plain SI numbers.
Bad files raise one ``HardwareConfigError`` naming the field and the expected form.
"""

from __future__ import annotations

import hashlib
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from accel_sim.area import AreaTable
from accel_sim.energy import EnergyTable, LeakageTable
from accel_sim.formats import WeightFormat
from accel_sim.units import parse_quantity, quantity
from safeio.errors import format_validation_error

if TYPE_CHECKING:
    from accel_sim.crossbar import CrossbarChipConfig

PRESET_DIR_ENV = "COSIM_HW_DIR"


def _whole_bytes(value: object) -> object:
    number = parse_quantity(value, "B")
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError(f"expected a whole number of bytes, got {value!r}")
        return int(number)
    return number


Bytes = Annotated[int, BeforeValidator(_whole_bytes), Field(gt=0)]
Hertz = Annotated[float, quantity("Hz"), Field(gt=0)]
BytesPerSecond = Annotated[float, quantity("B/s"), Field(gt=0)]
JoulesPerBit = Annotated[float, quantity("J"), Field(ge=0)]


class HardwareConfigError(ValueError):
    """A hardware spec that cannot be used; the message names the field and expected form."""


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


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PEArray(_Spec):
    """The systolic array: rows x cols MAC units."""

    rows: int = Field(gt=0, le=4096, strict=True)
    cols: int = Field(gt=0, le=4096, strict=True)
    dataflow: Dataflow = Dataflow.WEIGHT_STATIONARY
    precision: Precision = Precision.INT8
    clock_hz: Hertz = 1.0e9
    # Partial sums are accumulated at this width (int32 / fp32 accumulators).
    accumulator_bytes: int = Field(default=4, gt=0, le=8, strict=True)


class SramBuffer(_Spec):
    """One on-chip scratchpad (ifmap, filter or ofmap)."""

    size_bytes: Bytes
    bytes_per_cycle: float = Field(gt=0, description="array-side bandwidth of the buffer")


class Sram(_Spec):
    """The three operand buffers; double buffering halves the resident capacity of each
    and lets DRAM transfers for the next fold overlap the current one."""

    ifmap: SramBuffer
    filter: SramBuffer
    ofmap: SramBuffer
    double_buffered: bool = True


class Dram(_Spec):
    bandwidth_bytes_per_s: BytesPerSecond
    # An input, never a hidden constant: it varies ~5x across sources (energy-tables.md).
    energy_per_bit_j: JoulesPerBit


class VectorUnit(_Spec):
    """SIMD unit for softmax, GELU, LayerNorm, residual adds and gathers."""

    lanes: int = Field(gt=0, le=65536, strict=True)
    pipeline_latency_cycles: int = Field(default=8, ge=0, strict=True)


class ZeroHandling(StrEnum):
    """What the hardware does with zero weights (Sparseloop's split: this is a property of
    the hardware, separate from how sparse the workload's masks are)."""

    NONE = "none"  # zeros are multiplied like any other value
    GATING = "gating"  # MAC and operand reads gated off: energy saved, no time saved
    SKIPPING = "skipping"  # compacted on the systolic array at skip_granularity
    NM = "nm"  # N:M sparse tensor mode (indices select the inputs)
    UNSTRUCTURED_PE = "unstructured-pe"  # EIE/SparTen-style array with per-PE FIFOs


class SparseSupport(_Spec):
    """Sparse execution: how weights are stored and what the datapath does with zeros."""

    zero_handling: ZeroHandling = ZeroHandling.NONE
    # How weights are stored in DRAM and SRAM (accel_sim.formats); traffic counts values
    # plus metadata, so a compressed format helps memory-bound layers even without skipping.
    weight_format: WeightFormat = WeightFormat.DENSE
    # Skipping: weights are compacted in groups of this many rows of the compacted dimension
    # (K rows per column strip under weight-stationary).
    skip_granularity: int = Field(default=1, gt=0, le=4096, strict=True)
    # N:M mode and the nm format: at most N nonzeros in every group of M along `in`.
    nm: tuple[int, int] = (2, 4)
    # Banked ifmap SRAM feeding the array through a crossbar; None = one bank per array row.
    ifmap_banks: int | None = Field(default=None, gt=0, le=65536, strict=True)
    # Unstructured-sparse PE array: activation FIFO depth per PE.
    fifo_depth: int = Field(default=8, gt=0, le=1 << 20, strict=True)
    # Format metadata widths (accel_sim.formats.format_size); None = minimum that addresses.
    format_block: tuple[int, int] = (4, 4)
    index_bits: int | None = Field(default=None, gt=0, le=64, strict=True)
    pointer_bits: int = Field(default=32, gt=0, le=64, strict=True)
    run_bits: int = Field(default=4, gt=0, le=32, strict=True)

    @field_validator("nm")
    @classmethod
    def _valid_nm(cls, value: tuple[int, int]) -> tuple[int, int]:
        n, m = value
        if not (1 <= n <= m and m >= 2):
            raise ValueError(f"expected [N, M] with 1 <= N <= M and M >= 2, got {list(value)}")
        return value

    @field_validator("format_block")
    @classmethod
    def _valid_block(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError(f"expected [rows, cols] of positive ints, got {list(value)}")
        return value


class HardwareConfig(_Spec):
    name: str = Field(min_length=1)
    description: str = ""
    pe_array: PEArray
    sram: Sram
    dram: Dram
    vector_unit: VectorUnit
    sparse: SparseSupport = SparseSupport()
    energy: EnergyTable = EnergyTable()
    leakage: LeakageTable = LeakageTable()
    area: AreaTable = AreaTable()

    @property
    def word_bytes(self) -> int:
        return self.pe_array.precision.bytes

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_bytes_per_s / self.pe_array.clock_hz

    @property
    def ifmap_banks(self) -> int:
        return self.sparse.ifmap_banks or self.pe_array.rows

    @property
    def pe_count(self) -> int:
        return self.pe_array.rows * self.pe_array.cols

    def config_hash(self) -> str:
        """A stable hash of every field, for keying results."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def hardware_from_dict(data: Any, source: str = "<dict>") -> HardwareConfig | CrossbarChipConfig:
    """Validate a mapping into a ``HardwareConfig`` (or, with ``kind: crossbar``, a
    ``CrossbarChipConfig``); errors name the offending field."""
    if not isinstance(data, dict):
        raise HardwareConfigError(
            f"invalid hardware config {source}: expected a YAML mapping of fields, "
            f"got {'an empty document' if data is None else type(data).__name__}"
        )
    kind = data.get("kind")
    if kind is not None and kind != "crossbar":
        raise HardwareConfigError(
            f"invalid hardware config {source}: kind: {kind!r} is not a hardware kind: "
            "expected 'crossbar' (a ReRAM crossbar chip) or no kind (a systolic or "
            "sparse PE array)"
        )
    try:
        # --- crossbar chips (accel_sim.crossbar; imported here: it imports this module) ---
        if kind == "crossbar":
            from accel_sim.crossbar import CrossbarChipConfig

            return CrossbarChipConfig.model_validate(data)
        # --- end crossbar chips ---
        return HardwareConfig.model_validate(data)
    except ValidationError as error:
        raise HardwareConfigError(
            format_validation_error(
                error, "hardware config", source, "check spelling; see configs/hw/ for valid keys"
            )
        ) from None


def preset_dir() -> Path:
    """``configs/hw`` beside the packages (override with $COSIM_HW_DIR)."""
    override = os.environ.get(PRESET_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "configs" / "hw"


def list_presets() -> list[str]:
    directory = preset_dir()
    return sorted(path.stem for path in directory.glob("*.yaml")) if directory.is_dir() else []


def load_hardware(source: str | os.PathLike[str]) -> HardwareConfig | CrossbarChipConfig:
    """Load a preset by name (``systolic-32x32-ws``) or a YAML file by path."""
    path = Path(source)
    is_file_like = path.suffix in {".yaml", ".yml"} or os.sep in str(source)
    if not is_file_like:
        candidate = preset_dir() / f"{source}.yaml"
        if not candidate.is_file():
            names = ", ".join(list_presets()) or "(none found)"
            raise HardwareConfigError(
                f"unknown hardware preset {str(source)!r}: expected a preset name ({names}) "
                "or a path to a .yaml file"
            )
        path = candidate
    if not path.is_file():
        raise HardwareConfigError(f"hardware config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise HardwareConfigError(f"hardware config {path} is not valid YAML: {error}") from None
    return hardware_from_dict(data, source=str(path))
