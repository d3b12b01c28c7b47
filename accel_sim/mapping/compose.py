"""A mapping's cost from the fold kernels: M tiles one after another within a core, cores side
by side sharing DRAM, and the operand every core needs shared through the global buffer.

The datapath supplies a ``Piece``: the kernel statistics of one instance of the sub-GEMM of
``m_rows`` rows and the output columns ``[n_start, n_stop)`` under a ``FoldPlan`` and memory
record. Composition rules:

- **Tiles** (balanced: sizes differ by at most a row) run back to back as one fold pipeline:
  the next tile's first inputs load while the current tile's last fold computes, exactly as
  between two folds of one tile (``stitched_elapsed`` joins the tiles' fold logs). The first
  tile of a core fetches the weights; later tiles find them on chip when the core's share of
  the weight fits its filter buffer.
- **Cores** run at once, each on its rows (split ``m``) or its output columns (split ``n``),
  with an even share of the DRAM bandwidth; the op lasts as long as the slowest core.
- **Shared operand**: split ``m`` gives every core the whole weight, split ``n`` the whole
  input. Each core fetches it; with a global buffer that holds it, DRAM delivers it once and
  the other copies are global-buffer reads (each core still waits for its copy over its
  share of the DRAM bandwidth, a conservative simplification).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np

from accel_sim.kernels import fold_memory as fm
from accel_sim.mapping.residency import OpResidency
from accel_sim.mapping.space import Mapping, balanced
from accel_sim.spec import HardwareConfig
from accel_sim.traffic import memory_params

__all__ = [
    "Composite",
    "Piece",
    "TileRun",
    "compose",
    "compute_floor",
    "core_slices",
    "dram_floor",
    "stitched_elapsed",
]

# (m_rows, n_start, n_stop, plan, mem) -> TileRun of one instance of that sub-GEMM
Piece = Callable[[int, int, int, fm.FoldPlan, fm.MemoryParams], "TileRun"]


class TileRun:
    """A fold schedule before its stalls are known: statistics (COMPUTE_CYCLES the folds'
    cycles, TOTAL_CYCLES unset), its ``FoldLog``, the write-back of outputs no fold produced
    (zeros) and the MACs performed. Also, read once when it is made (the mapper joins a tile
    into many candidates): ``pipeline``, what ``stitched_terms`` reads of it (prefetch,
    inflight, writeback, busy, dead bytes), and ``compute_cycles``, its COMPUTE_CYCLES. A
    plain class with slots: a frozen dataclass took longer to make than some schedules."""

    __slots__ = ("compute_cycles", "dead_bytes", "log", "macs", "pipeline", "stats")

    def __init__(self, stats: np.ndarray, log: fm.FoldLog, dead_bytes: float, macs: float):
        self.stats, self.log, self.dead_bytes, self.macs = stats, log, dead_bytes, macs
        self.pipeline = (*log, float(dead_bytes))
        self.compute_cycles = stats.item(fm.COMPUTE_CYCLES)


def _serial(run: TileRun, bw: float) -> float:
    """Without double buffering a fold waits for its loads, then for its stores."""
    return float(fm.serial_terms(run.log, float(bw))) + run.dead_bytes / bw


# a missing tile run's ``TileRun.pipeline``
_ABSENT = (np.zeros(1), np.zeros(0), np.zeros(0), np.zeros(0), 0.0)


def stitched_elapsed(runs: list[tuple[TileRun, int]], mem: fm.MemoryParams) -> float:
    """Cycles from the first DRAM load to the last write-back of ``runs`` (each repeated its
    count of times, in order) as one pipeline: ``pipeline_elapsed`` over the joined logs, the
    previous tile's last write-back moving during a tile's first fold and the next tile's
    first prefetch during its last (``fold_memory.stitched_terms``). At most three distinct
    runs: what ``_core_run`` builds (the first tile, the rest of its size, the other size)."""
    bw = mem.dram_bytes_per_cycle
    if not mem.double_buffered:
        return sum(_serial(run, bw) * times for run, times in runs)
    parts = [run.pipeline for run, times in runs if times]
    times = [int(times) for _, times in runs if times]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"stitched_elapsed joins one to three tile runs, got {len(parts)}")
    while len(parts) < 3:
        parts.append(_ABSENT)
        times.append(0)
    prefetch, inflight, writeback, busy, dead = zip(*parts, strict=True)  # each a triple
    return float(fm.stitched_terms(prefetch, inflight, writeback, busy, dead, tuple(times),
                                   float(bw)))  # fmt: skip


class Composite:
    """One instance of a GEMM under one mapping: per core its (tile schedule, times run)
    pairs, the slowest core's cycles and compute cycles, the MACs performed on all cores, and
    the shared operand's copies the global buffer served instead of DRAM. A plain class with
    slots (the mapper makes one per candidate; a frozen dataclass took a tenth of the
    candidate's Python time to make)."""

    __slots__ = ("_stats", "compute_cycles", "core_runs", "cycles", "global_read_bytes",
                 "global_write_bytes", "macs")  # fmt: skip

    def __init__(
        self,
        core_runs: tuple[tuple[tuple[TileRun, int], ...], ...],
        cycles: int,
        compute_cycles: int,
        macs: float,
        global_read_bytes: float = 0.0,
        global_write_bytes: float = 0.0,
    ) -> None:
        self.core_runs, self.cycles, self.compute_cycles = core_runs, cycles, compute_cycles
        self.macs = macs
        self.global_read_bytes, self.global_write_bytes = global_read_bytes, global_write_bytes
        self._stats: np.ndarray | None = None

    @property
    def stats(self) -> np.ndarray:
        """Statistics summed over cores and tiles (fold_memory indices): worked out only for
        a mapping the search prices, as most candidates are compared by cycles alone."""
        if self._stats is None:
            self._stats = sum(_summed(runs) for runs in self.core_runs)
        return self._stats

    @property
    def dram_bytes_saved(self) -> float:
        """DRAM reads the global buffer served: every copy but the one it fetched."""
        return self.global_read_bytes - self.global_write_bytes


def _summed(runs: tuple[tuple[TileRun, int], ...]) -> np.ndarray:
    """One core's statistics: its tiles' summed."""
    return sum(run.stats * times for run, times in runs)


def core_slices(extent: int, cores: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each core's share of ``extent``: balanced, larger ones first."""
    slices, start = [], 0
    for size, count in balanced(extent, min(cores, extent)):
        for _ in range(count):
            slices.append((start, start + size))
            start += size
    return slices


def _weights_stay(k: int, n_cols: int, mem: fm.MemoryParams) -> bool:
    """Whether a core's share of the weight (``k x n_cols`` words) fits its filter buffer,
    so that its later M tiles find it on chip."""
    return k * n_cols * mem.word_bytes <= mem.filter_capacity_bytes


def _tile_plans(
    mapping: Mapping, k: int, n_cols: int, residency: OpResidency, ifmap_on_chip: bool,
    filter_on_chip: bool, mem: fm.MemoryParams,
) -> tuple[fm.FoldPlan, fm.FoldPlan]:  # fmt: skip
    """The plans of a core's first tile and of its later ones: those find the weights on
    chip when the core's share (``k x n_cols`` words) fits its filter buffer."""
    outputs_on_chip = residency.output_on_chip
    first = _plan(mapping.rows_outer, mapping.overlapped, ifmap_on_chip, filter_on_chip,
                  outputs_on_chip)  # fmt: skip
    if filter_on_chip or not _weights_stay(k, n_cols, mem):
        return first, first
    return first, _plan(mapping.rows_outer, mapping.overlapped, ifmap_on_chip, True,
                        outputs_on_chip)  # fmt: skip


@cache
def _plan(*flags: bool) -> fm.FoldPlan:
    """The ``FoldPlan`` of these flags, one object per value (32 at most): a candidate asks
    for two."""
    return fm.FoldPlan(*flags)


def _core_run(
    piece: Piece, rows: int, n_start: int, n_stop: int, mapping: Mapping, k: int,
    residency: OpResidency, ifmap_on_chip: bool, filter_on_chip: bool, mem: fm.MemoryParams,
) -> tuple[tuple[tuple[TileRun, int], ...], int, int, float]:  # fmt: skip
    """One core's tiles: ((tile schedule, times run) in order, cycles, compute cycles,
    MACs). The first tile fetches the weights; later ones find them on chip when the core's
    share fits its filter buffer."""
    first, later = _tile_plans(mapping, k, n_stop - n_start, residency, ifmap_on_chip,
                               filter_on_chip, mem)  # fmt: skip
    sizes = balanced(rows, min(mapping.m_tiles, rows))
    largest, how_many = sizes[0]
    run = piece(largest, n_start, n_stop, first, mem)
    runs = [(run, 1)]
    if how_many > 1:  # the other tiles of that size: the same schedule when the plan is
        runs.append((run if later is first else piece(largest, n_start, n_stop, later, mem),
                     how_many - 1))  # fmt: skip
    for size, count in sizes[1:]:  # a row shorter
        runs.append((piece(size, n_start, n_stop, later, mem), count))
    # Compute: the cycles the folds take (the kernels' own statistics subtract one, SCALE-Sim's
    # last-cycle index, which the validation compares exactly; here cycles x PEs must never
    # fall below the MACs). Stalls: whatever the joined pipeline adds to that.
    compute = round(sum([run.compute_cycles * times for run, times in runs]))
    elapsed = stitched_elapsed(runs, mem)
    stall = max(math.ceil(elapsed - compute - 1e-9), 0)
    return tuple(runs), compute + stall, compute, sum([run.macs * times for run, times in runs])


def compute_floor(
    fold_cycles: Callable[[int, int, int, bool], int], m: int, n: int, mapping: Mapping
) -> int | None:
    """The compute cycles ``compose`` gives ``mapping`` on one core, from the tiles' fold
    cycles alone (``fold_cycles(m_rows, n_start, n_stop, overlapped)``: a tile schedule's
    COMPUTE_CYCLES, which the filter's place does not change), so the mapper can skip a
    candidate whose compute alone exceeds the best latency without scheduling its memory
    (``search.best_of``). None for a split across cores: their compute is the slowest
    core's, which its stalls pick."""
    if mapping.split != "none":
        return None
    sizes = balanced(m, min(mapping.m_tiles, m))
    return sum(count * fold_cycles(size, 0, n, mapping.overlapped) for size, count in sizes)


# (n_start, n_stop, mem) -> (weight bytes, input bytes a row, output bytes a row): what any
# schedule of some rows of those output columns moves at least, each part unless its operand
# is on chip (a piece's ``dram_bytes``, when it can tell without scheduling)
DramBytes = Callable[[int, int, fm.MemoryParams], tuple[float, float, float]]


def _parts(m: int, n: int, mapping: Mapping) -> list[tuple[int, int, int]]:
    """(rows, n_start, n_stop) of each core's share of an (m x n) output under ``mapping``."""
    if mapping.split == "m":
        return [(stop - start, 0, n) for start, stop in core_slices(m, mapping.cores)]
    if mapping.split == "n":
        return [(m, start, stop) for start, stop in core_slices(n, mapping.cores)]
    return [(m, 0, n)]


def dram_floor(
    dram_bytes: DramBytes, m: int, k: int, n: int, mapping: Mapping, residency: OpResidency,
    ifmap_on_chip: bool, filter_on_chip: bool, memory: Callable[[int], fm.MemoryParams],
) -> float:  # fmt: skip
    """Cycles ``compose`` gives ``mapping`` at least: the busiest core's DRAM bytes over its
    share of the bandwidth. A core moves its rows' inputs and outputs once (``dram_bytes``'
    per row) and its share of the weight once per tile that fetches it (every tile, or only
    the first when the share stays in the filter buffer, as ``_core_run`` plans them). Every
    byte a fold pipeline moves is in one of its terms, each at least those bytes over the
    bandwidth, and the cycles are at least the pipeline's elapsed time. Within one loop
    order and split it never falls as the M tiles grow (tiles only add weight fetches), so
    the mapper may end the group once it exceeds the best latency (``search.best_of``; its
    margin covers the floor's float sums rounding apart from the kernels')."""
    parts = _parts(m, n, mapping)
    mem = memory(len(parts))
    busiest = 0.0
    for rows, start, stop in parts:
        weight, per_input_row, per_output_row = dram_bytes(start, stop, mem)
        moved = 0.0
        if not filter_on_chip:
            fetches = 1 if _weights_stay(k, stop - start, mem) else min(mapping.m_tiles, rows)
            moved += fetches * weight
        if not ifmap_on_chip:
            moved += rows * per_input_row
        if not residency.output_on_chip:
            moved += rows * per_output_row
        busiest = max(busiest, moved)
    return busiest / mem.dram_bytes_per_cycle


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
    memory: Callable[[int], fm.MemoryParams] | None = None,
) -> Composite:
    """The cost of one instance of an (m x k) @ (k x n) GEMM under ``mapping``. ``memory``
    gives the memory record for a number of cores sharing DRAM (``memory_params`` at
    ``filter_dram_scale``), when the caller keeps them for its candidates."""
    parts = _parts(m, n, mapping)
    if memory is None:
        mem = memory_params(hw, filter_dram_scale, cores_sharing_dram=len(parts))
    else:
        mem = memory(len(parts))
    if len(parts) == 1:  # one core: no slowest to pick, nothing shared
        core, cycles, compute, macs = _core_run(piece, *parts[0], mapping, k, residency,
                                                ifmap_on_chip, filter_on_chip, mem)  # fmt: skip
        return Composite((core,), cycles, compute, macs)
    runs = [
        _core_run(piece, rows, start, stop, mapping, k, residency, ifmap_on_chip, filter_on_chip,
                  mem)
        for rows, start, stop in parts
    ]  # fmt: skip
    slowest = max(runs, key=lambda run: (run[1], run[2]))
    global_read = global_write = 0.0
    if len(parts) > 1 and hw.global_buffer is not None:
        shared = fm.FILTER_DRAM_BYTES if mapping.split == "m" else fm.IFMAP_DRAM_BYTES
        shared_bytes = (k * n if mapping.split == "m" else m * k) * mem.word_bytes
        if shared_bytes <= hw.global_buffer.size_bytes:
            copies = [float(_summed(run[0])[shared]) for run in runs]
            global_write = max(copies)
            global_read = sum(copies)
    return Composite(
        core_runs=tuple(run[0] for run in runs),
        cycles=slowest[1],
        compute_cycles=slowest[2],
        macs=sum(run[3] for run in runs),
        global_read_bytes=global_read,
        global_write_bytes=global_write,
    )
