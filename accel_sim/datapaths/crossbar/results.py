"""Results of a forward pass on a crossbar chip: per-op crossbar counts, chip totals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from accel_sim.results import OpResult, SimResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CROSSBAR_AREA_COMPONENTS",
    "CROSSBAR_ENERGY_COMPONENTS",
    "IDLE_TILE_UNITS",
    "CrossbarOpResult",
    "CrossbarSimResult",
]

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

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("crossbars used", f"{self.crossbars_used:,} of {self.chip_crossbars:,}"),
            ("  one copy of the weights", f"{self.crossbars_unreplicated:,}"),
            ("  replication", f"{self.replication}x"),
        ]
        if self.baseline is not None:
            freed = self.baseline.crossbars_unreplicated - self.crossbars_unreplicated
            rows.append(("crossbars freed vs dense", f"{freed:,}"))
        return [
            *rows,
            ("crossbar utilisation", f"{100 * self.crossbar_utilisation:.1f} %"),
            ("chip area", f"{self.area_mm2:,.2f} mm²"),
            ("area holding the weights", f"{self.mapped_area_mm2:,.2f} mm²"),
        ]

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
