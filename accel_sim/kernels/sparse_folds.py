"""Sparse GEMMs on a weight-stationary systolic array: block skipping and N:M mode.

The GEMM is (m x K) @ (K x N) with the weight mask given ``[N, K]`` (torch's ``[out, in]``).
The N outputs are cut into column strips of C (one per array column-fold), as in the dense
kernel; what changes is which K-rows a strip's folds hold.

*Skipping (block compaction).* In strip c a K-row is live if any weight of the strip's
columns in that row is kept. Rows go in groups of ``granularity`` consecutive K-rows
(aligned at multiples of it); a group is live if any of its rows is, and the hardware loads
and streams all rows of the live groups (zeros inside a live group are multiplied), packed
densely, R per fold: ``ceil(packed_rows / R)`` folds per strip, the last maybe partial. A
strip with no live group has no folds and costs no compute cycles.

*Crossbar and banked ifmap SRAM.* The ifmap is held in B single-ported banks, K index i in
bank ``i % B``; each bank serves one word a cycle, in token order (it serves a token's
requests before the next token's), and a full crossbar routes any bank to any array row.
A token row is issued to the array (then skewed through it as usual) in the cycle its last
word is served; nothing is reordered across token rows. So a token row takes
``conflict = max over banks of (the fold's K indices in that bank)`` cycles
(>= ``ceil(rr / B)``), and a fold lasts ``2R + C - 2 + T * conflict`` cycles (T = m token
rows): R preload cycles, then streaming, skew and drain. Contiguous rows with ``B >= R``
give conflict 1 and SCALE-Sim's dense fold, ``2R + C + T - 2``.

*N:M mode* (NVIDIA sparse-tensor-core style). Every group of M weights along K holds at most
N kept ones. Each array row holds, for every column, one of the N slots of an M-group (the
kept weight, or a zero pad) plus its index; a mux in the PE selects the matching one of the
group's M inputs, which sit in that row's register window (the ifmap SRAM delivers a group's
M inputs as one wide word, so there are no bank conflicts in this mode). The stationary K
dimension shrinks to ``K * N / M`` and every strip runs it in full: folds are dense folds of
that shorter K, conflict 1.

*Memory* follows the dense kernel per fold: the filter chunk is the fold's rr x cc tile, the
ifmap chunk the m x (the fold's distinct K indices) gathered inputs, partial sums m x cc per
strip (accumulated over the strip's folds, spilled when they overflow the ofmap buffer). The
weight travels compressed: its DRAM bytes are ``filter_dram_scale * K * N * word`` in all
(each weight is fetched once under WS), shared among the folds in proportion to their tile
words. An ifmap that fits its buffer (``m x live K rows``) is fetched once, row by row on
first touch; otherwise a fold reloads its chunk when its K-index set differs from the
previous fold's (or always, when the chunk overflows the buffer). Outputs of a strip with no
folds are zeros and are still written back to DRAM (after the last fold). Timing with DRAM
overlap is the dense kernel's ``pipeline_elapsed``.

Kernels:

- ``skipping_folds`` / ``nm_folds``: the fold list (strip, rows used, bank conflict and the
  K indices each fold holds) of a mask.
- ``fold_cycles_fast``: each fold's compute cycles from its conflict factor (closed form).
- ``fold_cycles_stepping``: the cycle-stepping reference: banks, issue, skew and drain of
  every PE, cycle by cycle; returns the same per-fold cycles and the MACs it performed.
- ``sparse_schedule`` / ``sparse_gemm_folds``: memory schedule and statistics.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.dense_folds import (
    COMPUTE_CYCLES,
    FILTER_DRAM_BYTES,
    FILTER_SRAM_READS,
    FOLDS,
    IFMAP_DRAM_BYTES,
    IFMAP_SRAM_READS,
    N_STATS,
    OFMAP_DRAM_READ_BYTES,
    OFMAP_DRAM_WRITE_BYTES,
    OFMAP_SRAM_READS,
    OFMAP_SRAM_WRITES,
    SRAM_LIMITED_CYCLES,
    TOTAL_CYCLES,
    pipeline_elapsed,
)

__all__ = [
    "BANK_CONFLICT_CYCLES",
    "COMPACTED_WEIGHTS",
    "CONFLICT_SUM",
    "N_SPARSE_STATS",
    "fold_cycles_fast",
    "fold_cycles_stepping",
    "nm_folds",
    "nm_violation",
    "skipping_folds",
    "sparse_gemm_folds",
    "sparse_schedule",
]

# Statistics beyond the dense kernel's (indices into the same vector).
BANK_CONFLICT_CYCLES = N_STATS  # cycles lost to bank conflicts: sum of T * (conflict - 1)
COMPACTED_WEIGHTS = N_STATS + 1  # words of the tiles mapped: performed MACs = this x m
CONFLICT_SUM = N_STATS + 2  # sum over folds of the conflict factor (mean = this / folds)
N_SPARSE_STATS = N_STATS + 3


@njit(**JIT_OPTIONS)
def _ceil_div(a, b):
    return (a + b - 1) // b


@njit(**JIT_OPTIONS)
def _conflict(k_idx, start, stop, banks, counts):
    """Most K indices of ``k_idx[start:stop]`` that share a bank (``counts``: scratch)."""
    worst = 0
    for j in range(start, stop):
        counts[k_idx[j] % banks] = 0
    for j in range(start, stop):
        b = k_idx[j] % banks
        counts[b] += 1
        if counts[b] > worst:
            worst = counts[b]
    return worst


@njit(**JIT_OPTIONS)
def skipping_folds(mask, rows, cols, granularity, banks):
    """Folds of block skipping for a bool ``mask [N, K]``.

    Returns (fold_strip, fold_rows, fold_conflict, fold_k_ptr, fold_k_idx): per fold its
    column strip, the array rows it uses, its bank-conflict factor, and (CSR) the K indices
    its rows hold. Folds are strip-major, and within a strip in K order.
    """
    n, k = mask.shape
    n_strips = _ceil_div(n, cols)
    max_folds = n_strips * _ceil_div(k, rows)
    fold_strip = np.zeros(max_folds, dtype=np.int64)
    fold_rows = np.zeros(max_folds, dtype=np.int64)
    fold_conflict = np.zeros(max_folds, dtype=np.int64)
    fold_k_ptr = np.zeros(max_folds + 1, dtype=np.int64)
    fold_k_idx = np.zeros(n_strips * k, dtype=np.int64)
    live = np.zeros(k, dtype=np.bool_)
    counts = np.zeros(banks, dtype=np.int64)
    f = 0
    used = 0
    for c in range(n_strips):
        c0 = c * cols
        c1 = min(n, c0 + cols)
        for i in range(k):
            live[i] = False
        for j in range(c0, c1):
            for i in range(k):
                if mask[j, i]:
                    live[i] = True
        start = used
        for g0 in range(0, k, granularity):
            g1 = min(k, g0 + granularity)
            group_live = False
            for i in range(g0, g1):
                if live[i]:
                    group_live = True
                    break
            if group_live:
                for i in range(g0, g1):
                    fold_k_idx[used] = i
                    used += 1
        for s in range(start, used, rows):
            e = min(used, s + rows)
            fold_strip[f] = c
            fold_rows[f] = e - s
            fold_conflict[f] = _conflict(fold_k_idx, s, e, banks, counts)
            fold_k_ptr[f + 1] = e
            f += 1
    return (
        fold_strip[:f].copy(),
        fold_rows[:f].copy(),
        fold_conflict[:f].copy(),
        fold_k_ptr[: f + 1].copy(),
        fold_k_idx[:used].copy(),
    )


@njit(**JIT_OPTIONS)
def nm_violation(mask, nm_n, nm_m):
    """First (row, group, count) of ``mask [N, K]`` whose M-group along K holds more than N
    kept weights, or (-1, -1, 0) if none (K must be a multiple of M; the caller checks)."""
    n, k = mask.shape
    for j in range(n):
        for g in range(k // nm_m):
            cnt = 0
            for i in range(g * nm_m, (g + 1) * nm_m):
                if mask[j, i]:
                    cnt += 1
            if cnt > nm_n:
                return j, g, cnt
    return -1, -1, 0


@njit(**JIT_OPTIONS)
def nm_folds(n, k, rows, cols, nm_n, nm_m):
    """Folds of N:M mode for an (m x k) @ (k x n) GEMM (same outputs as ``skipping_folds``).

    The stationary dimension has ``k / nm_m * nm_n`` slots, slot s of M-group s // N; a fold's
    K indices are the M inputs of every group it touches. Conflict is 1 (see module doc).
    """
    slots = k // nm_m * nm_n
    n_strips = _ceil_div(n, cols)
    per_strip = _ceil_div(slots, rows)
    n_folds = n_strips * per_strip
    fold_strip = np.zeros(n_folds, dtype=np.int64)
    fold_rows = np.zeros(n_folds, dtype=np.int64)
    fold_conflict = np.ones(n_folds, dtype=np.int64)
    fold_k_ptr = np.zeros(n_folds + 1, dtype=np.int64)
    # a fold of rr slots touches at most rr groups
    fold_k_idx = np.zeros(n_folds * min(rows, slots) * nm_m, dtype=np.int64)
    f = 0
    used = 0
    for c in range(n_strips):
        for s in range(0, slots, rows):
            e = min(slots, s + rows)
            fold_strip[f] = c
            fold_rows[f] = e - s
            for g in range(s // nm_n, (e - 1) // nm_n + 1):
                for i in range(g * nm_m, (g + 1) * nm_m):
                    fold_k_idx[used] = i
                    used += 1
            fold_k_ptr[f + 1] = used
            f += 1
    return fold_strip, fold_rows, fold_conflict, fold_k_ptr, fold_k_idx[:used].copy()


@njit(**JIT_OPTIONS)
def fold_cycles_fast(fold_conflict, rows, cols, m):
    """Compute cycles of each fold: ``2R + C - 2 + T * conflict`` (T = m token rows)."""
    out = np.empty(fold_conflict.shape[0], dtype=np.int64)
    for f in range(fold_conflict.shape[0]):
        out[f] = 2 * rows + cols - 2 + m * fold_conflict[f]
    return out


@njit(**JIT_OPTIONS)
def _step_fold(row_bank, n_banks, rr, cc, rows, cols, m):
    """Step one fold cycle by cycle; returns (cycles, MACs performed).

    Cycle 0..R-1: preload (weights shift down one row a cycle). Then, from streaming cycle
    x = 0: (1) every bank with requests left serves the oldest one (token order); (2) the next
    token row is issued if all its rr words have been served (one issue a cycle); (3) the array
    shifts: PE (i, j) takes its left neighbour's token, row i's first PE takes the token issued
    in cycle x - i (the skew), and every PE holding a token (i < rr, j < cc) does a MAC. Unused
    PEs pass partial sums through, so outputs drain through the full R x C array. The fold
    ends after the last cycle in which any PE holds a token.
    """
    per_bank = np.zeros(n_banks, dtype=np.int64)
    for i in range(rr):
        per_bank[row_bank[i]] += 1
    served = np.zeros(n_banks, dtype=np.int64)
    delivered = np.zeros(m, dtype=np.int64)
    horizon = m * rr + 1  # issue cycles are < m * worst conflict <= m * rr
    issued_at = np.full(horizon, -1, dtype=np.int64)
    grid = np.full((rows, cols), -1, dtype=np.int64)
    issued = 0
    macs = 0
    last_active = -1
    x = 0
    while True:
        for b in range(n_banks):
            if served[b] < m * per_bank[b]:
                delivered[served[b] // per_bank[b]] += 1
                served[b] += 1
        if issued < m and delivered[issued] == rr:
            issued_at[x] = issued
            issued += 1
        any_active = False
        for i in range(rows):
            for j in range(cols - 1, 0, -1):
                grid[i, j] = grid[i, j - 1]
            src = x - i
            grid[i, 0] = issued_at[src] if 0 <= src < horizon else -1
            for j in range(cols):
                if grid[i, j] >= 0:
                    any_active = True
                    if i < rr and j < cc:
                        macs += 1
        if any_active:
            last_active = x
        elif issued == m:
            break  # everything issued, and the last token has left the array
        x += 1
    return rows + last_active + 1, macs


@njit(**JIT_OPTIONS)
def fold_cycles_stepping(mask, m, rows, cols, granularity, banks, nm_n, nm_m, nm_mode):
    """Cycle-stepping reference for one GEMM: (per-fold cycles, MACs performed).

    Packs the folds itself from ``mask [N, K]`` (skipping at ``granularity``, or N:M mode when
    ``nm_mode``), gives each fold row its ifmap bank (``k % banks``; in N:M mode a distinct
    port per row, no conflicts) and steps every fold with ``_step_fold``. Folds run back to
    back: a fold's preload starts in the cycle after the previous fold's last active cycle.
    """
    n, k = mask.shape
    n_strips = (n + cols - 1) // cols
    out = np.zeros(n_strips * ((k + rows - 1) // rows) + 1, dtype=np.int64)
    total_macs = 0
    f = 0
    packed = np.zeros(k, dtype=np.int64)
    row_bank = np.zeros(rows, dtype=np.int64)
    for c in range(n_strips):
        cc = min(cols, n - c * cols)
        if nm_mode:
            n_packed = k // nm_m * nm_n  # slots; banks are per row, conflict-free
            n_banks = rows
        else:
            n_banks = banks
            n_packed = 0
            for g0 in range(0, k, granularity):
                g1 = min(k, g0 + granularity)
                keep = False
                for i in range(g0, g1):
                    for j in range(c * cols, c * cols + cc):
                        if mask[j, i]:
                            keep = True
                if keep:
                    for i in range(g0, g1):
                        packed[n_packed] = i
                        n_packed += 1
        for s in range(0, n_packed, rows):
            rr = min(rows, n_packed - s)
            for i in range(rr):
                row_bank[i] = i if nm_mode else packed[s + i] % banks
            cycles, macs = _step_fold(row_bank, n_banks, rr, cc, rows, cols, m)
            out[f] = cycles
            total_macs += macs
            f += 1
    return out[:f].copy(), total_macs


@njit(**JIT_OPTIONS)
def _fetch(first_touch, chunk_changed, chunk_bytes, capacity_bytes):
    if first_touch or chunk_changed or chunk_bytes > capacity_bytes:
        return chunk_bytes
    return 0.0


@njit(**JIT_OPTIONS)
def sparse_schedule(
    fold_strip,
    fold_rows,
    fold_conflict,
    fold_k_ptr,
    fold_k_idx,
    fold_cycles,
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
):
    """Per-fold memory schedule of a compacted WS GEMM (``dense_gemm_schedule``'s outputs,
    with the stats vector ``N_SPARSE_STATS`` long); ``fold_cycles`` from either engine.

    Returns (stats, prefetch, inflight, writeback, busy, dead_writeback_bytes): the last is
    the zero outputs of strips without folds, written back after the last fold.
    """
    n_folds = fold_strip.shape[0]
    stats = np.zeros(N_SPARSE_STATS, dtype=np.float64)
    n_strips = _ceil_div(n, cols)

    compact_words = 0.0
    for f in range(n_folds):
        cc = min(cols, n - fold_strip[f] * cols)
        compact_words += fold_rows[f] * cc
    ratio = (k * n) / compact_words if compact_words > 0 else 0.0

    seen = np.zeros(k, dtype=np.bool_)
    live_k = 0
    for j in range(fold_k_idx.shape[0]):
        if not seen[fold_k_idx[j]]:
            seen[fold_k_idx[j]] = True
            live_k += 1
    seen[:] = False
    ifmap_fits = m * live_k * word_bytes <= ifmap_capacity_bytes

    strip_folds = np.zeros(n_strips, dtype=np.int64)
    for f in range(n_folds):
        strip_folds[fold_strip[f]] += 1

    prefetch = np.zeros(n_folds + 1, dtype=np.float64)
    inflight = np.zeros(n_folds, dtype=np.float64)
    writeback = np.zeros(n_folds, dtype=np.float64)
    busy = np.zeros(n_folds, dtype=np.float64)

    index_in_strip = 0
    for f in range(n_folds):
        c = fold_strip[f]
        if f > 0 and fold_strip[f - 1] != c:
            index_in_strip = 0
        rr = fold_rows[f]
        cc = min(cols, n - c * cols)
        last_r = index_in_strip == strip_folds[c] - 1
        a, b = fold_k_ptr[f], fold_k_ptr[f + 1]
        k_words = b - a
        ifmap_words = m * k_words
        filter_words = rr * cc
        psum_words = m * cc

        filter_load = filter_words * word_bytes * ratio * filter_dram_scale
        if ifmap_fits:
            new_rows = 0
            for j in range(a, b):
                if not seen[fold_k_idx[j]]:
                    seen[fold_k_idx[j]] = True
                    new_rows += 1
            ifmap_load = float(m * new_rows * word_bytes)
        else:
            changed = f == 0
            if not changed:
                pa, pb = fold_k_ptr[f - 1], fold_k_ptr[f]
                if pb - pa != b - a:
                    changed = True
                else:
                    for j in range(b - a):
                        if fold_k_idx[pa + j] != fold_k_idx[a + j]:
                            changed = True
                            break
            ifmap_load = _fetch(f == 0, changed, ifmap_words * word_bytes, ifmap_capacity_bytes)

        stats[IFMAP_SRAM_READS] += ifmap_words
        stats[FILTER_SRAM_READS] += filter_words
        stats[OFMAP_SRAM_WRITES] += psum_words
        stats[IFMAP_DRAM_BYTES] += ifmap_load
        stats[FILTER_DRAM_BYTES] += filter_load
        stats[COMPACTED_WEIGHTS] += filter_words
        stats[CONFLICT_SUM] += fold_conflict[f]
        stats[BANK_CONFLICT_CYCLES] += m * (fold_conflict[f] - 1)
        prefetch[f] = ifmap_load + filter_load

        psum_reads = 0.0
        if index_in_strip > 0:
            psum_reads = psum_words
        psum_fits = psum_words * acc_bytes <= ofmap_capacity_bytes
        if last_r:
            writeback[f] = psum_words * word_bytes
        elif not psum_fits:
            inflight[f] += psum_words * acc_bytes
            stats[OFMAP_DRAM_WRITE_BYTES] += psum_words * acc_bytes
        if index_in_strip > 0 and not psum_fits:
            inflight[f] += psum_words * acc_bytes
            stats[OFMAP_DRAM_READ_BYTES] += psum_words * acc_bytes
        stats[OFMAP_SRAM_READS] += psum_reads
        stats[OFMAP_DRAM_WRITE_BYTES] += writeback[f]

        sram_cycles = max(
            ifmap_words * word_bytes / ifmap_sram_bytes_per_cycle,
            filter_words * word_bytes / filter_sram_bytes_per_cycle,
            (psum_words + psum_reads) * acc_bytes / ofmap_sram_bytes_per_cycle,
        )
        busy[f] = max(float(fold_cycles[f]), sram_cycles)
        stats[SRAM_LIMITED_CYCLES] += busy[f] - fold_cycles[f]
        stats[COMPUTE_CYCLES] += fold_cycles[f]
        index_in_strip += 1

    dead_writeback = 0.0
    for c in range(n_strips):
        if strip_folds[c] == 0:
            dead_writeback += m * min(cols, n - c * cols) * word_bytes
    stats[OFMAP_DRAM_WRITE_BYTES] += dead_writeback
    stats[FOLDS] = n_folds
    stats[COMPUTE_CYCLES] = max(stats[COMPUTE_CYCLES] - 1.0, 0.0)
    return stats, prefetch, inflight, writeback, busy, dead_writeback


@njit(**JIT_OPTIONS)
def sparse_gemm_folds(
    fold_strip,
    fold_rows,
    fold_conflict,
    fold_k_ptr,
    fold_k_idx,
    fold_cycles,
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
    filter_dram_scale,
):
    """Statistics of one compacted WS GEMM (index constants of both kernels), with stalls
    from the dense kernel's ``pipeline_elapsed``."""
    stats, prefetch, inflight, writeback, busy, dead = sparse_schedule(
        fold_strip,
        fold_rows,
        fold_conflict,
        fold_k_ptr,
        fold_k_idx,
        fold_cycles,
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
    n_folds = busy.shape[0]
    if n_folds == 0:
        elapsed = dead / dram_bytes_per_cycle
        ideal_cycles = 0.0
    else:
        writeback[n_folds - 1] += dead
        elapsed = pipeline_elapsed(
            prefetch, inflight, writeback, busy, double_buffered, dram_bytes_per_cycle
        )
        ideal_cycles = stats[COMPUTE_CYCLES] + 1
    stall = np.ceil(elapsed - ideal_cycles - 1e-9)
    stats[TOTAL_CYCLES] = stats[COMPUTE_CYCLES] + max(stall, 0.0)
    return stats
