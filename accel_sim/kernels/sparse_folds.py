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
``dense_folds.dense_gemm_folds`` exactly. N:M mode on OS and IS needs no kernel of its own:
it is the dense schedule at ``K * N / M`` (``datapaths.systolic.compacting.NmStreamed``).

Kernels (the cycle-stepping references that check the closed forms are in
``sparse_stepping``; the memory side of every schedule is ``fold_memory``'s):

- ``skipping_folds`` / ``nm_folds``: the fold list of a mask (``CompactedFolds``: strip, rows
  used, bank conflict and the K indices each fold holds).
- ``fold_cycles_fast``: each fold's compute cycles from its conflict factor (closed form).
- ``ws_reuse``: what the folds reuse, independent of m (once per mask).
- ``ws_schedule`` / ``sparse_gemm_folds``: memory schedule and statistics.
- OS/IS: ``live_strips`` (live indices per strip), ``stream_folds`` (``StreamedFolds``),
  ``streamed_fold_cycles`` (closed form), ``os_schedule`` / ``is_schedule`` /
  ``stream_gemm_folds`` (memory, statistics).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.dense_folds import OS
from accel_sim.kernels.fold_memory import (
    N_STATS,
    OFMAP_DRAM_WRITE_BYTES,
    FoldPlan,
    MemoryParams,
    accumulate_psums,
    fetch_bytes,
    finish,
    new_fold_log,
    no_totals,
    overlapped_cycles,
    record_fold,
    store_totals,
)

__all__ = [
    "BANK_CONFLICT_CYCLES",
    "COMPACTED_WEIGHTS",
    "CONFLICT_SUM",
    "N_SPARSE_STATS",
    "CompactedFolds",
    "StreamedFolds",
    "WsReuse",
    "fold_cycles_fast",
    "is_schedule",
    "live_strips",
    "nm_folds",
    "nm_violation",
    "os_schedule",
    "skipping_folds",
    "sparse_gemm_folds",
    "stream_folds",
    "stream_gemm_folds",
    "streamed_fold_cycles",
    "ws_reuse",
    "ws_schedule",
]

# Statistics beyond the dense kernel's (indices into the same vector).
BANK_CONFLICT_CYCLES = N_STATS  # cycles lost to bank conflicts: sum of T * (conflict - 1)
COMPACTED_WEIGHTS = N_STATS + 1  # words of the compacted weight: performed MACs = this x m
CONFLICT_SUM = N_STATS + 2  # sum over folds of the conflict factor (mean = this / folds)
N_SPARSE_STATS = N_STATS + 3


class CompactedFolds(NamedTuple):
    """Weight-stationary folds of a compacted (skipping) or N:M weight."""

    strip: np.ndarray  # column strip of each fold
    rows: np.ndarray  # array rows the fold uses
    conflict: np.ndarray  # bank-conflict factor: cycles per streamed token row
    k_ptr: np.ndarray  # CSR pointers into k_idx, one more than folds
    k_idx: np.ndarray  # the K indices each fold's rows hold (or read, in N:M mode)


class StreamedFolds(NamedTuple):
    """Output- or input-stationary folds: (outer tile, strip) pairs streaming the strip's
    live indices."""

    tile: np.ndarray
    strip: np.ndarray
    t: np.ndarray  # streamed length: the strip's live count
    strip_ptr: np.ndarray  # live indices of strip s: strip_idx[strip_ptr[s]:strip_ptr[s + 1]]
    strip_idx: np.ndarray


@njit(**JIT_OPTIONS)
def _ceil_div(a, b):
    return (a + b - 1) // b


@njit(**JIT_OPTIONS)
def _conflict(k_idx, start, stop, banks, counts, levels):
    """Most K indices of ``k_idx[start:stop]`` (ascending) that share a bank (``counts``
    and ``levels``: scratch). Indices spanning fewer than ``banks`` values sit in distinct
    banks. With a power-of-two bank count the bank is the index's low bits (an integer
    division per index cost more than the rest of the compaction)."""
    if k_idx[stop - 1] - k_idx[start] < banks:
        return 1
    if banks <= 64 and banks & (banks - 1) == 0:
        return _conflict_bits(k_idx, start, stop, banks - 1, levels)
    worst = 0
    for j in range(start, stop):
        counts[k_idx[j] % banks] = 0
    for j in range(start, stop):
        b = k_idx[j] % banks
        counts[b] += 1
        worst = max(worst, counts[b])
    return worst


@njit(inline="always", **JIT_OPTIONS)
def _conflict_bits(k_idx, start, stop, low, levels):
    """``_conflict`` for at most 64 banks, a power of two (bank = index & ``low``): bit b of
    ``levels[c]`` is set once bank b holds more than c indices. Level 0 stays in a register,
    and the deeper levels are touched only by an index whose bank is taken (the counting
    version's store and reload of a counter per index cost more than the rest)."""
    first = np.uint64(0)
    worst = 1
    for j in range(start, stop):
        bit = np.uint64(1) << np.uint64(k_idx[j] & low)
        if first & bit == 0:
            first |= bit
            continue
        c = 1
        while c < worst and levels[c] & bit != 0:
            c += 1
        if c == worst:
            levels[c] = np.uint64(0)
            worst += 1
        levels[c] |= bit
    return worst


@njit(**JIT_OPTIONS)
def _append_live_groups(live, granularity, out, used):
    """Append to ``out[used:]`` the indices of every ``granularity``-wide group of ``live``
    holding a live index; returns the new length. Branch-free: each group's indices are
    written and kept only if it is live (``out`` has room for all of ``live`` past ``used``),
    four times faster than testing first on masks whose groups are mostly live."""
    k = live.shape[0]
    if granularity == 1:
        for i in range(k):
            out[used] = i
            used += live[i]
        return used
    for g0 in range(0, k, granularity):
        g1 = min(k, g0 + granularity)
        group_live = False
        for i in range(g0, g1):
            group_live |= live[i]
            out[used + i - g0] = i
        if group_live:
            used += g1 - g0
    return used


@njit(**JIT_OPTIONS)
def skipping_folds(mask, rows, cols, granularity, banks):
    """Folds of block skipping for a bool ``mask [N, K]``.

    Returns a ``CompactedFolds`` record: per fold its column strip, the array rows it uses,
    its bank-conflict factor, and (CSR) the K indices its rows hold. Folds are strip-major,
    and within a strip in K order.
    """
    n, k = mask.shape
    n_strips = _ceil_div(n, cols)
    max_folds = n_strips * _ceil_div(k, rows)
    fold_strip = np.zeros(max_folds, dtype=np.int64)
    fold_rows = np.zeros(max_folds, dtype=np.int64)
    fold_conflict = np.zeros(max_folds, dtype=np.int64)
    fold_k_ptr = np.zeros(max_folds + 1, dtype=np.int64)
    fold_k_idx = np.empty(n_strips * k, dtype=np.int64)  # written before it is read
    live = np.zeros(k, dtype=np.bool_)
    counts = np.zeros(banks, dtype=np.int64)
    levels = np.zeros(rows + 1, dtype=np.uint64)  # _conflict_bits's bit planes
    f = 0
    used = 0
    for c in range(n_strips):
        c0 = c * cols
        c1 = min(n, c0 + cols)
        for i in range(k):
            live[i] = False
        for j in range(c0, c1):
            row = mask[j]
            for i in range(k):
                live[i] |= row[i]  # branch-free, so it vectorises
        start = used
        used = _append_live_groups(live, granularity, fold_k_idx, used)
        for s in range(start, used, rows):
            e = min(used, s + rows)
            fold_strip[f] = c
            fold_rows[f] = e - s
            fold_conflict[f] = _conflict(fold_k_idx, s, e, banks, counts, levels)
            fold_k_ptr[f + 1] = e
            f += 1
    # Views, not copies: copying BERT-base's fold lists (about 21 MB of indices, freshly
    # mapped pages) took longer than building them.
    return CompactedFolds(
        fold_strip[:f], fold_rows[:f], fold_conflict[:f], fold_k_ptr[: f + 1], fold_k_idx[:used]
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
    """Folds of N:M mode for an (m x k) @ (k x n) GEMM (a ``CompactedFolds`` record).

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
    return CompactedFolds(
        fold_strip, fold_rows, fold_conflict, fold_k_ptr, fold_k_idx[:used].copy()
    )


@njit(**JIT_OPTIONS)
def fold_cycles_fast(fold_conflict, rows, cols, m):
    """Compute cycles of each fold: ``2R + C - 2 + T * conflict`` (T = m token rows)."""
    out = np.empty(fold_conflict.shape[0], dtype=np.int64)
    for f in range(fold_conflict.shape[0]):
        out[f] = 2 * rows + cols - 2 + m * fold_conflict[f]
    return out


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
            row = mask[j]
            for i in range(l_dim):
                live[i] |= row[i]  # branch-free, so it vectorises
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
def stream_folds(strip_ptr, strip_idx, tiles):
    """Folds of OS/IS compaction: for each of ``tiles`` outer tiles (row folds of m under OS,
    column folds of m under IS), one fold per strip that has live indices: a
    ``StreamedFolds`` record, ``t`` being the streamed length (the strip's live count)."""
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
    return StreamedFolds(fold_tile, fold_strip, fold_t, strip_ptr, strip_idx)


@njit(**JIT_OPTIONS)
def streamed_fold_cycles(fold_t, overhead):
    """Compute cycles of OS/IS folds: ``overhead + T_live`` (OS: R + C - 2, IS: 2R + C - 2)."""
    out = np.empty(fold_t.shape[0], dtype=np.int64)
    for f in range(fold_t.shape[0]):
        out[f] = overhead + fold_t[f]
    return out


# ---- memory schedules -------------------------------------------------------------------


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
    fold when the chunk alone overflows the buffer), as ``fold_memory.fetch_bytes``."""
    c = fold_strip[f]
    first = not strip_seen[c]
    strip_seen[c] = True
    changed = f == 0 or fold_strip[f - 1] != c
    chunk = chunk_words * word
    if first or (not resident and (changed or chunk > capacity)):
        return chunk * ratio
    return 0.0


class WsReuse(NamedTuple):
    """What a compacted WS fold list reuses, independent of the token rows m (computed once
    per mask by ``ws_reuse``, read by every ``ws_schedule`` call the mapper makes)."""

    new_rows: np.ndarray  # per fold: its K indices no earlier fold held
    changed: np.ndarray  # per fold: its K-index set differs from the previous fold's
    strip_folds: np.ndarray  # folds per column strip
    live_k: int  # distinct K indices over all folds
    compact_words: float  # words of the compacted weight


@njit(**JIT_OPTIONS)
def ws_reuse(folds, cols, k, n):
    """The ``WsReuse`` record of ``folds`` (a ``CompactedFolds``) for a ``[n, k]`` weight."""
    fold_strip, fold_rows = folds.strip, folds.rows
    fold_k_ptr, fold_k_idx = folds.k_ptr, folds.k_idx
    n_folds = fold_strip.shape[0]
    compact_words = 0.0
    strip_folds = np.zeros(_ceil_div(n, cols), dtype=np.int64)
    new_rows = np.zeros(n_folds, dtype=np.int64)
    changed = np.zeros(n_folds, dtype=np.bool_)
    seen = np.zeros(k, dtype=np.bool_)
    live_k = 0
    for f in range(n_folds):
        strip_folds[fold_strip[f]] += 1
        compact_words += fold_rows[f] * min(cols, n - fold_strip[f] * cols)
        a, b = fold_k_ptr[f], fold_k_ptr[f + 1]
        for j in range(a, b):
            if not seen[fold_k_idx[j]]:
                seen[fold_k_idx[j]] = True
                new_rows[f] += 1
        live_k += new_rows[f]
        if f == 0:
            changed[f] = True
            continue
        pa, pb = fold_k_ptr[f - 1], fold_k_ptr[f]
        if pb - pa != b - a:
            changed[f] = True
        else:
            for j in range(b - a):
                if fold_k_idx[pa + j] != fold_k_idx[a + j]:
                    changed[f] = True
                    break
    return WsReuse(new_rows, changed, strip_folds, live_k, compact_words)


@njit(**JIT_OPTIONS)
def ws_schedule(folds, reuse, fold_cycles, cols, m, k, n, mem, plan):
    """Per-fold memory schedule of a compacted WS GEMM (``CompactedFolds`` and its
    ``WsReuse``; ``fold_cycles`` from either engine; ``plan``: a ``fold_memory.FoldPlan``,
    whose loop order does not apply: compaction runs strip by strip). Returns (stats
    ``N_SPARSE_STATS`` long, ``FoldLog``, folds, dead write-back bytes: the zero outputs of
    strips without folds, written after the last fold)."""
    fold_strip, fold_rows = folds.strip, folds.rows
    fold_k_ptr = folds.k_ptr
    n_folds = fold_strip.shape[0]
    stats = np.zeros(N_SPARSE_STATS, dtype=np.float64)
    n_strips = _ceil_div(n, cols)
    word = mem.word_bytes
    compact_words = reuse.compact_words
    ratio = (k * n) / compact_words if compact_words > 0 else 0.0
    ifmap_fits = m * reuse.live_k * word <= mem.ifmap_capacity_bytes
    strip_folds = reuse.strip_folds
    new_rows, changed, conflict = reuse.new_rows, reuse.changed, folds.conflict
    log = new_fold_log(n_folds)
    prefetch, inflight, writeback, busy = log
    totals = no_totals()
    compacted = conflict_sum = conflict_cycles = 0.0  # in registers, as ``totals``

    index_in_strip = 0
    for f in range(n_folds):
        c = fold_strip[f]
        if f > 0 and fold_strip[f - 1] != c:
            index_in_strip = 0
        rr = fold_rows[f]
        cc = min(cols, n - c * cols)
        a, b = fold_k_ptr[f], fold_k_ptr[f + 1]
        ifmap_words = m * (b - a)
        filter_words = rr * cc
        psum_words = m * cc

        filter_load = filter_words * word * ratio * mem.filter_dram_scale
        if ifmap_fits:
            ifmap_load = float(m * new_rows[f] * word)
        else:
            ifmap_load = fetch_bytes(
                f == 0, False, changed[f], ifmap_words * word, mem.ifmap_capacity_bytes
            )

        if plan.ifmap_on_chip:
            ifmap_load = 0.0
        if plan.filter_on_chip:
            filter_load = 0.0
        compacted += filter_words
        conflict_sum += conflict[f]
        conflict_cycles += m * (conflict[f] - 1)
        psum_reads, spill_written, spill_read = accumulate_psums(
            inflight, writeback, f, psum_words, psum_words, index_in_strip == 0,
            index_in_strip == strip_folds[c] - 1, mem, plan.outputs_on_chip,
        )  # fmt: skip
        totals = record_fold(
            totals, prefetch, writeback, busy, f, ifmap_words, filter_words, psum_words,
            psum_reads, spill_written, spill_read, ifmap_load, filter_load, fold_cycles[f], mem,
        )  # fmt: skip
        index_in_strip += 1
    store_totals(stats, totals)
    stats[COMPACTED_WEIGHTS] = compacted
    stats[CONFLICT_SUM] = conflict_sum
    stats[BANK_CONFLICT_CYCLES] = conflict_cycles

    dead = 0.0
    for c in range(n_strips):
        if strip_folds[c] == 0 and not plan.outputs_on_chip:
            dead += m * min(cols, n - c * cols) * word
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    return stats, log, n_folds, dead


@njit(**JIT_OPTIONS)
def ws_fold_cycles(conflict, rows, cols, m, overlapped):
    """``fold_cycles_fast`` and, with overlapped preload, ``fold_memory.overlapped_cycles``,
    in one call from Python."""
    cycles = fold_cycles_fast(conflict, rows, cols, m)
    if overlapped and cycles.shape[0]:
        return overlapped_cycles(cycles, 2 * rows + cols - 2, rows)
    return cycles


@njit(**JIT_OPTIONS)
def ws_compute_cycles(conflict, rows, cols, m, overlapped):
    """The sum of ``ws_fold_cycles`` without the per-fold array: the first fold's ``2R + C -
    2 + T x conflict``, each later one the same serially or ``max(T x conflict, R)`` with
    overlapped preload (the mapper's compute floors ask for it per candidate tile)."""
    n_folds = conflict.shape[0]
    if n_folds == 0:
        return 0
    overhead = 2 * rows + cols - 2
    total = overhead + m * conflict[0]
    for f in range(1, n_folds):
        streamed = m * conflict[f]
        total += max(streamed, rows) if overlapped else overhead + streamed
    return total


@njit(**JIT_OPTIONS)
def ws_schedule_plain(folds, reuse, fold_cycles, cols, m, k, n, mem, plan):
    """``ws_schedule`` taking its four records as plain tuples, rebuilt here: Numba types a
    plain tuple argument in C but a named one through Python, about 3 µs a call, and the
    mapper makes hundreds of these calls a design point."""
    return ws_schedule(CompactedFolds(*folds), WsReuse(*reuse), fold_cycles, cols, m, k, n,
                       MemoryParams(*mem), FoldPlan(*plan))  # fmt: skip


@njit(**JIT_OPTIONS)
def sparse_gemm_folds(folds, fold_cycles, cols, m, k, n, mem, plan):
    """Statistics of one compacted WS GEMM (index constants of both kernels)."""
    reuse = ws_reuse(folds, cols, k, n)
    stats, log, n_folds, dead = ws_schedule(folds, reuse, fold_cycles, cols, m, k, n, mem, plan)
    return finish(stats, log, n_folds, dead, mem)


@njit(**JIT_OPTIONS)
def os_schedule(folds, fold_cycles, rows, cols, m, k, n, mem, plan):
    """Per-fold memory schedule of output-stationary compaction (``ws_schedule``'s outputs).
    Fold (r, c): ifmap rr x T_live gathered inputs, filter T_live x cc compacted chunk,
    outputs rr x cc written back after the fold. The ifmap chunk of row fold r (its rr tokens
    x the live K indices of all strips) is fetched on first touch of each K index within the
    row fold when it fits the buffer, else every fold fetches its rr x T_live."""
    strip_ptr, strip_idx = folds.strip_ptr, folds.strip_idx
    n_folds = folds.t.shape[0]
    stats = np.zeros(N_SPARSE_STATS, dtype=np.float64)
    n_strips = strip_ptr.shape[0] - 1
    word = mem.word_bytes
    compact = _compact_words(strip_ptr, cols, n)
    ratio = (k * n) / compact if compact > 0 else 0.0
    filter_resident = compact * word <= mem.filter_capacity_bytes
    k_seen = np.zeros(k, dtype=np.bool_)
    live_k = 0
    for j in range(strip_idx.shape[0]):
        if not k_seen[strip_idx[j]]:
            k_seen[strip_idx[j]] = True
            live_k += 1
    strip_seen = np.zeros(n_strips, dtype=np.bool_)
    log = new_fold_log(n_folds)
    prefetch, _, writeback, busy = log
    totals = no_totals()
    fold_tile, fold_strip, fold_t = folds.tile, folds.strip, folds.t
    for f in range(n_folds):
        r, c, t = fold_tile[f], fold_strip[f], fold_t[f]
        rr = min(rows, m - r * rows)
        cc = min(cols, n - c * cols)
        if f == 0 or fold_tile[f - 1] != r:
            k_seen[:] = False
        ifmap_words = rr * t
        filter_words = t * cc
        psum_words = rr * cc
        if rr * live_k * word <= mem.ifmap_capacity_bytes:
            new = 0
            for j in range(strip_ptr[c], strip_ptr[c + 1]):
                if not k_seen[strip_idx[j]]:
                    k_seen[strip_idx[j]] = True
                    new += 1
            ifmap_load = float(rr * new * word)
        else:
            ifmap_load = float(ifmap_words * word)
        filter_load = mem.filter_dram_scale * _filter_fetch(
            f, fold_strip, strip_seen, filter_resident, filter_words, word, ratio,
            mem.filter_capacity_bytes,
        )  # fmt: skip
        if plan.ifmap_on_chip:
            ifmap_load = 0.0
        if plan.filter_on_chip:
            filter_load = 0.0
        if not plan.outputs_on_chip:
            writeback[f] = psum_words * word
        totals = record_fold(
            totals, prefetch, writeback, busy, f, ifmap_words, filter_words, psum_words, 0.0,
            0.0, 0.0, ifmap_load, filter_load, fold_cycles[f], mem,
        )  # fmt: skip
    store_totals(stats, totals)
    stats[CONFLICT_SUM] = n_folds  # conflict 1 a fold

    dead = 0.0
    for c in range(n_strips):
        if strip_ptr[c + 1] == strip_ptr[c] and not plan.outputs_on_chip:
            dead += m * min(cols, n - c * cols) * word
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    stats[COMPACTED_WEIGHTS] = compact
    return stats, log, n_folds, dead


@njit(**JIT_OPTIONS)
def is_schedule(folds, fold_cycles, rows, cols, m, k, n, mem, plan):
    """Per-fold memory schedule of input-stationary compaction (``ws_schedule``'s outputs).
    Fold (c, r): stationary ifmap tile rr x cc (fetched per fold), filter rr x T_live
    compacted chunk, partial sums cc x T_live (only the strip's live output columns).

    The partial sums of token strip c live in a cc x n region accumulated over the run of
    K strips (spilled when ``cc * n`` accumulators overflow the ofmap buffer). A fold reads
    back the columns an earlier fold of the run touched, spills (when overflowing) the columns
    a later fold touches again, and writes back as outputs the columns it touches last.
    Columns no fold touches are zeros, written back after the last fold.
    """
    strip_ptr, strip_idx = folds.strip_ptr, folds.strip_idx
    n_folds = folds.t.shape[0]
    stats = np.zeros(N_SPARSE_STATS, dtype=np.float64)
    n_strips = strip_ptr.shape[0] - 1
    word, acc = mem.word_bytes, mem.acc_bytes
    compact = _compact_words(strip_ptr, rows, k)
    ratio = (k * n) / compact if compact > 0 else 0.0
    filter_resident = compact * word <= mem.filter_capacity_bytes
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
    log = new_fold_log(n_folds)
    prefetch, inflight, writeback, busy = log
    totals = no_totals()
    fold_tile, fold_strip, fold_t = folds.tile, folds.strip, folds.t
    for f in range(n_folds):
        c, r, t = fold_tile[f], fold_strip[f], fold_t[f]
        rr = min(rows, k - r * rows)
        cc = min(cols, m - c * cols)
        ifmap_words = rr * cc
        filter_words = rr * t
        psum_words = cc * t
        ifmap_load = float(ifmap_words * word)
        filter_load = mem.filter_dram_scale * _filter_fetch(
            f, fold_strip, strip_seen, filter_resident, filter_words, word, ratio,
            mem.filter_capacity_bytes,
        )  # fmt: skip
        earlier = 0
        final = 0
        for j in range(strip_ptr[r], strip_ptr[r + 1]):
            if first_touch[strip_idx[j]] < position[r]:
                earlier += 1
            if last_touch[strip_idx[j]] == position[r]:
                final += 1
        psum_reads = float(cc * earlier)
        if plan.ifmap_on_chip:
            ifmap_load = 0.0
        if plan.filter_on_chip:
            filter_load = 0.0
        if not plan.outputs_on_chip:
            writeback[f] = cc * final * word
        spill_written = spill_read = 0.0
        if cc * n * acc > mem.ofmap_capacity_bytes:  # the run's psums spill
            spill_written = float(cc * (t - final) * acc)
            spill_read = psum_reads * acc
            inflight[f] += spill_written + spill_read
        totals = record_fold(
            totals, prefetch, writeback, busy, f, ifmap_words, filter_words, psum_words,
            psum_reads, spill_written, spill_read, ifmap_load, filter_load, fold_cycles[f], mem,
        )  # fmt: skip
    store_totals(stats, totals)
    stats[CONFLICT_SUM] = n_folds  # conflict 1 a fold

    dead = 0.0 if plan.outputs_on_chip else float(m * untouched * word)
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    stats[COMPACTED_WEIGHTS] = compact
    return stats, log, n_folds, dead


@njit(**JIT_OPTIONS)
def stream_gemm_folds(dataflow, folds, fold_cycles, rows, cols, m, k, n, mem, plan):
    """Statistics of one compacted OS (``dataflow == dense_folds.OS``) or IS GEMM."""
    if dataflow == OS:
        stats, log, n_folds, dead = os_schedule(
            folds, fold_cycles, rows, cols, m, k, n, mem, plan
        )
    else:
        stats, log, n_folds, dead = is_schedule(
            folds, fold_cycles, rows, cols, m, k, n, mem, plan
        )
    return finish(stats, log, n_folds, dead, mem)
