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
    accumulate_psums,
    fetch_bytes,
    finish,
    new_fold_log,
    record_fold,
)

WS = 0
OS = 1
IS = 2


@njit(**JIT_OPTIONS)
def _ceil_div(a, b):
    return (a + b - 1) // b


@njit(**JIT_OPTIONS)
def dense_gemm_schedule(dataflow, rows, cols, m, k, n, mem):
    """Per-fold schedule of one (m x k) @ (k x n) GEMM under ``mem`` (a
    ``fold_memory.MemoryParams``; its ``filter_dram_scale``, compressed / dense bytes of the
    weight, multiplies every filter DRAM load: weights travel compressed and are expanded on
    chip).

    Returns (stats, log, n_folds): traffic statistics (``fold_memory`` indices; TOTAL_CYCLES
    not yet filled) and the ``FoldLog``.
    """
    stats = np.zeros(N_STATS, dtype=np.float64)
    word = mem.word_bytes
    if dataflow == WS:
        spatial_rows, spatial_cols, temporal = k, n, m
        fold_overhead = 2 * rows + cols - 2
    elif dataflow == OS:
        spatial_rows, spatial_cols, temporal = m, n, k
        fold_overhead = rows + cols - 2
    else:
        spatial_rows, spatial_cols, temporal = k, m, n
        fold_overhead = 2 * rows + cols - 2
    row_folds = _ceil_div(spatial_rows, rows)
    col_folds = _ceil_div(spatial_cols, cols)
    n_folds = row_folds * col_folds
    fold_cycles = fold_overhead + temporal

    # Does the whole reused operand stay resident across the outer loop?
    ifmap_fits = m * k * word <= mem.ifmap_capacity_bytes
    filter_fits = k * n * word <= mem.filter_capacity_bytes
    log = new_fold_log(n_folds)

    f = 0
    for outer in range(col_folds if dataflow != OS else row_folds):
        for inner in range(row_folds if dataflow != OS else col_folds):
            if dataflow == OS:
                r, c = outer, inner
            else:
                r, c = inner, outer
            rr = min(rows, spatial_rows - r * rows)
            cc = min(cols, spatial_cols - c * cols)
            if dataflow == WS:
                # stationary weights rr x cc; ifmap chunk m x rr (id r); psum m x cc (id c)
                ifmap_words = m * rr
                filter_words = rr * cc
                psum_words = m * cc
                filter_load = filter_words * word
                ifmap_load = fetch_bytes(
                    c == 0, ifmap_fits, row_folds > 1, ifmap_words * word,
                    mem.ifmap_capacity_bytes,
                )  # fmt: skip
            elif dataflow == IS:
                # stationary ifmap tile rr x cc; filter chunk rr x n (id r); psum cc x n (id c)
                ifmap_words = rr * cc
                filter_words = rr * n
                psum_words = cc * n
                ifmap_load = ifmap_words * word
                filter_load = fetch_bytes(
                    c == 0, filter_fits, row_folds > 1, filter_words * word,
                    mem.filter_capacity_bytes,
                )  # fmt: skip
            else:
                # ifmap chunk rr x k (id r, outer); filter chunk k x cc (id c); output rr x cc
                ifmap_words = rr * k
                filter_words = k * cc
                psum_words = rr * cc
                # each ifmap chunk is used by one run of consecutive folds only
                ifmap_load = fetch_bytes(
                    c == 0, False, c == 0, ifmap_words * word, mem.ifmap_capacity_bytes
                )
                filter_load = fetch_bytes(
                    r == 0, filter_fits, col_folds > 1, filter_words * word,
                    mem.filter_capacity_bytes,
                )  # fmt: skip
            filter_load *= mem.filter_dram_scale

            if dataflow == OS:
                psum_reads = 0.0
                log.writeback[f] = psum_words * word
            else:
                psum_reads = accumulate_psums(
                    stats, log, f, psum_words, r == 0, r == row_folds - 1, mem
                )
            record_fold(
                stats, log, f, ifmap_words, filter_words, psum_words, psum_reads, ifmap_load,
                filter_load, fold_cycles, mem,
            )  # fmt: skip
            f += 1
    return stats, log, n_folds


@njit(**JIT_OPTIONS)
def dense_gemm_folds(dataflow, rows, cols, m, k, n, mem):
    """Statistics of one (m x k) @ (k x n) GEMM; see ``fold_memory``'s index constants."""
    stats, log, n_folds = dense_gemm_schedule(dataflow, rows, cols, m, k, n, mem)
    return finish(stats, log, n_folds, 0.0, mem)
