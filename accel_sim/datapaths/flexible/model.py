"""One weight on the flexible array: its folds per strip width, and the fastest schedule.

``PackedWeight`` unpacks the spec into the kernels of ``accel_sim.kernels.flexible`` (whose
docstring states the packing, timing and memory rules): ``P = pe_array.rows x
pe_array.cols`` multipliers per core in Flex-DPEs of ``min(flexible.dpe_size, P)``, a
distribution network of ``B`` words a cycle (``flexible.distribution_bandwidth``, else the
ifmap SRAM port's words a cycle) that loads ``flexible.load_bandwidth`` stationary words a
cycle (else ``B``). Per tile the strip width (``B``, ``2B``, ``4B``, ... narrowest first
until a width is slower than the best so far, and all of K) and the output block (all N, or
the most outputs whose partial sums fit the ofmap buffer) are chosen: whichever schedule
finishes first, stalls included.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels import flexible as kf
from accel_sim.kernels import fold_memory as fm
from accel_sim.mapping.compose import TileRun
from accel_sim.spec import HardwareConfig

__all__ = [
    "PackedWeight",
    "distribution_bandwidth",
    "flex_dpe_size",
    "load_bandwidth",
    "multipliers",
]


def multipliers(hw: HardwareConfig) -> int:
    """Multipliers of one core (``pe_array.rows x pe_array.cols``)."""
    return hw.pe_array.rows * hw.pe_array.cols


def flex_dpe_size(hw: HardwareConfig) -> int:
    """Multipliers per Flex-DPE (a core smaller than ``flexible.dpe_size`` is one Flex-DPE)."""
    return min(hw.flexible_array.dpe_size, multipliers(hw))


def distribution_bandwidth(hw: HardwareConfig) -> int:
    """Distinct words the distribution network delivers per cycle."""
    given = hw.flexible_array.distribution_bandwidth
    if given is not None:
        return given
    return max(1, int(hw.sram.ifmap.bytes_per_cycle // hw.word_bytes))


def load_bandwidth(hw: HardwareConfig) -> int:
    """Stationary words loaded per cycle."""
    given = hw.flexible_array.load_bandwidth
    return given if given is not None else distribution_bandwidth(hw)


class PackedWeight:
    """A keep-mask ``[N, K]`` (None: every weight of an ``shape`` weight kept) on ``hw``'s
    flexible array, packed once per strip width and output block and run for any number of
    token rows under any ``FoldPlan``."""

    def __init__(
        self, mask: np.ndarray | None, hw: HardwareConfig, shape: tuple[int, int] | None = None
    ) -> None:
        if mask is None:
            assert shape is not None, "a dense weight needs its shape"
            self.n, self.k = shape
            none = np.zeros(0, dtype=np.int64)
            bits = kf.MaskBits(np.zeros((0, 0), dtype=np.uint64), none, none, none)  # unread
        else:
            self.n, self.k = mask.shape
            bits = kf.mask_bits(mask)
        self.hw = hw
        self.multipliers = multipliers(hw)
        self.dpe = flex_dpe_size(hw)
        self.bandwidth = distribution_bandwidth(hw)
        self.load_bandwidth = load_bandwidth(hw)
        self.levels = kf.fan_levels(self.dpe)
        self._widths = np.array(self.widths(), dtype=np.int64)
        self.live_outputs = self.n if mask is None else int(np.count_nonzero(bits.degree))
        kept = self.n * self.k if mask is None else int(bits.degree.sum())
        # what ``kf.packing`` and the floors (``kf.traffic_floor``, ``kf.group_floor``) read,
        # by position (``kf.packing``'s docstring lists them); the packings themselves live
        # in a Numba dictionary
        self._weight = (*bits, mask is None, self.n, self.k, self.multipliers, self.dpe,
                        self.bandwidth, self.load_bandwidth, self.live_outputs,
                        kf.traffic_cache(len(self._widths), self.n), kept)  # fmt: skip
        self._packings = kf.new_packings()

    def widths(self) -> list[int]:
        """Strip widths to try: ``B, 2B, 4B, ...`` below K, and K."""
        widths, width = [], self.bandwidth
        while width < self.k:
            widths.append(width)
            width *= 2
        widths.append(self.k)
        return widths

    def dram_bytes(self, mem: fm.MemoryParams) -> tuple[float, float, float]:
        """What any schedule of some token rows moves in DRAM at least
        (``kf.flexible_schedule``'s rules), each unless its operand is on chip: the weight,
        ``filter_dram_scale x K N`` words (none when it keeps no weight); then a row's live
        inputs once (a group that reloads its strip or overflows the buffer fetches more) and
        its outputs once. Spilled partial sums only add to that. (weight bytes, input bytes
        a row, output bytes a row)."""
        word = mem.word_bytes
        kept = self.live_outputs > 0
        weight = self.k * self.n * word * mem.filter_dram_scale if kept else 0.0
        return weight, float(kf.live_inputs(self._weight) * word), float(self.n * word)

    def blocks(self, m: int, mem: fm.MemoryParams) -> list[int]:
        """Output blocks to try: all N at once (every output's partial sums live while the
        strips go by), and, when ``m`` rows of those overflow the ofmap buffer, the largest
        power of two of outputs whose partial sums fit."""
        fit = int(mem.ofmap_capacity_bytes // (m * mem.acc_bytes))
        smaller = 1 << max(fit, 1).bit_length() - 1
        if fit >= self.n or smaller >= self.n:  # (one output, not even its sums fitting)
            return [self.n]
        return [self.n, smaller]

    def packed(self, width: int, block: int) -> tuple[kf.FlexFolds, kf.FoldTimes]:
        """The folds at strip ``width`` and output ``block``, and their load and row times
        (to inspect a packing: ``best`` finds them in its kernel call)."""
        folds, times, _, _ = kf.packing(self._packings, self._weight, width, block)
        return folds, times

    def schedule(
        self, m: int, mem: fm.MemoryParams, plan: fm.FoldPlan, width: int, block: int
    ) -> TileRun:
        """The fold schedule of ``m`` token rows at strip ``width`` and output ``block``,
        stalls not yet known (any candidate's; ``best`` returns the fastest's), in one kernel
        call (``kf.schedule_at``)."""
        _, _, stats, log, dead = kf.schedule_at(
            self._packings, self._weight, width, block, m, self.levels, tuple(mem), tuple(plan)
        )
        return TileRun(stats, log, dead, float(stats[kf.STATIONARY_WORDS] * m))

    def best(self, m: int, mem: fm.MemoryParams, plan: fm.FoldPlan) -> TileRun:
        """The fastest (strip width, output block) schedule, stalls included (ties: the
        narrower strip, then the larger block). Widths ``B, 2B, ...`` are tried narrowest
        first until one is slower than the best so far (wider strips trade rows that take
        more cycles for fewer partial sums; past the balance point wider ones are slower
        still); the whole of K (each output's weights in one strip) is always tried. The
        search runs in one kernel call (``kf.best_schedule``)."""
        blocks = self.blocks(m, mem)
        pair = (blocks[0], blocks[1] if len(blocks) > 1 else 0)
        _, _, stats, log, dead = kf.best_schedule(
            self._packings, self._weight, self._widths, pair, m, self.levels, tuple(mem),
            tuple(plan),
        )  # fmt: skip
        return TileRun(stats, log, dead, float(stats[kf.STATIONARY_WORDS] * m))
