"""The memory side of a fold schedule, shared by every systolic kernel (dense and compacted).

A GEMM runs as a sequence of folds. Each fold kernel decides, per fold, how many words the
array reads and writes in each buffer and how many bytes come from DRAM; this module does the
rest, once for all of them:

- ``record_fold``: adds a fold's SRAM words and DRAM loads to the statistics vector, notes the
  bytes that must arrive before the fold starts, and takes the fold's busy time as the longer
  of its compute cycles and its slowest SRAM port (``SRAM_LIMITED_CYCLES`` counts the
  difference);
- ``accumulate_psums``: partial sums of a column strip accumulated on chip over its folds:
  spilled to DRAM and read back when the strip's partial sums overflow the ofmap buffer,
  written back as outputs after the strip's last fold;
- ``fetch_bytes``: when an operand chunk is (re)fetched from DRAM;
- ``pipeline_elapsed`` / ``finish``: the schedule's elapsed cycles with DRAM transfers
  overlapped (double buffering) or serialised, and the stall cycles that makes;
  ``joined_terms`` / ``serial_terms`` the same terms of one tile of a mapping, summed in
  numpy's pairwise order (``pairwise_sum``) as the composition did before it moved here.

``MemoryParams`` carries the hardware's memory figures into the kernels as one typed record
(``accel_sim.traffic.memory_params`` builds it from a spec); ``FoldPlan`` carries the parts of
a mapping the kernels see (loop order, overlapped preload, operands already on chip).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

# Indices of the statistics vector every fold kernel returns.
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


class MemoryParams(NamedTuple):
    """The memory figures a fold kernel needs (capacities already halved when double
    buffered; bandwidths per array cycle)."""

    word_bytes: int
    acc_bytes: int
    ifmap_capacity_bytes: float
    filter_capacity_bytes: float
    ofmap_capacity_bytes: float
    double_buffered: bool
    dram_bytes_per_cycle: float
    ifmap_sram_bytes_per_cycle: float
    filter_sram_bytes_per_cycle: float
    ofmap_sram_bytes_per_cycle: float
    # compressed / dense bytes of the weight: every filter DRAM load is scaled by it
    filter_dram_scale: float
    # input words each ifmap word of the schedule stands for: M / N in N:M mode on output- and
    # input-stationary arrays, where every weight slot selects among its group's M inputs
    ifmap_scale: float = 1.0


class FoldPlan(NamedTuple):
    """What a mapping tells a fold kernel (``accel_sim.mapping`` chooses it).

    ``rows_outer``: the loop over spatial-row folds is the outer one (OS's own order; WS and IS
    loop over column folds outside). ``overlapped``: the stationary operand is double
    buffered, so a fold's preload (and its predecessor's drain) hide behind the previous
    fold's streaming: only the first fold pays fill and drain, every later one
    ``max(T, R)`` cycles. The ``*_on_chip`` flags mark operands that are already in (or stay
    in) the buffers, so they move no DRAM bytes: inputs produced by the previous op, resident
    weights, outputs kept for the next op."""

    rows_outer: bool
    overlapped: bool
    ifmap_on_chip: bool
    filter_on_chip: bool
    outputs_on_chip: bool


class FoldLog(NamedTuple):
    """Per fold: DRAM bytes needed before it starts (one extra trailing entry), partial-sum
    spill bytes moved while it runs, bytes written back after it ends, and busy cycles."""

    prefetch: np.ndarray
    inflight: np.ndarray
    writeback: np.ndarray
    busy: np.ndarray


@njit(**JIT_OPTIONS)
def new_fold_log(n_folds):
    return FoldLog(
        np.zeros(n_folds + 1, dtype=np.float64),
        np.zeros(n_folds, dtype=np.float64),
        np.zeros(n_folds, dtype=np.float64),
        np.zeros(n_folds, dtype=np.float64),
    )


@njit(inline="always", **JIT_OPTIONS)
def fetch_bytes(first_touch, operand_resident, chunk_changed, chunk_bytes, capacity_bytes):
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


@njit(inline="always", **JIT_OPTIONS)
def operand_load(by_row, r, c, rows_outer, row_folds, col_folds, resident, chunk_bytes, cap):
    """DRAM bytes of the operand chunk fold (r, c) reads, for an operand whose chunk is keyed
    by the fold's row index (``by_row``) or its column index, under either loop order: a
    chunk changes with every fold when its index runs in the inner loop, and only when the
    outer loop advances otherwise (``fetch_bytes`` decides)."""
    if by_row:
        first = c == 0
        changed = (c == 0) if rows_outer else (row_folds > 1)
    else:
        first = r == 0
        changed = (col_folds > 1) if rows_outer else (r == 0)
    return fetch_bytes(first, resident, changed, chunk_bytes, cap)


@njit(**JIT_OPTIONS)
def overlapped_cycles(fold_cycles, serial_overhead, rows):
    """Per-fold compute cycles with overlapped preload: the first fold keeps its serial
    cycles (fill and drain), every later one streams in ``max(T, R)`` (``T = serial -
    overhead``: the next stationary tile shifts in over R cycles behind the stream)."""
    out = fold_cycles.copy()
    for f in range(1, out.shape[0]):
        out[f] = max(fold_cycles[f] - serial_overhead, rows)
    return out


@njit(inline="always", **JIT_OPTIONS)
def accumulate_psums(inflight, writeback, f, psum_words, live_words, first, last, mem,
                     outputs_on_chip):  # fmt: skip
    """Partial sums ``psum_words`` of a strip at fold ``f`` (its ``first``/``last`` fold):
    read back unless first, spilled and read back through DRAM when the ``live_words``
    partial sums the loop order keeps live overflow the ofmap buffer, written back as outputs
    after the last fold (unless they stay on chip). Returns (words read back, spill bytes
    written, spill bytes read), the last two for ``record_fold``. ``inflight`` and
    ``writeback`` are the ``FoldLog``'s arrays, passed on their own so that a kernel's fold
    loop reads no tuple field: Numba counts a reference for every such read."""
    psum_reads = 0.0 if first else float(psum_words)
    fits = live_words * mem.acc_bytes <= mem.ofmap_capacity_bytes
    spill_written = 0.0
    spill_read = 0.0
    if last:
        if not outputs_on_chip:
            writeback[f] = psum_words * mem.word_bytes
    elif not fits:
        spill_written = float(psum_words * mem.acc_bytes)
        inflight[f] += spill_written
    if not first and not fits:
        spill_read = float(psum_words * mem.acc_bytes)
        inflight[f] += spill_read
    return psum_reads, spill_written, spill_read


@njit(inline="always", **JIT_OPTIONS)
def no_totals():
    """Running totals of the ``N_STATS`` statistics a fold loop keeps (``record_fold``).

    A tuple, not the statistics array: a tuple lives in registers, while every ``+=`` into an
    array had to go through memory, since the compiler cannot rule out that the array
    overlaps the fold log it writes in the same loop (that made a fold three times slower)."""
    return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(inline="always", **JIT_OPTIONS)
def store_totals(stats, totals):
    """Write a fold loop's totals into the first ``N_STATS`` entries of ``stats``."""
    (
        stats[0], stats[1], stats[2], stats[3], stats[4], stats[5], stats[6], stats[7],
        stats[8], stats[9], stats[10], stats[11],
    ) = totals  # fmt: skip


@njit(inline="always", **JIT_OPTIONS)
def record_fold(
    totals, prefetch, writeback, busy, f, ifmap_words, filter_words, psum_words, psum_reads,
    spill_written, spill_read, ifmap_load, filter_load, fold_cycles, mem,
):  # fmt: skip
    """``totals`` (``no_totals``) with fold ``f``'s SRAM words, DRAM loads and partial-sum
    spills (bytes written, read) added; fixes the fold's prefetch and busy cycles: the
    longer of ``fold_cycles`` and its slowest SRAM port (``writeback[f]`` must be set; the
    arrays are the ``FoldLog``'s). Each total adds in the order the statistics array did."""
    sram_cycles = max(
        ifmap_words * mem.word_bytes / mem.ifmap_sram_bytes_per_cycle,
        filter_words * mem.word_bytes / mem.filter_sram_bytes_per_cycle,
        (psum_words + psum_reads) * mem.acc_bytes / mem.ofmap_sram_bytes_per_cycle,
    )
    prefetch[f] = ifmap_load + filter_load
    fold_busy = max(float(fold_cycles), sram_cycles)
    busy[f] = fold_busy
    return (
        totals[COMPUTE_CYCLES] + fold_cycles,
        totals[TOTAL_CYCLES],
        totals[FOLDS],
        totals[IFMAP_SRAM_READS] + ifmap_words,
        totals[FILTER_SRAM_READS] + filter_words,
        totals[OFMAP_SRAM_WRITES] + psum_words,
        totals[OFMAP_SRAM_READS] + psum_reads,
        totals[IFMAP_DRAM_BYTES] + ifmap_load,
        totals[FILTER_DRAM_BYTES] + filter_load,
        totals[OFMAP_DRAM_READ_BYTES] + spill_read,
        totals[OFMAP_DRAM_WRITE_BYTES] + spill_written + writeback[f],
        totals[SRAM_LIMITED_CYCLES] + (fold_busy - fold_cycles),
    )


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
def _block_sum(values, start, count):
    """numpy's pairwise sum of a run of at most 128: under 8 summed in turn, else eight
    interleaved partial sums joined as a tree, then the remainder in turn."""
    if count < 8:
        total = -0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = start + 8
    stop = start + count - count % 8
    while i < stop:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + count:
        total += values[i]
        i += 1
    return total


@njit(**JIT_OPTIONS)
def pairwise_sum(values, start, count):
    """Sum of ``values[start:start + count]`` in numpy's pairwise order (its float64
    ``add.reduce``: runs up to 128 by ``_block_sum``, longer ones halved at a multiple of 8,
    left half first), so a kernel that replaces a numpy ``.sum()`` gives the same bits (a test
    checks it against numpy). The halving runs on an explicit stack: Numba's on-disk cache
    does not load recursive functions safely."""
    if count <= 128:
        return _block_sum(values, start, count)
    depth = 64  # halving 2**63 elements reaches 128 in under 64 levels
    starts = np.empty(depth, dtype=np.int64)
    counts = np.empty(depth, dtype=np.int64)
    left = np.empty(depth, dtype=np.float64)
    done_left = np.zeros(depth, dtype=np.bool_)
    top = 0
    starts[0], counts[0] = start, count
    while True:
        s, n = starts[top], counts[top]
        if n > 128:  # descend into the left half
            half = n // 2
            half -= half % 8
            top += 1
            starts[top], counts[top], done_left[top] = s, half, False
            continue
        value = _block_sum(values, s, n)
        while True:  # hand the value up: a left half waits for its right, a right half joins
            if top == 0:
                return value
            parent = top - 1
            if not done_left[top]:
                left[parent] = value
                starts[top] = starts[parent] + counts[top]
                counts[top] = counts[parent] - counts[top]
                done_left[top] = True
                break
            value = left[parent] + value
            top = parent


@njit(**JIT_OPTIONS)
def joined_terms(log, before, after, dram_bytes_per_cycle):
    """``pipeline_elapsed``'s per-fold terms of a non-empty ``log`` summed (double-buffered),
    with the previous tile's last write-back ``before`` moving during its first fold and the
    next tile's first prefetch ``after`` (instead of the log's trailing one) during its last.
    ``stitched_terms`` joins a mapping's tiles with these terms (``_joined``); this entry
    point takes any boundary values, which the twin test exercises."""
    return _joined(log.prefetch, log.inflight, log.writeback, log.busy, before, after,
                   dram_bytes_per_cycle)  # fmt: skip


@njit(inline="always", **JIT_OPTIONS)
def _term(prefetch, inflight, writeback, busy, f, before, after, dram_bytes_per_cycle):
    """Fold ``f``'s pipeline term: its busy cycles or the DRAM time of what moves during it."""
    moved = (after if f == busy.shape[0] - 1 else prefetch[f + 1]) + inflight[f]
    moved += writeback[f - 1] if f > 0 else before
    return max(busy[f], moved / dram_bytes_per_cycle)


@njit(inline="always", **JIT_OPTIONS)
def _terms(prefetch, inflight, writeback, busy, before, after, dram_bytes_per_cycle):
    """Every fold's ``_term``."""
    folds = busy.shape[0]
    terms = np.empty(folds, dtype=np.float64)
    for f in range(folds):
        terms[f] = _term(prefetch, inflight, writeback, busy, f, before, after,
                         dram_bytes_per_cycle)  # fmt: skip
    return terms


@njit(inline="always", **JIT_OPTIONS)
def _joined(prefetch, inflight, writeback, busy, before, after, dram_bytes_per_cycle):
    terms = _terms(prefetch, inflight, writeback, busy, before, after, dram_bytes_per_cycle)
    return 0.0 + pairwise_sum(terms, 0, busy.shape[0])


@njit(inline="always", **JIT_OPTIONS)
def _joined_repeated(prefetch, inflight, writeback, busy, before, tail, head, after, bw):
    """``_joined`` of a tile run several times in a row, (first, middle, last): the first run
    joins ``before`` and ``head`` (its own next prefetch), the middle ones ``tail`` (its own
    last write-back) and ``head``, the last ``tail`` and ``after``. Only the end folds'
    terms differ, so the terms are worked out once and their ends replaced; each sum still
    runs over the whole array in pairwise order, so the bits are ``_joined``'s."""
    folds = busy.shape[0]
    terms = _terms(prefetch, inflight, writeback, busy, tail, head, bw)
    middle = 0.0 + pairwise_sum(terms, 0, folds)
    kept = terms[0]
    terms[0] = _term(prefetch, inflight, writeback, busy, 0, before, head, bw)
    first = 0.0 + pairwise_sum(terms, 0, folds)
    terms[0] = kept
    terms[folds - 1] = _term(prefetch, inflight, writeback, busy, folds - 1, tail, after, bw)
    last = 0.0 + pairwise_sum(terms, 0, folds)
    return first, middle, last


@njit(**JIT_OPTIONS)
def stitched_terms(prefetch, inflight, writeback, busy, dead, times, bw):
    """Cycles from the first DRAM load to the last write-back of up to three tile schedules
    run one after another as one double-buffered pipeline (``mapping.compose``), run ``r``
    repeated ``times[r]`` times (0: absent). Each argument but ``bw`` is a triple, one entry
    per schedule: its ``FoldLog`` arrays and the write-back ``dead`` of outputs no fold
    produced. One call per mapping instead of one per tile boundary: Numba's dispatch of a
    record argument cost more than the terms of a short schedule. The arithmetic is
    ``compose``'s, step for step."""
    order = np.empty(3, dtype=np.int64)
    used = 0
    for r in range(3):
        if times[r] > 0:
            order[used] = r
            used += 1
    heads = np.zeros(3, dtype=np.float64)
    tails = np.zeros(3, dtype=np.float64)
    for r in range(3):
        folds = busy[r].shape[0]
        if folds:
            heads[r] = prefetch[r][0]
            tails[r] = writeback[r][folds - 1] + dead[r]
    elapsed = heads[order[0]] / bw
    for index in range(used):
        r = order[index]
        before = tails[order[index - 1]] if index else 0.0
        after = heads[order[index + 1]] if index + 1 < used else 0.0
        count = times[r]
        p, i, w, b = prefetch[r], inflight[r], writeback[r], busy[r]
        if b.shape[0] == 0:  # a tile with no folds only writes its zero outputs
            first = middle = last = dead[r] / bw
        elif count == 1:
            first = middle = last = _joined(p, i, w, b, before, after, bw)
        else:
            first, middle, last = _joined_repeated(p, i, w, b, before, tails[r], heads[r], after,
                                                   bw)  # fmt: skip
        elapsed += first
        if count == 1:
            continue
        elapsed += (count - 2) * middle
        elapsed += last
    return elapsed + tails[order[used - 1]] / bw


@njit(**JIT_OPTIONS)
def serial_terms(log, dram_bytes_per_cycle):
    """Without double buffering, each fold's load, then its compute (or in-flight spills),
    then its stores, summed over the folds of ``log``."""
    folds = log.busy.shape[0]
    terms = np.empty(folds, dtype=np.float64)
    for f in range(folds):
        load = log.prefetch[f] / dram_bytes_per_cycle
        busy = max(log.busy[f], log.inflight[f] / dram_bytes_per_cycle)
        terms[f] = load + busy + log.writeback[f] / dram_bytes_per_cycle
    return 0.0 + pairwise_sum(terms, 0, folds)


@njit(**JIT_OPTIONS)
def finish(stats, log, n_folds, dead_writeback, mem):
    """Close a schedule: FOLDS, COMPUTE_CYCLES (the folds' sum minus one, as SCALE-Sim
    counts) and TOTAL_CYCLES from ``pipeline_elapsed``; ``dead_writeback`` bytes (outputs no
    fold produced, zeros) are written after the last fold."""
    stats[FOLDS] = n_folds
    stats[COMPUTE_CYCLES] = max(stats[COMPUTE_CYCLES] - 1.0, 0.0)
    if n_folds == 0:
        elapsed = dead_writeback / mem.dram_bytes_per_cycle
        ideal_cycles = 0.0
    else:
        log.writeback[n_folds - 1] += dead_writeback
        elapsed = pipeline_elapsed(
            log.prefetch, log.inflight, log.writeback, log.busy, mem.double_buffered,
            mem.dram_bytes_per_cycle,
        )  # fmt: skip
        ideal_cycles = stats[COMPUTE_CYCLES] + 1
    stall = np.ceil(elapsed - ideal_cycles - 1e-9)
    stats[TOTAL_CYCLES] = stats[COMPUTE_CYCLES] + max(stall, 0.0)
    return stats
