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
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

WS = 0
OS = 1
IS = 2

# Indices of the statistics vector returned by ``dense_gemm_folds``.
COMPUTE_CYCLES = 0
TOTAL_CYCLES = 1
FOLDS = 2
IFMAP_SRAM_READS = 3  # words read by the array
FILTER_SRAM_READS = 4
OFMAP_SRAM_WRITES = 5  # partial-sum / output words written by the array
OFMAP_SRAM_READS = 6  # partial sums read back for accumulation
IFMAP_DRAM_BYTES = 7
FILTER_DRAM_BYTES = 8
OFMAP_DRAM_READ_BYTES = 9  # spilled partial sums read back
OFMAP_DRAM_WRITE_BYTES = 10
SRAM_LIMITED_CYCLES = 11  # cycles added because an SRAM port could not keep up
N_STATS = 12


@njit(**JIT_OPTIONS)
def _ceil_div(a, b):
    return (a + b - 1) // b


@njit(**JIT_OPTIONS)
def _fetch_bytes(first_touch, operand_resident, chunk_changed, chunk_bytes, capacity_bytes):
    """DRAM bytes to bring an operand chunk in for this fold.

    A resident operand (it all fits its buffer) is fetched once, chunk by chunk, on first
    touch. Otherwise a chunk is fetched whenever it differs from the previous fold's, or
    every fold when the chunk alone overflows the buffer.
    """
    if operand_resident:
        return chunk_bytes if first_touch else 0.0
    if first_touch or chunk_changed or chunk_bytes > capacity_bytes:
        return chunk_bytes
    return 0.0


@njit(**JIT_OPTIONS)
def dense_gemm_schedule(
    dataflow,
    rows,
    cols,
    m,
    k,
    n,
    word_bytes,
    acc_bytes,
    ifmap_capacity_bytes,
    filter_capacity_bytes,
    ofmap_capacity_bytes,
    ifmap_sram_bytes_per_cycle,
    filter_sram_bytes_per_cycle,
    ofmap_sram_bytes_per_cycle,
    filter_dram_scale=1.0,
):
    """Per-fold schedule of one (m x k) @ (k x n) GEMM.

    ``filter_dram_scale`` (compressed / dense bytes of the weight; metadata can take it above
    1) multiplies every filter DRAM load, and so the filter SRAM writes that come from DRAM:
    weights travel compressed and are expanded on chip.

    Returns (stats, prefetch, inflight, writeback, busy): traffic statistics (the index
    constants above; TOTAL_CYCLES not yet filled), and per fold the DRAM bytes it needs
    before it starts, the partial-sum spill bytes it moves while it runs, the bytes it writes
    back after it ends, and its busy cycles (compute or SRAM-port bound).
    """
    stats = np.zeros(N_STATS, dtype=np.float64)
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
    ifmap_fits = m * k * word_bytes <= ifmap_capacity_bytes
    filter_fits = k * n * word_bytes <= filter_capacity_bytes

    prefetch = np.zeros(n_folds + 1, dtype=np.float64)  # inputs needed before fold f
    inflight = np.zeros(n_folds, dtype=np.float64)  # psum spill traffic during fold f
    writeback = np.zeros(n_folds, dtype=np.float64)  # outputs written after fold f
    busy = np.zeros(n_folds, dtype=np.float64)

    f = 0
    for outer in range(col_folds if dataflow != OS else row_folds):
        for inner in range(row_folds if dataflow != OS else col_folds):
            if dataflow == OS:
                r, c = outer, inner
            else:
                r, c = inner, outer
            rr = min(rows, spatial_rows - r * rows)
            cc = min(cols, spatial_cols - c * cols)
            last_r = r == row_folds - 1
            if dataflow == WS:
                # stationary weights rr x cc; ifmap chunk m x rr (id r); psum m x cc (id c)
                ifmap_words = m * rr
                filter_words = rr * cc
                psum_words = m * cc
                filter_load = filter_words * word_bytes
                ifmap_load = _fetch_bytes(
                    c == 0,
                    ifmap_fits,
                    row_folds > 1,
                    ifmap_words * word_bytes,
                    ifmap_capacity_bytes,
                )
            elif dataflow == IS:
                # stationary ifmap tile rr x cc; filter chunk rr x n (id r); psum cc x n (id c)
                ifmap_words = rr * cc
                filter_words = rr * n
                psum_words = cc * n
                ifmap_load = ifmap_words * word_bytes
                filter_load = _fetch_bytes(
                    c == 0,
                    filter_fits,
                    row_folds > 1,
                    filter_words * word_bytes,
                    filter_capacity_bytes,
                )
            else:
                # ifmap chunk rr x k (id r, outer); filter chunk k x cc (id c); output rr x cc
                ifmap_words = rr * k
                filter_words = k * cc
                psum_words = rr * cc
                # each ifmap chunk is used by one run of consecutive folds only
                ifmap_load = _fetch_bytes(
                    c == 0, False, c == 0, ifmap_words * word_bytes, ifmap_capacity_bytes
                )
                filter_load = _fetch_bytes(
                    r == 0,
                    filter_fits,
                    col_folds > 1,
                    filter_words * word_bytes,
                    filter_capacity_bytes,
                )

            filter_load *= filter_dram_scale
            stats[IFMAP_SRAM_READS] += ifmap_words
            stats[FILTER_SRAM_READS] += filter_words
            stats[OFMAP_SRAM_WRITES] += psum_words
            stats[IFMAP_DRAM_BYTES] += ifmap_load
            stats[FILTER_DRAM_BYTES] += filter_load
            prefetch[f] = ifmap_load + filter_load

            psum_reads = 0.0
            if dataflow == OS:
                writeback[f] = psum_words * word_bytes
            else:
                if r > 0:
                    psum_reads = psum_words
                psum_fits = psum_words * acc_bytes <= ofmap_capacity_bytes
                if last_r:
                    writeback[f] = psum_words * word_bytes
                elif not psum_fits:
                    inflight[f] += psum_words * acc_bytes
                    stats[OFMAP_DRAM_WRITE_BYTES] += psum_words * acc_bytes
                if r > 0 and not psum_fits:
                    inflight[f] += psum_words * acc_bytes
                    stats[OFMAP_DRAM_READ_BYTES] += psum_words * acc_bytes
            stats[OFMAP_SRAM_READS] += psum_reads
            stats[OFMAP_DRAM_WRITE_BYTES] += writeback[f]

            sram_cycles = max(
                ifmap_words * word_bytes / ifmap_sram_bytes_per_cycle,
                filter_words * word_bytes / filter_sram_bytes_per_cycle,
                (psum_words + psum_reads) * acc_bytes / ofmap_sram_bytes_per_cycle,
            )
            busy[f] = max(float(fold_cycles), sram_cycles)
            stats[SRAM_LIMITED_CYCLES] += busy[f] - fold_cycles
            f += 1

    stats[FOLDS] = n_folds
    stats[COMPUTE_CYCLES] = n_folds * fold_cycles - 1
    return stats, prefetch, inflight, writeback, busy


@njit(**JIT_OPTIONS)
def pipeline_elapsed(prefetch, inflight, writeback, busy, double_buffered, dram_bytes_per_cycle):
    """Cycles from the first DRAM load to the last write-back of a fold schedule."""
    n_folds = busy.shape[0]
    elapsed = 0.0
    if double_buffered:
        elapsed += prefetch[0] / dram_bytes_per_cycle
        for f in range(n_folds):
            moved = prefetch[f + 1] + inflight[f]
            if f > 0:
                moved += writeback[f - 1]
            elapsed += max(busy[f], moved / dram_bytes_per_cycle)
        elapsed += writeback[n_folds - 1] / dram_bytes_per_cycle
    else:
        for f in range(n_folds):
            elapsed += prefetch[f] / dram_bytes_per_cycle
            elapsed += max(busy[f], inflight[f] / dram_bytes_per_cycle)
            elapsed += writeback[f] / dram_bytes_per_cycle
    return elapsed


@njit(**JIT_OPTIONS)
def dense_gemm_folds(
    dataflow,
    rows,
    cols,
    m,
    k,
    n,
    word_bytes,
    acc_bytes,
    ifmap_capacity_bytes,
    filter_capacity_bytes,
    ofmap_capacity_bytes,
    double_buffered,
    dram_bytes_per_cycle,
    ifmap_sram_bytes_per_cycle,
    filter_sram_bytes_per_cycle,
    ofmap_sram_bytes_per_cycle,
    filter_dram_scale=1.0,
):
    """Statistics of one (m x k) @ (k x n) GEMM; see the index constants above."""
    stats, prefetch, inflight, writeback, busy = dense_gemm_schedule(
        dataflow,
        rows,
        cols,
        m,
        k,
        n,
        word_bytes,
        acc_bytes,
        ifmap_capacity_bytes,
        filter_capacity_bytes,
        ofmap_capacity_bytes,
        ifmap_sram_bytes_per_cycle,
        filter_sram_bytes_per_cycle,
        ofmap_sram_bytes_per_cycle,
        filter_dram_scale,
    )
    elapsed = pipeline_elapsed(
        prefetch, inflight, writeback, busy, double_buffered, dram_bytes_per_cycle
    )
    ideal_cycles = stats[COMPUTE_CYCLES] + 1  # folds x fold cycles, no stalls
    stall = np.ceil(elapsed - ideal_cycles - 1e-9)
    stats[TOTAL_CYCLES] = stats[COMPUTE_CYCLES] + max(stall, 0.0)
    return stats
