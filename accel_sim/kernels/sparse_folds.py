"""Sparse GEMMs on a systolic array: block skipping (every dataflow) and N:M mode (WS).

The GEMM is (m x K) @ (K x N) with the weight mask given ``[N, K]`` (torch's ``[out, in]``).
Under weight-stationary the N outputs are cut into column strips of C (one per array
column-fold), as in the dense kernel; what changes is which K-rows a strip's folds hold.
Output- and input-stationary compaction (at the end of this docstring) shorten the streamed
dimension instead.

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

*Output-stationary skipping* (SCALE-Sim's Sr = m, Sc = N, T = K). Folds are (row fold r of
R tokens, output strip c of C columns), row-fold-major as in the dense kernel. Strip c's live
K indices are found as under WS (groups of ``granularity``); the fold streams only those:
``R + C - 2 + T_live`` cycles, T_live the strip's live count (the same for every row fold).
A strip with no live K has no folds; its m x cc outputs are zeros written back after the
last fold. Banks: every array row needs the same K index of a different token each cycle;
the ifmap is banked by token (one port per array row, as the dense OS schedule already
assumes), so compaction changes only the address each row reads and causes no conflict
(``ifmap_banks`` does not apply). The filter buffer holds the strip's compacted T_live x cc
chunk and reads one row of it a cycle. Conflict is 1. Memory: ifmap rr x T_live gathered words
per fold; row fold r's chunk (rr tokens x the live K of all strips) is fetched on first touch
of each K index within the row fold when it fits the ifmap buffer, else every fold fetches its
rr x T_live. The filter chunk T_live x cc is fetched once per strip if the compacted weight
(sum of T_live x cc) fits the filter buffer, else whenever the strip changes. Outputs rr x cc
are written back after each fold.

*Input-stationary skipping* (Sr = K, Sc = m, T = N). Folds are (column fold c of C tokens,
K strip r of R rows), token-fold-major as in the dense kernel. Strip r's live indices are the
output columns (N, in aligned groups of ``granularity``) with a kept weight in the strip's
K rows; the fold preloads its rr x cc ifmap tile and streams only those columns: ``2R + C - 2
+ T_live`` cycles. Each array row reads its own row of the compacted rr x T_live weight chunk
(one port per row, as dense IS), so conflict is 1. A K strip with no live column has no
folds (its inputs are never fetched). Partial sums: token strip c accumulates a cc x n region
over its run of K strips; a fold writes cc x T_live psums, reads back the columns an earlier
fold of the run touched, and writes back as outputs the columns no later fold touches; the
psums of skipped columns stay untouched. When ``cc * n`` accumulators overflow the ofmap
buffer, a fold spills the columns a later fold touches again and reads back from DRAM those
touched earlier. Columns no strip touches are zeros written back after the last fold.

Under OS and IS the weight's DRAM bytes per fetch are ``filter_dram_scale`` x (chunk words x
word) x ``K * N / compacted words``, so one pass over the compacted weight costs the
compressed size ``filter_dram_scale * K * N * word``. With an all-ones mask both reproduce
``dense_folds.dense_gemm_folds`` exactly; N:M mode is modelled for WS only.

Kernels:

- ``skipping_folds`` / ``nm_folds``: the fold list (strip, rows used, bank conflict and the
  K indices each fold holds) of a mask.
- ``fold_cycles_fast``: each fold's compute cycles from its conflict factor (closed form).
- ``fold_cycles_stepping``: the cycle-stepping reference: banks, issue, skew and drain of
  every PE, cycle by cycle; returns the same per-fold cycles and the MACs it performed.
- ``sparse_schedule`` / ``sparse_gemm_folds``: memory schedule and statistics.
- OS/IS: ``live_strips`` (live indices per strip), ``stream_folds``, ``streamed_fold_cycles``
  (closed form), ``fold_cycles_stepping_os`` / ``fold_cycles_stepping_is`` (cycle-stepping
  references), ``os_schedule`` / ``is_schedule`` / ``stream_gemm_folds`` (memory, statistics).
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
    OS,
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
    "fold_cycles_stepping_is",
    "fold_cycles_stepping_os",
    "is_schedule",
    "live_strips",
    "nm_folds",
    "nm_violation",
    "os_schedule",
    "skipping_folds",
    "sparse_gemm_folds",
    "sparse_schedule",
    "stream_folds",
    "stream_gemm_folds",
    "streamed_fold_cycles",
]

# Statistics beyond the dense kernel's (indices into the same vector).
BANK_CONFLICT_CYCLES = N_STATS  # cycles lost to bank conflicts: sum of T * (conflict - 1)
COMPACTED_WEIGHTS = N_STATS + 1  # words of the compacted weight: performed MACs = this x m
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


# ---- output- and input-stationary compaction ---------------------------------------------


@njit(**JIT_OPTIONS)
def live_strips(mask, width, granularity):
    """Live indices per strip of a bool ``mask [S, L]`` cut into strips of ``width`` along S.

    Index l along L is live in a strip if any of the strip's rows keeps it; indices go in
    aligned groups of ``granularity`` and every index of a live group is kept. Returns (ptr,
    idx): strip s's live indices are ``idx[ptr[s]:ptr[s + 1]]``, ascending. OS passes the mask
    ``[N, K]`` with width C (live K per output strip); IS passes ``mask.T [K, N]`` with width R
    (live N per K strip).
    """
    s_dim, l_dim = mask.shape
    n_strips = _ceil_div(s_dim, width)
    ptr = np.zeros(n_strips + 1, dtype=np.int64)
    idx = np.zeros(n_strips * l_dim, dtype=np.int64)
    live = np.zeros(l_dim, dtype=np.bool_)
    used = 0
    for s in range(n_strips):
        for i in range(l_dim):
            live[i] = False
        for j in range(s * width, min(s_dim, s * width + width)):
            for i in range(l_dim):
                if mask[j, i]:
                    live[i] = True
        for g0 in range(0, l_dim, granularity):
            g1 = min(l_dim, g0 + granularity)
            group_live = False
            for i in range(g0, g1):
                if live[i]:
                    group_live = True
                    break
            if group_live:
                for i in range(g0, g1):
                    idx[used] = i
                    used += 1
        ptr[s + 1] = used
    return ptr, idx[:used].copy()


@njit(**JIT_OPTIONS)
def stream_folds(strip_ptr, tiles):
    """Folds of OS/IS compaction: for each of ``tiles`` outer tiles (row folds of m under OS,
    column folds of m under IS), one fold per strip that has live indices. Returns (fold_tile,
    fold_strip, fold_t), fold_t being the streamed length (the strip's live count)."""
    n_strips = strip_ptr.shape[0] - 1
    live = 0
    for s in range(n_strips):
        if strip_ptr[s + 1] > strip_ptr[s]:
            live += 1
    fold_tile = np.zeros(tiles * live, dtype=np.int64)
    fold_strip = np.zeros(tiles * live, dtype=np.int64)
    fold_t = np.zeros(tiles * live, dtype=np.int64)
    f = 0
    for t in range(tiles):
        for s in range(n_strips):
            if strip_ptr[s + 1] > strip_ptr[s]:
                fold_tile[f] = t
                fold_strip[f] = s
                fold_t[f] = strip_ptr[s + 1] - strip_ptr[s]
                f += 1
    return fold_tile, fold_strip, fold_t


@njit(**JIT_OPTIONS)
def streamed_fold_cycles(fold_t, overhead):
    """Compute cycles of OS/IS folds: ``overhead + T_live`` (OS: R + C - 2, IS: 2R + C - 2)."""
    out = np.empty(fold_t.shape[0], dtype=np.int64)
    for f in range(fold_t.shape[0]):
        out[f] = overhead + fold_t[f]
    return out


@njit(**JIT_OPTIONS)
def _step_fold_os(rr, cc, rows, cols, t):
    """Step one output-stationary fold; returns (cycles, MACs performed).

    Stream position s (the s-th live K index) enters array row i's left edge in cycle s + i
    (the ifmap of the row's token) and column j's top edge in cycle s + j (the weight of the
    column's output); activations shift right and weights down one PE a cycle, through all
    R x C PEs (pad words in unused rows and columns, as SCALE-Sim's demand matrices). PE
    (i, j) with i < rr, j < cc does a MAC when it holds an activation and a weight of the same
    position. The fold ends after the last cycle in which any PE holds an operand.
    """
    act = np.full((rows, cols), -1, dtype=np.int64)
    wgt = np.full((rows, cols), -1, dtype=np.int64)
    macs = 0
    last_active = -1
    x = 0
    while True:
        for i in range(rows):
            for j in range(cols - 1, 0, -1):
                act[i, j] = act[i, j - 1]
            src = x - i
            act[i, 0] = src if 0 <= src < t else -1
        for j in range(cols):
            for i in range(rows - 1, 0, -1):
                wgt[i, j] = wgt[i - 1, j]
            src = x - j
            wgt[0, j] = src if 0 <= src < t else -1
        any_active = False
        for i in range(rows):
            for j in range(cols):
                if act[i, j] >= 0 or wgt[i, j] >= 0:
                    any_active = True
                if i < rr and j < cc and act[i, j] >= 0 and act[i, j] == wgt[i, j]:
                    macs += 1
        if any_active:
            last_active = x
        elif x >= t:
            break  # every position entered (x >= t) and left the array
        x += 1
    return last_active + 1, macs


@njit(**JIT_OPTIONS)
def fold_cycles_stepping_os(mask, m, rows, cols, granularity):
    """Cycle-stepping reference for output-stationary skipping of ``mask [N, K]``: (per-fold
    cycles, MACs performed). Finds each output strip's live K groups itself and steps every
    (row fold of m, live strip) fold with ``_step_fold_os``, in the fast engine's order."""
    n, k = mask.shape
    n_strips = (n + cols - 1) // cols
    tiles = (m + rows - 1) // rows
    t_live = np.zeros(n_strips, dtype=np.int64)
    for c in range(n_strips):
        for g0 in range(0, k, granularity):
            g1 = min(k, g0 + granularity)
            keep = False
            for i in range(g0, g1):
                for j in range(c * cols, min(n, c * cols + cols)):
                    if mask[j, i]:
                        keep = True
            if keep:
                t_live[c] += g1 - g0
    out = np.zeros(tiles * n_strips, dtype=np.int64)
    total_macs = 0
    f = 0
    for r in range(tiles):
        rr = min(rows, m - r * rows)
        for c in range(n_strips):
            if t_live[c] == 0:
                continue
            cycles, macs = _step_fold_os(rr, min(cols, n - c * cols), rows, cols, t_live[c])
            out[f] = cycles
            total_macs += macs
            f += 1
    return out[:f].copy(), total_macs


@njit(**JIT_OPTIONS)
def fold_cycles_stepping_is(mask, m, rows, cols, granularity):
    """Cycle-stepping reference for input-stationary skipping of ``mask [N, K]``: (per-fold
    cycles, MACs performed). Finds each K strip's live N groups itself; each (column fold of
    m, live strip) fold preloads its ifmap tile and streams the live weight columns, one word
    per array row per cycle from that row's own filter port (no conflicts), stepped by
    ``_step_fold`` (stream element = weight column instead of token row)."""
    n, k = mask.shape
    k_strips = (k + rows - 1) // rows
    tiles = (m + cols - 1) // cols
    t_live = np.zeros(k_strips, dtype=np.int64)
    for r in range(k_strips):
        for g0 in range(0, n, granularity):
            g1 = min(n, g0 + granularity)
            keep = False
            for j in range(g0, g1):
                for i in range(r * rows, min(k, r * rows + rows)):
                    if mask[j, i]:
                        keep = True
            if keep:
                t_live[r] += g1 - g0
    ports = np.arange(rows)
    out = np.zeros(tiles * k_strips, dtype=np.int64)
    total_macs = 0
    f = 0
    for c in range(tiles):
        cc = min(cols, m - c * cols)
        for r in range(k_strips):
            if t_live[r] == 0:
                continue
            rr = min(rows, k - r * rows)
            cycles, macs = _step_fold(ports, rows, rr, cc, rows, cols, t_live[r])
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
    return _finish(
        stats, prefetch, inflight, writeback, busy, dead, double_buffered, dram_bytes_per_cycle
    )


@njit(**JIT_OPTIONS)
def _finish(stats, prefetch, inflight, writeback, busy, dead, double_buffered, dram_bpc):
    """TOTAL_CYCLES from the schedule: the dead strips' zero outputs go after the last fold,
    stalls from the dense kernel's ``pipeline_elapsed``."""
    n_folds = busy.shape[0]
    if n_folds == 0:
        elapsed = dead / dram_bpc
        ideal_cycles = 0.0
    else:
        writeback[n_folds - 1] += dead
        elapsed = pipeline_elapsed(prefetch, inflight, writeback, busy, double_buffered, dram_bpc)
        ideal_cycles = stats[COMPUTE_CYCLES] + 1
    stall = np.ceil(elapsed - ideal_cycles - 1e-9)
    stats[TOTAL_CYCLES] = stats[COMPUTE_CYCLES] + max(stall, 0.0)
    return stats


@njit(**JIT_OPTIONS)
def _compact_words(strip_ptr, width, extent):
    """Words of the compacted weight: sum over strips of live count x strip width."""
    total = 0.0
    for s in range(strip_ptr.shape[0] - 1):
        total += (strip_ptr[s + 1] - strip_ptr[s]) * min(width, extent - s * width)
    return total


@njit(**JIT_OPTIONS)
def _filter_fetch(f, fold_strip, strip_seen, resident, chunk_words, word, ratio, capacity):
    """DRAM bytes (before compression scaling) of fold f's compacted filter chunk: once per
    strip when the compacted weight is resident, else whenever the strip changes (or every
    fold when the chunk alone overflows the buffer), as ``dense_folds._fetch_bytes``."""
    c = fold_strip[f]
    first = not strip_seen[c]
    strip_seen[c] = True
    changed = f == 0 or fold_strip[f - 1] != c
    chunk = chunk_words * word
    if first or (not resident and (changed or chunk > capacity)):
        return chunk * ratio
    return 0.0


@njit(**JIT_OPTIONS)
def os_schedule(
    fold_tile,
    fold_strip,
    fold_t,
    strip_ptr,
    strip_idx,
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
    """Per-fold memory schedule of output-stationary compaction (``sparse_schedule``'s
    outputs). Fold (r, c): ifmap rr x T_live gathered inputs, filter T_live x cc compacted
    chunk, outputs rr x cc written back after the fold. The ifmap chunk of row fold r (its rr
    tokens x the live K indices of all strips) is fetched on first touch of each K index
    within the row fold when it fits the buffer, else every fold fetches its rr x T_live."""
    n_folds = fold_t.shape[0]
    stats = np.zeros(N_SPARSE_STATS, dtype=np.float64)
    n_strips = strip_ptr.shape[0] - 1
    compact = _compact_words(strip_ptr, cols, n)
    ratio = (k * n) / compact if compact > 0 else 0.0
    filter_resident = compact * word_bytes <= filter_capacity_bytes
    k_seen = np.zeros(k, dtype=np.bool_)
    live_k = 0
    for j in range(strip_idx.shape[0]):
        if not k_seen[strip_idx[j]]:
            k_seen[strip_idx[j]] = True
            live_k += 1
    strip_seen = np.zeros(n_strips, dtype=np.bool_)

    prefetch = np.zeros(n_folds + 1, dtype=np.float64)
    inflight = np.zeros(n_folds, dtype=np.float64)
    writeback = np.zeros(n_folds, dtype=np.float64)
    busy = np.zeros(n_folds, dtype=np.float64)
    for f in range(n_folds):
        r, c, t = fold_tile[f], fold_strip[f], fold_t[f]
        rr = min(rows, m - r * rows)
        cc = min(cols, n - c * cols)
        if f == 0 or fold_tile[f - 1] != r:
            k_seen[:] = False
        ifmap_words = rr * t
        filter_words = t * cc
        psum_words = rr * cc
        if rr * live_k * word_bytes <= ifmap_capacity_bytes:
            new = 0
            for j in range(strip_ptr[c], strip_ptr[c + 1]):
                if not k_seen[strip_idx[j]]:
                    k_seen[strip_idx[j]] = True
                    new += 1
            ifmap_load = float(rr * new * word_bytes)
        else:
            ifmap_load = float(ifmap_words * word_bytes)
        filter_load = filter_dram_scale * _filter_fetch(
            f, fold_strip, strip_seen, filter_resident, filter_words, word_bytes, ratio,
            filter_capacity_bytes,
        )  # fmt: skip

        stats[IFMAP_SRAM_READS] += ifmap_words
        stats[FILTER_SRAM_READS] += filter_words
        stats[OFMAP_SRAM_WRITES] += psum_words
        stats[IFMAP_DRAM_BYTES] += ifmap_load
        stats[FILTER_DRAM_BYTES] += filter_load
        stats[CONFLICT_SUM] += 1
        prefetch[f] = ifmap_load + filter_load
        writeback[f] = psum_words * word_bytes
        stats[OFMAP_DRAM_WRITE_BYTES] += writeback[f]

        sram_cycles = max(
            ifmap_words * word_bytes / ifmap_sram_bytes_per_cycle,
            filter_words * word_bytes / filter_sram_bytes_per_cycle,
            psum_words * acc_bytes / ofmap_sram_bytes_per_cycle,
        )
        busy[f] = max(float(fold_cycles[f]), sram_cycles)
        stats[SRAM_LIMITED_CYCLES] += busy[f] - fold_cycles[f]
        stats[COMPUTE_CYCLES] += fold_cycles[f]

    dead = 0.0
    for c in range(n_strips):
        if strip_ptr[c + 1] == strip_ptr[c]:
            dead += m * min(cols, n - c * cols) * word_bytes
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    stats[COMPACTED_WEIGHTS] = compact
    stats[FOLDS] = n_folds
    stats[COMPUTE_CYCLES] = max(stats[COMPUTE_CYCLES] - 1.0, 0.0)
    return stats, prefetch, inflight, writeback, busy, dead


@njit(**JIT_OPTIONS)
def is_schedule(
    fold_tile,
    fold_strip,
    fold_t,
    strip_ptr,
    strip_idx,
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
    """Per-fold memory schedule of input-stationary compaction (``sparse_schedule``'s
    outputs). Fold (c, r): stationary ifmap tile rr x cc (fetched per fold), filter rr x
    T_live compacted chunk, partial sums cc x T_live (only the strip's live output columns).

    The partial sums of token strip c live in a cc x n region accumulated over the run of
    K strips (spilled when ``cc * n`` accumulators overflow the ofmap buffer). A fold reads
    back the columns an earlier fold of the run touched, spills (when overflowing) the columns
    a later fold touches again, and writes back as outputs the columns it touches last.
    Columns no fold touches are zeros, written back after the last fold.
    """
    n_folds = fold_t.shape[0]
    stats = np.zeros(N_SPARSE_STATS, dtype=np.float64)
    n_strips = strip_ptr.shape[0] - 1
    compact = _compact_words(strip_ptr, rows, k)
    ratio = (k * n) / compact if compact > 0 else 0.0
    filter_resident = compact * word_bytes <= filter_capacity_bytes
    # position of each live strip in a run, and the first and last position touching a column
    position = np.full(n_strips, -1, dtype=np.int64)
    first_touch = np.full(n, -1, dtype=np.int64)
    last_touch = np.full(n, -1, dtype=np.int64)
    p = 0
    for s in range(n_strips):
        if strip_ptr[s + 1] > strip_ptr[s]:
            position[s] = p
            for j in range(strip_ptr[s], strip_ptr[s + 1]):
                if first_touch[strip_idx[j]] < 0:
                    first_touch[strip_idx[j]] = p
                last_touch[strip_idx[j]] = p
            p += 1
    untouched = 0
    for j in range(n):
        if first_touch[j] < 0:
            untouched += 1
    strip_seen = np.zeros(n_strips, dtype=np.bool_)

    prefetch = np.zeros(n_folds + 1, dtype=np.float64)
    inflight = np.zeros(n_folds, dtype=np.float64)
    writeback = np.zeros(n_folds, dtype=np.float64)
    busy = np.zeros(n_folds, dtype=np.float64)
    for f in range(n_folds):
        c, r, t = fold_tile[f], fold_strip[f], fold_t[f]
        rr = min(rows, k - r * rows)
        cc = min(cols, m - c * cols)
        ifmap_words = rr * cc
        filter_words = rr * t
        psum_words = cc * t
        ifmap_load = float(ifmap_words * word_bytes)
        filter_load = filter_dram_scale * _filter_fetch(
            f, fold_strip, strip_seen, filter_resident, filter_words, word_bytes, ratio,
            filter_capacity_bytes,
        )  # fmt: skip
        earlier = 0
        final = 0
        for j in range(strip_ptr[r], strip_ptr[r + 1]):
            if first_touch[strip_idx[j]] < position[r]:
                earlier += 1
            if last_touch[strip_idx[j]] == position[r]:
                final += 1
        psum_reads = float(cc * earlier)

        stats[IFMAP_SRAM_READS] += ifmap_words
        stats[FILTER_SRAM_READS] += filter_words
        stats[OFMAP_SRAM_WRITES] += psum_words
        stats[IFMAP_DRAM_BYTES] += ifmap_load
        stats[FILTER_DRAM_BYTES] += filter_load
        stats[CONFLICT_SUM] += 1
        prefetch[f] = ifmap_load + filter_load

        writeback[f] = cc * final * word_bytes
        if cc * n * acc_bytes > ofmap_capacity_bytes:  # the run's psums spill
            spill = cc * (t - final) * acc_bytes
            inflight[f] += spill + psum_reads * acc_bytes
            stats[OFMAP_DRAM_WRITE_BYTES] += spill
            stats[OFMAP_DRAM_READ_BYTES] += psum_reads * acc_bytes
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

    dead = float(m * untouched * word_bytes)
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    stats[COMPACTED_WEIGHTS] = compact
    stats[FOLDS] = n_folds
    stats[COMPUTE_CYCLES] = max(stats[COMPUTE_CYCLES] - 1.0, 0.0)
    return stats, prefetch, inflight, writeback, busy, dead


@njit(**JIT_OPTIONS)
def stream_gemm_folds(
    dataflow,
    fold_tile,
    fold_strip,
    fold_t,
    strip_ptr,
    strip_idx,
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
    """Statistics of one compacted OS (``dataflow == dense_folds.OS``) or IS GEMM, with
    stalls from the dense kernel's ``pipeline_elapsed``."""
    if dataflow == OS:
        stats, prefetch, inflight, writeback, busy, dead = os_schedule(
            fold_tile,
            fold_strip,
            fold_t,
            strip_ptr,
            strip_idx,
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
    else:
        stats, prefetch, inflight, writeback, busy, dead = is_schedule(
            fold_tile,
            fold_strip,
            fold_t,
            strip_ptr,
            strip_idx,
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
    return _finish(
        stats, prefetch, inflight, writeback, busy, dead, double_buffered, dram_bytes_per_cycle
    )
