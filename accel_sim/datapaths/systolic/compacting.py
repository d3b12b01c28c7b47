"""The compacting systolic array: block skipping (every dataflow) and N:M mode (WS).

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
- *nm*: N:M sparse tensor mode, the stationary K dimension shrinks to ``K * N / M`` (M must
  divide K and the mask must hold the constraint; ``satisfies_nm`` checks it cheaply); the
  mux picks among the group's M inputs in the row's register window, so no bank conflicts.
  Modelled for weight-stationary only: under output- and input-stationary ``sparse_gemm_cost``
  runs the dense schedule (with compressed weight traffic) and says so in its ``note``.

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
    DenseSystolicArray,
    dense_gemm_cost,
    masked,
)
from accel_sim.kernels import dense_folds as dk
from accel_sim.kernels import fold_memory as fm
from accel_sim.kernels import sparse_folds as sk
from accel_sim.kernels import sparse_stepping as stepping
from accel_sim.op_cost import OpCost
from accel_sim.spec import Dataflow, HardwareConfig, ZeroHandling
from accel_sim.traffic import fold_counts, memory_params, weight_storage_scale
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
    every row keeps at most N weights (vectorised, no kernel compile)."""
    arr = _check_mask(mask)
    nm_n, nm_m = _check_nm_pair(nm_n, nm_m)
    n, k = arr.shape
    if k % nm_m:
        return False
    return bool((arr.reshape(n, k // nm_m, nm_m).sum(axis=2) <= nm_n).all())


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


def _stream_stats(arr, m, hw, filter_dram_scale, engine):
    """Output- or input-stationary skipping: (raw stats, dense folds)."""
    n, k = arr.shape
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    granularity = hw.sparse.skip_granularity
    dataflow = DATAFLOW_CODE[hw.pe_array.dataflow]
    if dataflow == dk.OS:
        ptr, idx = sk.live_strips(arr, cols, granularity)
        tiles, overhead = -(-m // rows), rows + cols - 2
        dense_folds = tiles * -(-n // cols)
        step = stepping.fold_cycles_stepping_os
    else:
        ptr, idx = sk.live_strips(np.ascontiguousarray(arr.T), rows, granularity)
        tiles, overhead = -(-m // cols), 2 * rows + cols - 2
        dense_folds = -(-k // rows) * tiles
        step = stepping.fold_cycles_stepping_is
    folds = sk.stream_folds(ptr, idx, tiles)
    if engine == "fast":
        cycles = sk.streamed_fold_cycles(folds.t, overhead)
    else:
        cycles, _ = step(arr, m, rows, cols, granularity)
    mem = memory_params(hw, filter_dram_scale)
    raw = sk.stream_gemm_folds(dataflow, folds, cycles, rows, cols, m, k, n, mem)
    return raw, dense_folds


def _ws_stats(arr, m, hw, mode, filter_dram_scale, engine):
    """Weight-stationary skipping or N:M: (raw stats, dense folds)."""
    n, k = arr.shape
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    folds = _folds(arr, hw, mode)
    if engine == "fast":
        cycles = sk.fold_cycles_fast(folds.conflict, rows, cols, m)
    else:
        nm_n, nm_m = hw.sparse.nm
        cycles, _ = stepping.fold_cycles_stepping(
            arr,
            m,
            rows,
            cols,
            hw.sparse.skip_granularity,
            hw.ifmap_banks,
            nm_n,
            nm_m,
            mode == ZeroHandling.NM,
        )
    mem = memory_params(hw, filter_dram_scale)
    raw = sk.sparse_gemm_folds(folds, cycles, cols, m, k, n, mem)
    return raw, -(-k // rows) * -(-n // cols)


def sparse_gemm_stats(
    mask,
    m: int,
    hw: HardwareConfig,
    *,
    filter_dram_scale: float = 1.0,
    engine: str = "fast",
) -> SparseGemmStats:
    """Fold-level statistics of one (m x K) @ (K x N) GEMM with keep-mask ``mask [N, K]``
    under ``hw.sparse.zero_handling`` on ``hw.pe_array.dataflow``: skipping on any dataflow,
    nm on weight-stationary only (ValueError otherwise; ``sparse_gemm_cost`` then runs the
    dense schedule and notes it)."""
    arr, m, mode = _checked_args(mask, m, hw, filter_dram_scale, engine)
    dataflow = hw.pe_array.dataflow
    if dataflow == Dataflow.WEIGHT_STATIONARY:
        raw, dense_folds = _ws_stats(arr, m, hw, mode, filter_dram_scale, engine)
    elif mode == ZeroHandling.NM:
        raise ValueError(
            f"nm mode is modelled for weight-stationary only, not {dataflow.value} "
            "(sparse_gemm_cost runs such a GEMM on the dense schedule)"
        )
    else:
        raw, dense_folds = _stream_stats(arr, m, hw, filter_dram_scale, engine)
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
    ``mask [N, K]`` under ``hw.sparse.zero_handling`` in {skipping, nm} (nm: weight-stationary
    only; other dataflows run the dense schedule and say so in ``note``).

    ``filter_dram_scale``: compressed / dense bytes of the weight
    (``accel_sim.traffic.weight_storage_scale``).
    Raises ValueError for a mask that breaks N:M in nm mode (``satisfies_nm`` first).
    """
    arr, m, mode = _checked_args(mask, m, hw, filter_dram_scale, engine)
    count = _check_int("count", count, 1)
    n, k = arr.shape
    if mode == ZeroHandling.NM and hw.pe_array.dataflow != Dataflow.WEIGHT_STATIONARY:
        check_nm(arr, *hw.sparse.nm)
        dense = dense_gemm_cost(m, k, n, count, hw, filter_dram_scale=filter_dram_scale)
        return dense.with_mode(
            mode.value,
            f"nm mode is modelled for weight-stationary only; "
            f"{hw.pe_array.dataflow.value} ran the dense schedule",
            useful_macs=int(arr.sum()) * m * count,
        )
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
class CompactingSystolicArray(DenseSystolicArray):
    """``datapath: systolic`` with ``zero_handling`` skipping or nm."""

    name = "compacting-systolic"

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return (
            isinstance(hw, HardwareConfig)
            and hw.datapath == "systolic"
            and hw.sparse.zero_handling in _MODES
        )

    def sparse_area_um2(self) -> float:
        """Skipping's ifmap crossbar (``ifmap_banks x rows`` crosspoints of a word); N:M
        mode's input multiplexers (``M`` inputs of a word per PE)."""
        hw, table = self.hw, self.hw.area
        if hw.sparse.zero_handling == ZeroHandling.SKIPPING:
            return hw.ifmap_banks * hw.pe_array.rows * word_bits(hw) * table.crossbar_um2_per_bit
        return hw.pe_count * hw.sparse.nm[1] * word_bits(hw) * table.mux_um2_per_input_bit

    def gemm_cost(self, op: GemmOp) -> OpCost:
        hw = self.hw
        mask = masked(op)
        scale, note = weight_storage_scale(mask, hw)
        useful = self.useful_macs(op)
        dense = self.dense_cost(op, scale)
        if mask is None:
            return dense.with_mode("dense", note, useful_macs=useful)
        handling = hw.sparse.zero_handling
        if handling == ZeroHandling.NM and not satisfies_nm(mask, *hw.sparse.nm):
            return dense.with_mode("nm-fallback-dense", note, useful_macs=useful)
        cost = sparse_gemm_cost(mask, op.m, op.count, hw, filter_dram_scale=scale)
        if handling == ZeroHandling.SKIPPING and dense.cycles < cost.cycles:
            # Compaction that packs bank-conflicting rows can be slower than the dense
            # schedule; the compiler then runs this layer dense (a per-layer mode bit).
            return dense.with_mode("skipping-off", note, useful_macs=useful)
        return cost.with_mode(handling.value, note)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the sparse kernels, so timings exclude JIT."""
    mask = np.ones((2, 2), dtype=bool)
    mem = fm.MemoryParams(1, 4, 64.0, 64.0, 64.0, True, 1.0, 1.0, 1.0, 1.0, 1.0)
    folds = sk.skipping_folds(mask, 2, 2, 1, 2)
    sk.nm_folds(2, 4, 2, 2, 2, 4)
    sk.nm_violation(mask, 1, 2)
    cycles = sk.fold_cycles_fast(folds.conflict, 2, 2, 1)
    sk.sparse_gemm_folds(folds, cycles, 2, 1, 2, 2, mem)
    ptr, idx = sk.live_strips(mask, 2, 1)
    streamed = sk.stream_folds(ptr, idx, 1)
    fold_cycles = sk.streamed_fold_cycles(streamed.t, 2)
    for dataflow in (dk.OS, dk.IS):
        sk.stream_gemm_folds(dataflow, streamed, fold_cycles, 2, 2, 1, 2, 2, mem)
    stepping.fold_cycles_stepping(mask, 1, 2, 2, 1, 2, 1, 2, False)
    stepping.fold_cycles_stepping_os(mask, 1, 2, 2, 1)
    stepping.fold_cycles_stepping_is(mask, 1, 2, 2, 1)
