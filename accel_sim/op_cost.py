"""What one operation costs on the hardware, before energy is priced."""

from __future__ import annotations

from dataclasses import dataclass

from accel_sim.energy import ActionCounts


@dataclass(frozen=True)
class OpCost:
    """Cycles and action counts of one op (all instances of it)."""

    compute_cycles: int
    stall_cycles: int
    counts: ActionCounts
    folds: int = 0
    sram_limited_cycles: int = 0

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles
