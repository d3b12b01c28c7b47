"""A mapping's cost from the fold kernels: M tiles one after another within a core, cores side
by side sharing DRAM, and the operand every core needs shared through the global buffer.

The datapath supplies a ``Piece``: the kernel statistics of one instance of the sub-GEMM of
``m_rows`` rows and the output columns ``[n_start, n_stop)`` under a ``FoldPlan`` and memory
record. Composition rules:

- **Tiles** (balanced: sizes differ by at most a row) run back to back; each is its own fold
  pipeline (its first prefetch and last write-back are exposed). The first tile of a core
  fetches the weights; later tiles find them on chip when the core's share of the weight
  fits its filter buffer.
- **Cores** run at once, each on its rows (split ``m``) or its output columns (split ``n``),
  with an even share of the DRAM bandwidth; the op lasts as long as the slowest core.
- **Shared operand**: split ``m`` gives every core the whole weight, split ``n`` the whole
  input. Each core fetches it; with a global buffer that holds it, DRAM delivers it once and
  the other copies are global-buffer reads (each core still waits for its copy over its
  share of the DRAM bandwidth, a conservative simplification).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accel_sim.kernels import fold_memory as fm
from accel_sim.mapping.residency import OpResidency
from accel_sim.mapping.space import Mapping, balanced
from accel_sim.spec import HardwareConfig
from accel_sim.traffic import memory_params

__all__ = ["Composite", "Piece", "compose", "core_slices"]

# (m_rows, n_start, n_stop, plan, mem) -> (statistics vector, MACs performed), one instance
Piece = Callable[[int, int, int, fm.FoldPlan, fm.MemoryParams], tuple[np.ndarray, float]]


@dataclass(frozen=True)
class Composite:
    """One instance of a GEMM under one mapping."""

    stats: np.ndarray  # summed over cores and tiles (fold_memory indices)
    cycles: int  # the slowest core
    compute_cycles: int  # the slowest core's compute cycles
    macs: float  # performed, all cores
    # the shared operand's copies served by the global buffer instead of DRAM
    global_read_bytes: float = 0.0
    global_write_bytes: float = 0.0

    @property
    def dram_bytes_saved(self) -> float:
        """DRAM reads the global buffer served: every copy but the one it fetched."""
        return self.global_read_bytes - self.global_write_bytes


def core_slices(extent: int, cores: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each core's share of ``extent``: balanced, larger ones first."""
    slices, start = [], 0
    for size, count in balanced(extent, min(cores, extent)):
        for _ in range(count):
            slices.append((start, start + size))
            start += size
    return slices


def _core_run(
    piece: Piece, rows: int, n_start: int, n_stop: int, mapping: Mapping, k: int,
    residency: OpResidency, ifmap_on_chip: bool, filter_on_chip: bool, mem: fm.MemoryParams,
) -> tuple[np.ndarray, int, int, float]:  # fmt: skip
    """One core's tiles: (stats, cycles, compute cycles, MACs)."""
    first = fm.FoldPlan(
        mapping.rows_outer, mapping.overlapped, ifmap_on_chip, filter_on_chip,
        residency.output_on_chip,
    )  # fmt: skip
    weights_stay = k * (n_stop - n_start) * mem.word_bytes <= mem.filter_capacity_bytes
    later = first._replace(filter_on_chip=filter_on_chip or weights_stay)
    sizes = balanced(rows, min(mapping.m_tiles, rows))
    (largest, how_many), rest = sizes[0], sizes[1:]
    runs = [(largest, first, 1)]
    if how_many > 1:
        runs.append((largest, later, how_many - 1))
    runs.extend((size, later, count) for size, count in rest)
    stats = None
    cycles = compute = 0
    macs = 0.0
    for tile_rows, plan, times in runs:
        part, part_macs = piece(tile_rows, n_start, n_stop, plan, mem)
        stats = part * times if stats is None else stats + part * times
        # The kernels count a GEMM's compute as its folds' cycles less one, SCALE-Sim's
        # last-cycle index (the validation compares it exactly); a mapped run counts the
        # cycles the folds take, so that cycles x PEs never falls below the MACs.
        one = 1 if part[fm.FOLDS] > 0 else 0
        cycles += (int(part[fm.TOTAL_CYCLES]) + one) * times
        compute += (int(part[fm.COMPUTE_CYCLES]) + one) * times
        macs += part_macs * times
    return stats, cycles, compute, macs


def compose(
    piece: Piece,
    m: int,
    k: int,
    n: int,
    mapping: Mapping,
    hw: HardwareConfig,
    residency: OpResidency,
    ifmap_on_chip: bool,
    filter_on_chip: bool,
    filter_dram_scale: float = 1.0,
) -> Composite:
    """The cost of one instance of an (m x k) @ (k x n) GEMM under ``mapping``."""
    if mapping.split == "m":
        parts = [(stop - start, 0, n) for start, stop in core_slices(m, mapping.cores)]
    elif mapping.split == "n":
        parts = [(m, start, stop) for start, stop in core_slices(n, mapping.cores)]
    else:
        parts = [(m, 0, n)]
    mem = memory_params(hw, filter_dram_scale, cores_sharing_dram=len(parts))
    runs = [
        _core_run(piece, rows, start, stop, mapping, k, residency, ifmap_on_chip, filter_on_chip,
                  mem)
        for rows, start, stop in parts
    ]  # fmt: skip
    stats = sum(run[0] for run in runs)
    slowest = max(runs, key=lambda run: (run[1], run[2]))
    global_read = global_write = 0.0
    if len(parts) > 1 and hw.global_buffer is not None:
        shared = fm.FILTER_DRAM_BYTES if mapping.split == "m" else fm.IFMAP_DRAM_BYTES
        shared_bytes = (k * n if mapping.split == "m" else m * k) * mem.word_bytes
        if shared_bytes <= hw.global_buffer.size_bytes:
            copies = [float(run[0][shared]) for run in runs]
            global_write = max(copies)
            global_read = sum(copies)
    return Composite(
        stats=stats,
        cycles=slowest[1],
        compute_cycles=slowest[2],
        macs=sum(run[3] for run in runs),
        global_read_bytes=global_read,
        global_write_bytes=global_write,
    )
