"""The compacting systolic array: block skipping and N:M mode on every dataflow.

Unpacks the hardware spec and a weight mask ``[N, K]`` (torch ``[out, in]``; the GEMM is
(m x K) @ (K x N) with the weight transposed) into the kernels of
``accel_sim.kernels.sparse_folds`` (cycle-stepping references in
``accel_sim.kernels.sparse_stepping``), whose module docstring states the timing rules:

- *skipping*, weight-stationary: per column strip of C outputs, only the K-row groups
  (``skip_granularity`` rows) holding a kept weight are loaded and streamed, packed R per
  fold; inputs are gathered from ``hw.ifmap_banks`` single-ported banks (K index i in bank
  ``i % B``) through a full crossbar, so a fold lasts ``2R + C - 2 + m * conflict`` cycles,
  ``conflict`` being the most of its K indices in one bank.
- *skipping*, output-stationary: per output strip of C columns (and every row fold of R
  tokens), the streamed K dimension visits only the strip's live K groups: a fold lasts
  ``R + C - 2 + T_live`` cycles. Every array row reads the same K index of its own token,
  from its own port (the ifmap is banked by token, as in the dense schedule), and the strip's
  weights are read as a compacted chunk, so there are no bank conflicts.
- *skipping*, input-stationary: per K strip of R rows (stationary ifmap tile, every column
  fold of C tokens), the streamed N dimension visits only the output columns with a kept
  weight in the strip (groups of ``skip_granularity`` along N): ``2R + C - 2 + T_live``
  cycles; each array row streams its own row of the compacted weight chunk (no conflicts).
  Partial sums of skipped columns stay untouched and accumulate over the K strips.
- *nm*: N:M sparse tensor mode, the K dimension shrinks to ``K * N / M`` (M must divide K and
  the mask must hold the constraint; ``satisfies_nm`` checks it cheaply); every weight slot
  carries its ``log2 M``-bit position and a mux picks among the group's M inputs, so no bank
  conflicts. Weight-stationary: each array row holds one kept weight of a group and the
  row's register window the group's M inputs. Output-stationary: the streamed K dimension is
  the compacted ``K * N / M`` slots; each array row's token streams its inputs a group (M
  words) per N cycles into a window every PE of the row shares, and each PE's mux takes the
  input its streamed weight's index names. Input-stationary: each stationary slot of a K
  fold is one of a group's N slots and holds the group's M inputs (N slots share one read of
  the M words); the streamed weight's index selects among them. On OS and IS that is the
  dense schedule of a ``(m x K N/M) @ (K N/M x N)`` GEMM whose ifmap words each stand for
  ``M / N`` inputs (``MemoryParams.ifmap_scale``), so where shapes divide the compute cycles
  are exactly the dense schedule's at ``K N / M``.

A strip with no live index costs no compute cycles (its outputs are zeros written back). With
an all-ones mask every dataflow reproduces the dense kernel's statistics exactly.

Two engines compute the per-fold compute cycles and agree exactly: ``"fast"`` (closed form
per fold) and ``"cycle_stepping"`` (banks, issue, skew and drain stepped cycle by cycle;
small cases only). Memory (DRAM overlap, stalls) is the dense kernel's ``pipeline_elapsed``
in both. The weight's DRAM bytes are ``filter_dram_scale`` x the dense bytes of each fetch of
the compacted weight (compressed weights, expanded on chip): ``filter_dram_scale * K * N *
word`` when it is fetched once (always under WS; under OS/IS when the compacted weight fits
the filter buffer).

How the datapath runs each GEMM (``OpResult.mode``): a mask that breaks the hardware's N:M
constraint cannot use N:M mode, so that GEMM runs dense (``nm-fallback-dense``). Compaction
packs rows whose inputs may share an ifmap bank, and on fine-grained masks the conflicts can
cost more than the rows saved; such a GEMM runs the dense schedule instead (``skipping-off``),
as a compiler would set a per-layer mode bit, so skipping never costs more cycles than dense.
Unmasked weights and weightless GEMMs (attention) run the dense schedule (``dense``).

``OpCost.counts.macs`` are the MACs performed: every weight of the compacted weight (mapped
tiles under WS, live K rows x strip columns under OS, live N columns x strip rows under IS)
times m (zeros inside live groups, N:M pad slots and the unused columns of a partial strip
are multiplied too, as the PEs fire); ``OpCost.useful_macs`` are kept weights x m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from accel_sim.area import word_bits
from accel_sim.datapaths.base import register
from accel_sim.datapaths.systolic.dense import (
    DATAFLOW_CODE,
    FIXED_ROWS_OUTER,
    SystolicArray,
    check_sizes,
    masked,
)
from accel_sim.kernels import dense_folds as dk
from accel_sim.kernels import fold_memory as fm
from accel_sim.kernels import format_sizes
from accel_sim.kernels import preconditions as pre
from accel_sim.kernels import sparse_folds as sk
from accel_sim.kernels import sparse_stepping as stepping
from accel_sim.mapping.compose import TileRun, compute_floor
from accel_sim.mapping.residency import NONE, OpResidency
from accel_sim.op_cost import OpCost
from accel_sim.spec import Dataflow, HardwareConfig, ZeroHandling
from accel_sim.traffic import fold_counts, memory_params
from workloads.ops import GemmOp

__all__ = [
    "ENGINES",
    "CompactingSystolicArray",
    "SparseGemmStats",
    "check_nm",
    "satisfies_nm",
    "sparse_gemm_cost",
    "sparse_gemm_stats",
    "warm_up",
]

ENGINES = ("fast", "cycle_stepping")
_MODES = (ZeroHandling.SKIPPING, ZeroHandling.NM)


@dataclass(frozen=True)
class SparseGemmStats:
    """One instance of a sparse GEMM on the array."""

    mode: str  # "skipping" or "nm"
    dataflow: str  # hw.pe_array.dataflow's value: whose compaction rules ran
    compute_cycles: int
    total_cycles: int
    folds: int
    dense_folds: int  # folds of the same GEMM run dense
    mean_bank_conflict: float  # mean over folds of cycles per streamed token row (1.0: none)
    bank_conflict_cycles: int  # cycles lost to bank conflicts
    performed_macs: int  # compacted weight words x m
    useful_macs: int  # kept weights x m
    raw: np.ndarray  # the kernel's statistics vector (accel_sim.kernels.sparse_folds indices)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_mask(mask) -> np.ndarray:
    try:
        arr = np.asarray(mask)
    except Exception as error:  # ragged nested lists and the like
        raise ValueError(f"mask must be a 2-D bool keep-mask [N, K]: {error}") from error
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"mask must be a non-empty 2-D keep-mask [N, K], got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
            raise ValueError(
                f"mask must be bool (or 0/1 numbers) [N, K], got dtype {arr.dtype} with values "
                "other than 0 and 1"
            )
        arr = arr.astype(bool)
    return np.ascontiguousarray(arr)


def _check_nm_pair(nm_n, nm_m) -> tuple[int, int]:
    nm_n = _check_int("N of N:M", nm_n, 1)
    nm_m = _check_int("M of N:M", nm_m, 2)
    if nm_n > nm_m:
        raise ValueError(f"N:M needs N <= M, got {nm_n}:{nm_m}")
    return nm_n, nm_m


def check_nm(mask, nm_n: int, nm_m: int) -> None:
    """Raise ValueError naming the first M-group of ``mask [N, K]`` (along K) with more than
    N kept weights, or K not a multiple of M."""
    arr = _check_mask(mask)
    nm_n, nm_m = _check_nm_pair(nm_n, nm_m)
    k = arr.shape[1]
    if k % nm_m:
        raise ValueError(f"mask has K={k} inputs, not a multiple of M={nm_m}: no {nm_n}:{nm_m}")
    row, group, count = sk.nm_violation(arr, nm_n, nm_m)
    if row >= 0:
        raise ValueError(
            f"mask breaks {nm_n}:{nm_m}: row {row}, group {group} (inputs "
            f"{group * nm_m}..{group * nm_m + nm_m - 1}) keeps {count} > {nm_n} weights"
        )


def satisfies_nm(mask, nm_n: int, nm_m: int) -> bool:
    """Whether ``mask [N, K]`` can run in N:M mode: M divides K and every M-group along K of
    every row keeps at most N weights (``format_sizes.first_nm_violation``, one pass)."""
    arr = _check_mask(mask)
    nm_n, nm_m = _check_nm_pair(nm_n, nm_m)
    if arr.shape[1] % nm_m:
        return False
    return int(format_sizes.first_nm_violation(arr, nm_n, nm_m)) < 0


def _folds(arr: np.ndarray, hw: HardwareConfig, mode: ZeroHandling) -> sk.CompactedFolds:
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    if mode == ZeroHandling.NM:
        nm_n, nm_m = hw.sparse.nm
        check_nm(arr, nm_n, nm_m)
        return sk.nm_folds(arr.shape[0], arr.shape[1], rows, cols, nm_n, nm_m)
    return sk.skipping_folds(arr, rows, cols, hw.sparse.skip_granularity, hw.ifmap_banks)


def _checked_args(mask, m, hw, filter_dram_scale, engine):
    arr = _check_mask(mask)
    m = _check_int("m", m, 1)
    mode = hw.sparse.zero_handling
    if mode not in _MODES:
        raise ValueError(
            f"hw.sparse.zero_handling must be one of {[z.value for z in _MODES]} for the "
            f"compacting engines, got {mode.value!r}"
        )
    if (
        isinstance(filter_dram_scale, bool)
        or not isinstance(filter_dram_scale, Real)
        or not math.isfinite(filter_dram_scale)
        or filter_dram_scale <= 0
    ):
        raise ValueError(
            f"filter_dram_scale must be a finite number > 0, got {filter_dram_scale!r}"
        )
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return arr, m, mode


class CompactedWeight:
    """One mask's fold lists on ``hw``, computed once and run for any number of token rows
    under any ``FoldPlan`` (the mapper's tiles and preload)."""

    def __init__(self, arr: np.ndarray, hw: HardwareConfig, mode: ZeroHandling) -> None:
        self.arr, self.hw, self.mode = arr, hw, mode
        self.n, self.k = arr.shape
        rows, cols = hw.pe_array.rows, hw.pe_array.cols
        self.dataflow = DATAFLOW_CODE[hw.pe_array.dataflow]
        granularity = hw.sparse.skip_granularity
        # the most token rows whose sizes passed ``check_sizes``: every limit grows with the
        # rows, so fewer pass too (the mapper asks for every tile of every candidate)
        self._rows_checked = 0
        self._compute: dict[tuple[int, bool], int] = {}  # ``compute_cycles`` asked before
        what = f"a compacted [{self.n}, {self.k}] weight"
        if self.dataflow == dk.WS:
            strips = -(-self.n // cols)
            if mode == ZeroHandling.NM:
                nm_n, nm_m = hw.sparse.nm
                slots = self.k // nm_m * nm_n
                pre.check_strips(what, strips * -(-slots // rows), min(rows, slots) * nm_m)
            else:
                pre.check_strips(what, strips, self.k)
            self.folds = _folds(arr, hw, mode)
            self.reuse = sk.ws_reuse(self.folds, cols, self.k, self.n)
            self.overhead = 2 * rows + cols - 2
            # the records as plain tuples, for ``sk.ws_schedule_plain``'s faster dispatch
            self._plain = (tuple(self.folds), tuple(self.reuse))
        elif self.dataflow == dk.OS:
            pre.check_strips(what, -(-self.n // cols), self.k)
            self.strips = sk.live_strips(arr, cols, granularity)
            self.overhead = rows + cols - 2
        else:
            pre.check_strips(what, -(-self.k // rows), self.n)
            self.strips = sk.live_strips(np.ascontiguousarray(arr.T), rows, granularity)
            self.overhead = 2 * rows + cols - 2

    def dense_folds(self, m: int) -> int:
        rows, cols = self.hw.pe_array.rows, self.hw.pe_array.cols
        if self.dataflow == dk.WS:
            return -(-self.k // rows) * -(-self.n // cols)
        if self.dataflow == dk.OS:
            return -(-m // rows) * -(-self.n // cols)
        return -(-self.k // rows) * -(-m // cols)

    def dram_bytes(self, mem: fm.MemoryParams) -> tuple[float, float, float]:
        """What a weight-stationary schedule of any token rows (``sk.ws_schedule``) moves in
        DRAM at least, each unless its operand is on chip: the weight, ``filter_dram_scale x
        K N`` words (its folds' compacted words at the ``K N / compacted`` ratio; none when it
        keeps no weight); a row's live inputs once (every fold's K indices are fetched, or
        are the previous fold's); its outputs once (the last fold of a strip, or the zeros
        of a strip without folds). Spilled partial sums only add to that. (weight bytes,
        input bytes a row, output bytes a row); the mapper's DRAM floor
        (``compose.dram_floor``). Weight-stationary only: the other dataflows' schedules
        fetch by other rules."""
        if self.dataflow != dk.WS:
            raise ValueError("dram_bytes: a weight-stationary compacted weight's bound only")
        word = mem.word_bytes
        kept = self.reuse.compact_words > 0
        weight = self.k * self.n * word * mem.filter_dram_scale if kept else 0.0
        return weight, float(self.reuse.live_k * word), float(self.n * word)

    def compute_cycles(self, m: int, overlapped: bool) -> int:
        """The fold cycles of ``m`` token rows summed (a fast WS ``schedule``'s COMPUTE_CYCLES
        statistic), without the memory schedule; kept per (rows, preload), as the check
        for a layer that computes longer than dense and the search's compute floor ask for
        the same tiles."""
        key = (m, overlapped)
        cycles = self._compute.get(key)
        if cycles is None:
            rows, cols = self.hw.pe_array.rows, self.hw.pe_array.cols
            cycles = self._compute[key] = int(
                sk.ws_compute_cycles(self.folds.conflict, rows, cols, m, overlapped)
            )
        return cycles

    def run(self, m: int, mem, plan, engine: str = "fast") -> np.ndarray:
        """Kernel statistics of ``m`` token rows (``sparse_folds`` indices)."""
        schedule = self.schedule(m, mem, plan, engine)
        return fm.finish(schedule.stats, schedule.log, schedule.log.busy.shape[0],
                         schedule.dead_bytes, mem)  # fmt: skip

    def schedule(self, m: int, mem, plan, engine: str = "fast") -> TileRun:
        """The fold schedule of ``m`` token rows, stalls not yet known."""
        hw = self.hw
        rows, cols = hw.pe_array.rows, hw.pe_array.cols
        if m > self._rows_checked:
            what = f"a GEMM with a compacted [{self.n}, {self.k}] weight"
            check_sizes(what, m, self.k, self.n, hw)
            self._rows_checked = m
        if self.dataflow == dk.WS:
            if engine == "fast":
                cycles = sk.ws_fold_cycles(self.folds.conflict, rows, cols, m, plan.overlapped)
            else:
                nm_n, nm_m = hw.sparse.nm
                cycles, _ = stepping.fold_cycles_stepping(
                    self.arr, m, rows, cols, hw.sparse.skip_granularity, hw.ifmap_banks, nm_n,
                    nm_m, self.mode == ZeroHandling.NM,
                )  # fmt: skip
                if plan.overlapped and cycles.shape[0]:
                    cycles = fm.overlapped_cycles(cycles, self.overhead, rows)
            stats, log, _, dead = sk.ws_schedule_plain(
                *self._plain, cycles, cols, m, self.k, self.n, tuple(mem), tuple(plan)
            )
            return TileRun(stats, log, dead, float(stats[sk.COMPACTED_WEIGHTS] * m))
        ptr, idx = self.strips
        tiles = -(-m // (rows if self.dataflow == dk.OS else cols))
        folds = sk.stream_folds(ptr, idx, tiles)
        if engine == "fast":
            cycles = sk.streamed_fold_cycles(folds.t, self.overhead)
        else:
            step = (
                stepping.fold_cycles_stepping_os
                if self.dataflow == dk.OS
                else stepping.fold_cycles_stepping_is
            )
            cycles, _ = step(self.arr, m, rows, cols, hw.sparse.skip_granularity)
        if plan.overlapped and cycles.shape[0]:
            cycles = fm.overlapped_cycles(cycles, self.overhead, rows)
        schedule = sk.os_schedule if self.dataflow == dk.OS else sk.is_schedule
        stats, log, _, dead = schedule(folds, cycles, rows, cols, m, self.k, self.n, mem, plan)
        return TileRun(stats, log, dead, float(stats[sk.COMPACTED_WEIGHTS] * m))


class NmStreamed:
    """N:M mode on an output- or input-stationary array: the dense schedule over the
    ``K * N / M`` compacted slots, each ifmap word standing for ``M / N`` inputs (the group's
    M words feed N slots) and the weight's DRAM scale taken over the dense ``K x N`` bytes."""

    def __init__(self, k: int, hw: HardwareConfig) -> None:
        nm_n, nm_m = hw.sparse.nm
        self.hw, self.k_slots = hw, k // nm_m * nm_n
        self.ifmap_scale = nm_m / nm_n
        self.dataflow = DATAFLOW_CODE[hw.pe_array.dataflow]

    def dense_folds(self, m: int, n: int) -> int:
        """Folds of the same GEMM at the full K."""
        rows, cols = self.hw.pe_array.rows, self.hw.pe_array.cols
        k = round(self.k_slots * self.ifmap_scale)
        if self.dataflow == dk.OS:
            return -(-m // rows) * -(-n // cols)
        return -(-k // rows) * -(-m // cols)

    def schedule(self, m: int, n: int, mem: fm.MemoryParams, plan: fm.FoldPlan) -> TileRun:
        """The fold schedule of ``m`` token rows and ``n`` output columns."""
        rows, cols = self.hw.pe_array.rows, self.hw.pe_array.cols
        mem = mem._replace(
            ifmap_scale=self.ifmap_scale,
            filter_dram_scale=mem.filter_dram_scale * self.ifmap_scale,
        )
        stats, log, _ = dk.dense_gemm_schedule(
            self.dataflow, rows, cols, m, self.k_slots, n, mem, plan
        )
        return TileRun(stats, log, 0.0, float(m * self.k_slots * n))


def fixed_plan(hw: HardwareConfig) -> fm.FoldPlan:
    """SCALE-Sim's loop order, serial preload, every operand in DRAM."""
    return fm.FoldPlan(FIXED_ROWS_OUTER[hw.pe_array.dataflow], False, False, False, False)


def sparse_gemm_stats(
    mask,
    m: int,
    hw: HardwareConfig,
    *,
    filter_dram_scale: float = 1.0,
    engine: str = "fast",
) -> SparseGemmStats:
    """Fold-level statistics of one (m x K) @ (K x N) GEMM with keep-mask ``mask [N, K]``
    under ``hw.sparse.zero_handling`` on ``hw.pe_array.dataflow`` (SCALE-Sim's loop order)."""
    arr, m, mode = _checked_args(mask, m, hw, filter_dram_scale, engine)
    dataflow = hw.pe_array.dataflow
    mem, plan = memory_params(hw, filter_dram_scale), fixed_plan(hw)
    if mode == ZeroHandling.NM and dataflow != Dataflow.WEIGHT_STATIONARY:
        check_nm(arr, *hw.sparse.nm)
        stream = NmStreamed(arr.shape[1], hw)
        run = stream.schedule(m, arr.shape[0], mem, plan)
        raw = fm.finish(run.stats, run.log, run.log.busy.shape[0], 0.0, mem)
        raw = np.concatenate([raw, np.zeros(sk.N_SPARSE_STATS - raw.shape[0])])
        raw[sk.COMPACTED_WEIGHTS] = stream.k_slots * arr.shape[0]
        raw[sk.CONFLICT_SUM] = raw[fm.FOLDS]  # a conflict factor of 1 in every fold
        dense_folds = stream.dense_folds(m, arr.shape[0])
    else:
        weight = CompactedWeight(arr, hw, mode)
        raw = weight.run(m, mem, plan, engine)
        dense_folds = weight.dense_folds(m)
    folds = int(raw[fm.FOLDS])
    return SparseGemmStats(
        mode=mode.value,
        dataflow=dataflow.value,
        compute_cycles=int(raw[fm.COMPUTE_CYCLES]),
        total_cycles=int(raw[fm.TOTAL_CYCLES]),
        folds=folds,
        dense_folds=dense_folds,
        mean_bank_conflict=float(raw[sk.CONFLICT_SUM]) / folds if folds else 1.0,
        bank_conflict_cycles=int(raw[sk.BANK_CONFLICT_CYCLES]),
        performed_macs=int(raw[sk.COMPACTED_WEIGHTS]) * m,
        useful_macs=int(arr.sum()) * m,
        raw=raw,
    )


def sparse_gemm_cost(
    mask,
    m: int,
    count: int,
    hw: HardwareConfig,
    *,
    filter_dram_scale: float = 1.0,
    engine: str = "fast",
) -> OpCost:
    """Cycles and action counts of ``count`` GEMMs (m x K) @ (K x N) with keep-mask
    ``mask [N, K]`` under ``hw.sparse.zero_handling`` in {skipping, nm}.

    ``filter_dram_scale``: compressed / dense bytes of the weight
    (``accel_sim.traffic.weight_storage_scale``).
    Raises ValueError for a mask that breaks N:M in nm mode (``satisfies_nm`` first).
    """
    arr, m, mode = _checked_args(mask, m, hw, filter_dram_scale, engine)
    count = _check_int("count", count, 1)
    st = sparse_gemm_stats(arr, m, hw, filter_dram_scale=filter_dram_scale, engine=engine)
    s = st.raw.tolist()
    return OpCost(
        compute_cycles=st.compute_cycles * count,
        stall_cycles=(st.total_cycles - st.compute_cycles) * count,
        counts=fold_counts(s, st.performed_macs, hw).scaled(count),
        folds=st.folds * count,
        sram_limited_cycles=int(s[fm.SRAM_LIMITED_CYCLES]) * count,
        mode=mode.value,
        useful_macs=st.useful_macs * count,
        bank_conflict=st.mean_bank_conflict,
    )


@register
class CompactingSystolicArray(SystolicArray):
    """``datapath: systolic`` with ``zero_handling`` skipping or nm. Compaction runs strip by
    strip, so the mapper searches its M tiling, core split and preload but not its loop
    order; the dense schedules it falls back to get the full search."""

    name = "compacting-systolic"

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return (
            isinstance(hw, HardwareConfig)
            and hw.datapath == "systolic"
            and hw.sparse.zero_handling in _MODES
        )

    @property
    def orders(self) -> tuple[bool, ...]:
        if self._nm_streamed:  # the dense schedule at K N / M: every loop order
            return super().orders
        return (FIXED_ROWS_OUTER[self.hw.pe_array.dataflow],)

    @property
    def piece_reads_mask(self) -> bool:
        # N:M folds depend on the shape alone; gemm_cost checks the mask before mapping it.
        return self.hw.sparse.zero_handling != ZeroHandling.NM

    @property
    def _nm_streamed(self) -> bool:
        hw = self.hw
        return (
            hw.sparse.zero_handling == ZeroHandling.NM
            and hw.pe_array.dataflow != Dataflow.WEIGHT_STATIONARY
        )

    def sparse_area_um2(self) -> float:
        """Skipping's ifmap crossbar (``ifmap_banks x rows`` crosspoints of a word); N:M
        mode's input multiplexers (``M`` inputs of a word per PE)."""
        hw, table = self.hw, self.hw.area
        if hw.sparse.zero_handling == ZeroHandling.SKIPPING:
            return hw.ifmap_banks * hw.pe_array.rows * word_bits(hw) * table.crossbar_um2_per_bit
        return hw.pe_count * hw.sparse.nm[1] * word_bits(hw) * table.mux_um2_per_input_bit

    def piece(self, op: GemmOp, mask: np.ndarray | None):
        if mask is None:
            return super().piece(op, None)
        if self._nm_streamed:
            stream = NmStreamed(op.k, self.hw)
            return lambda m_rows, n_start, n_stop, plan, mem: stream.schedule(
                m_rows, n_stop - n_start, mem, plan
            )
        mode = self.hw.sparse.zero_handling
        weights: dict = {}  # this search's fold lists (``weight_model``)

        def weight(n_start: int, n_stop: int) -> CompactedWeight:
            return self.weight_model(op, mask, n_start, n_stop, lambda: CompactedWeight(
                np.ascontiguousarray(mask[n_start:n_stop]), self.hw, mode), weights)  # fmt: skip

        def run(m_rows, n_start, n_stop, plan, mem):
            return weight(n_start, n_stop).schedule(m_rows, mem, plan)

        if self.hw.pe_array.dataflow == Dataflow.WEIGHT_STATIONARY:  # its folds' cycles alone
            run.fold_cycles = lambda m_rows, n_start, n_stop, overlapped: weight(  # type: ignore[attr-defined]
                n_start, n_stop
            ).compute_cycles(m_rows, overlapped)
            # and its least DRAM bytes (the mapper's DRAM floor, ``compose.dram_floor``)
            run.dram_bytes = lambda n_start, n_stop, mem: weight(  # type: ignore[attr-defined]
                n_start, n_stop
            ).dram_bytes(mem)
        return run

    def _mapped_cost(self, op, composite, mapping):
        cost = super()._mapped_cost(op, composite, mapping)
        if composite.stats.shape[0] <= sk.CONFLICT_SUM:
            return cost
        folds = composite.stats[fm.FOLDS]
        conflict = composite.stats[sk.CONFLICT_SUM] / folds if folds else 1.0
        return cost.with_mode(cost.mode, bank_conflict=float(conflict))

    def gemm_cost(self, op: GemmOp, residency: OpResidency = NONE) -> OpCost:
        hw = self.hw
        mask = masked(op)
        scale, note = self.storage_scale(op)
        useful = self.useful_macs(op)
        dense = self.mapped(op, None, scale, residency)
        if mask is None:
            return dense.with_mode("dense", note, useful_macs=useful)
        handling = hw.sparse.zero_handling
        if handling == ZeroHandling.NM and not self.mask_fact(
            op, ("nm", *hw.sparse.nm), lambda: satisfies_nm(mask, *hw.sparse.nm)
        ):
            return dense.with_mode("nm-fallback-dense", note, useful_macs=useful)
        piece = self.shared_piece(op, mask)
        # Compaction that packs bank-conflicting rows can be slower than the dense schedule;
        # the compiler then runs this layer dense (a per-layer mode bit). When every mapping
        # the search would try computes for longer than the dense schedule takes, that is
        # the outcome whatever the search finds, so it is not run.
        if handling == ZeroHandling.SKIPPING and self._computes_longer(op, piece, dense.cycles):
            return dense.with_mode("skipping-off", note, useful_macs=useful)
        cost = self.mapped(op, mask, scale, residency, piece)
        cost = cost.with_mode(handling.value, note, useful_macs=useful)
        if handling == ZeroHandling.SKIPPING and dense.cycles < cost.cycles:
            return dense.with_mode("skipping-off", note, useful_macs=useful)
        return cost

    def _computes_longer(self, op: GemmOp, piece, cycles: int) -> bool:
        """Whether every candidate mapping of ``op`` computes for more than ``cycles`` (all
        instances), from its tiles' fold cycles alone (``compose.compute_floor``); False as
        soon as one does not, or when a candidate's compute is not known that way (several
        cores, a dataflow other than weight-stationary). A mapping's cycles are at least its
        compute cycles, so then the best mapping is slower than ``cycles`` too."""
        fold_cycles = getattr(piece, "fold_cycles", None)
        if fold_cycles is None:
            return False
        for group in self.candidates(op):
            for mapping in group:
                floor = compute_floor(fold_cycles, op.m, op.n, mapping)
                if floor is None or floor * op.count <= cycles:
                    return False
        return True


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the sparse kernels, so timings exclude JIT."""
    mask = np.ones((2, 2), dtype=bool)
    mem = fm.MemoryParams(1, 4, 64.0, 64.0, 64.0, True, 1.0, 1.0, 1.0, 1.0, 1.0)
    folds = sk.skipping_folds(mask, 2, 2, 1, 2)
    sk.nm_folds(2, 4, 2, 2, 2, 4)
    sk.nm_violation(mask, 1, 2)
    cycles = sk.fold_cycles_fast(folds.conflict, 2, 2, 1)
    plan = fm.FoldPlan(False, True, False, False, False)
    sk.sparse_gemm_folds(folds, cycles, 2, 1, 2, 2, mem, plan)
    fm.overlapped_cycles(cycles, 4, 2)
    sk.ws_compute_cycles(folds.conflict, 2, 2, 1, True)
    ptr, idx = sk.live_strips(mask, 2, 1)
    streamed = sk.stream_folds(ptr, idx, 1)
    fold_cycles = sk.streamed_fold_cycles(streamed.t, 2)
    for dataflow in (dk.OS, dk.IS):
        sk.stream_gemm_folds(dataflow, streamed, fold_cycles, 2, 2, 1, 2, 2, mem, plan)
    stepping.fold_cycles_stepping(mask, 1, 2, 2, 1, 2, 1, 2, False)
    stepping.fold_cycles_stepping_os(mask, 1, 2, 2, 1)
    stepping.fold_cycles_stepping_is(mask, 1, 2, 2, 1)
