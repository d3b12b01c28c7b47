"""Fold-level timing and traffic of one dense GEMM on a systolic array.

The array maps a GEMM onto ``ceil(Sr/R) x ceil(Sc/C)`` folds, with SCALE-Sim's
spatio-temporal split (topology_utils.calc_spatio_temporal_params):
weight-stationary Sr=K, Sc=N, T=M; output-stationary Sr=M, Sc=N, T=K; input-stationary
Sr=K, Sc=M, T=N. A fold lasts ``2R + C + T - 2`` cycles (WS, IS: R cycles of stationary
preload, then skewed streaming and drain) or ``R + C + T - 2`` (OS); the GEMM's compute
cycles are the sum minus one, which reproduces SCALE-Sim 3.0.0 exactly.

Unlike SCALE-Sim, partial sums accumulate on chip (ofmap buffer) when they fit, and memory is
modelled per fold: each operand chunk is fetched from DRAM when first touched if the whole
operand fits in its (double-buffered: half) buffer, else every time the chunk changes (or
every fold, if the chunk alone overflows the buffer).
With double buffering the next fold's inputs and the previous fold's outputs move while the
current fold computes; a fold lasts the longest of its compute, its SRAM port time and that
DRAM traffic. Without double buffering a fold waits for its loads and then for its stores.
The memory side (statistics, partial-sum spills, stalls) is ``fold_memory``'s, shared with
the compacting kernels.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.fold_memory import (
    N_STATS,
    FoldPlan,
    MemoryParams,
    accumulate_psums,
    finish,
    new_fold_log,
    no_totals,
    operand_load,
    record_fold,
    store_totals,
)

WS = 0
OS = 1
IS = 2


@njit(**JIT_OPTIONS)
def _ceil_div(a, b):
    return (a + b - 1) // b


@njit(**JIT_OPTIONS)
def fold_overhead(dataflow, rows, cols):
    """Cycles a serial fold spends beyond streaming its T rows: preload (WS, IS), skew and
    drain."""
    return rows + cols - 2 if dataflow == OS else 2 * rows + cols - 2


@njit(**JIT_OPTIONS)
def dense_gemm_schedule(dataflow, rows, cols, m, k, n, mem, plan):
    """Per-fold schedule of one (m x k) @ (k x n) GEMM under ``mem`` (a
    ``fold_memory.MemoryParams``; its ``filter_dram_scale``, compressed / dense bytes of the
    weight, multiplies every filter DRAM load: weights travel compressed and are expanded on
    chip) and ``plan`` (a ``fold_memory.FoldPlan``: loop order, preload, on-chip operands).

    Returns (stats, log, n_folds): traffic statistics (``fold_memory`` indices; TOTAL_CYCLES
    not yet filled) and the ``FoldLog``.
    """
    stats = np.zeros(N_STATS, dtype=np.float64)
    word = mem.word_bytes
    if dataflow == WS:
        spatial_rows, spatial_cols, temporal = k, n, m
    elif dataflow == OS:
        spatial_rows, spatial_cols, temporal = m, n, k
    else:
        spatial_rows, spatial_cols, temporal = k, m, n
    overhead = fold_overhead(dataflow, rows, cols)
    row_folds = _ceil_div(spatial_rows, rows)
    col_folds = _ceil_div(spatial_cols, cols)
    n_folds = row_folds * col_folds
    serial = overhead + temporal
    steady = max(temporal, rows) if plan.overlapped else serial
    rows_outer = plan.rows_outer

    # Does the whole reused operand stay resident across the outer loop?
    ifmap_fits = m * k * word * mem.ifmap_scale <= mem.ifmap_capacity_bytes
    filter_fits = k * n * word <= mem.filter_capacity_bytes
    log = new_fold_log(n_folds)
    prefetch, inflight, writeback, busy = log
    totals = no_totals()

    f = 0
    for outer in range(row_folds if rows_outer else col_folds):
        for inner in range(col_folds if rows_outer else row_folds):
            if rows_outer:
                r, c = outer, inner
            else:
                r, c = inner, outer
            rr = min(rows, spatial_rows - r * rows)
            cc = min(cols, spatial_cols - c * cols)
            if dataflow == WS:
                # stationary weights rr x cc; ifmap chunk m x rr (id r); psum m x cc (id c)
                ifmap_words = m * rr * mem.ifmap_scale
                filter_words = rr * cc
                psum_words = m * cc
                live_words = m * n if rows_outer else psum_words
                filter_load = filter_words * word
                ifmap_load = operand_load(
                    True, r, c, rows_outer, row_folds, col_folds, ifmap_fits,
                    ifmap_words * word, mem.ifmap_capacity_bytes,
                )  # fmt: skip
            elif dataflow == IS:
                # stationary ifmap tile rr x cc; filter chunk rr x n (id r); psum cc x n (id c)
                ifmap_words = rr * cc * mem.ifmap_scale
                filter_words = rr * n
                psum_words = cc * n
                live_words = m * n if rows_outer else psum_words
                ifmap_load = ifmap_words * word
                filter_load = operand_load(
                    True, r, c, rows_outer, row_folds, col_folds, filter_fits,
                    filter_words * word, mem.filter_capacity_bytes,
                )  # fmt: skip
            else:
                # ifmap chunk rr x k (id r); filter chunk k x cc (id c); output rr x cc
                ifmap_words = rr * k * mem.ifmap_scale
                filter_words = k * cc
                psum_words = rr * cc
                live_words = psum_words
                ifmap_load = operand_load(
                    True, r, c, rows_outer, row_folds, col_folds, ifmap_fits,
                    ifmap_words * word, mem.ifmap_capacity_bytes,
                )  # fmt: skip
                filter_load = operand_load(
                    False, r, c, rows_outer, row_folds, col_folds, filter_fits,
                    filter_words * word, mem.filter_capacity_bytes,
                )  # fmt: skip
            filter_load *= mem.filter_dram_scale
            if plan.ifmap_on_chip:
                ifmap_load = 0.0
            if plan.filter_on_chip:
                filter_load = 0.0

            if dataflow == OS:
                psum_reads = spill_written = spill_read = 0.0
                if not plan.outputs_on_chip:
                    writeback[f] = psum_words * word
            else:
                psum_reads, spill_written, spill_read = accumulate_psums(
                    inflight, writeback, f, psum_words, live_words, r == 0,
                    r == row_folds - 1, mem, plan.outputs_on_chip,
                )  # fmt: skip
            totals = record_fold(
                totals, prefetch, writeback, busy, f, ifmap_words, filter_words, psum_words,
                psum_reads, spill_written, spill_read, ifmap_load, filter_load,
                serial if f == 0 else steady, mem,
            )  # fmt: skip
            f += 1
    store_totals(stats, totals)
    return stats, log, n_folds


@njit(**JIT_OPTIONS)
def dense_gemm_schedule_plain(dataflow, rows, cols, m, k, n, mem, plan):
    """``dense_gemm_schedule`` taking ``mem`` and ``plan`` as plain tuples, rebuilt here (a
    named tuple argument costs Numba's dispatch about 3 µs more a call)."""
    return dense_gemm_schedule(dataflow, rows, cols, m, k, n, MemoryParams(*mem), FoldPlan(*plan))


@njit(**JIT_OPTIONS)
def dense_gemm_folds(dataflow, rows, cols, m, k, n, mem, plan):
    """Statistics of one (m x k) @ (k x n) GEMM; see ``fold_memory``'s index constants."""
    stats, log, n_folds = dense_gemm_schedule(dataflow, rows, cols, m, k, n, mem, plan)
    return finish(stats, log, n_folds, 0.0, mem)
