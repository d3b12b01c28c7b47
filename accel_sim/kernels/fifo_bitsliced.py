"""The PE array's timing (``sparse_pe``'s rules) cycle by cycle for 64 PEs a word, when each
PE owns one row at most (``n_pes >= out``), so every entry a FIFO takes costs one cycle.

With one-cycle entries a PE's FIFO is only a count: the PE pops and finishes its head in the
cycle it starts it, so at a cycle's start it holds no entry in progress, it works that cycle
iff its count is positive, and an entry it takes finishes ``count`` (ahead of it, the one in
progress included) cycles after the cycle, one later when the PE was idle. The counts of 64
PEs are kept bit-sliced (``occ[w, t]``: bit ``p % 64`` is bit ``t`` of PE ``p``'s count, PE
``p`` being row ``p``), so one word operation moves 64 FIFOs:

- *broadcast* an entry of column j: it fits when no PE whose row keeps column j is full
  (``words & full == 0``, word by word of the column's row bits); taking it adds the column's
  row bits to the counts (a ripple-carry add per word);
- *compute*: at a cycle's end every PE that was working subtracts one (a ripple borrow).

A pass costs (entries + cycles) x row words instead of a visit per kept weight and PE
(``_periodic``'s recurrence, and the CSC it reads): on BERT-base's 768 x 768 and 768 x 3,072
layers at 1,024 PEs, about a sixth of the time. The passes repeat the same stream: the state
where a pass starts (the counts, who works this cycle, the entries already sent this cycle)
is compared with where the pass before started, and once equal every later pass repeats it,
shifted by the cycles between, and is added in one step, as ``_periodic`` does. This state is
a function of ``_periodic``'s (times relative to the last broadcast), so it repeats no later.
The numbers (cycles, broadcast stall, busy cycles) are ``fifo_event_periodic``'s; the
periodic summary has the same meaning for ``repeated_finish``, its pass count at most the
recurrence's.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.bitops import lowest_bit
from accel_sim.kernels.sparse_pe import _finish_times

__all__ = ["CHECK_EVERY", "fifo_bitsliced_one_row"]

CHECK_EVERY = 16  # entries between the states a pass keeps to compare the next pass's with


@njit(**JIT_OPTIONS)
def fifo_bitsliced_one_row(columns, n_pes, entry_cols, repeats, fifo_depth, width, max_passes):
    """``fifo_event_periodic``'s four values for a mask given as its ``column_bits`` on
    ``n_pes >= out`` PEs (PE p owns row p; PEs past the rows take no entry)."""
    col, degree, _ = columns
    n_words, n_in = col.shape
    n_cols = entry_cols.shape[0]
    by_col = np.empty((n_in, n_words), dtype=np.uint64)  # each column's row words together
    for w in range(n_words):
        for j in range(n_in):
            by_col[j, w] = col[w, j]
    pass_busy, last_pos = _stream_totals(by_col, degree, entry_cols, n_pes)
    ends_ptr, ends_pes = _pes_by_last_position(last_pos, n_cols)
    planes = 1
    while (1 << planes) <= fifo_depth:
        planes += 1
    # plane-major, so each step below is a loop over the words that vectorises
    occ = np.zeros((planes, n_words), dtype=np.uint64)
    unlike = np.empty(planes, dtype=np.uint64)  # a plane's bits where the depth's bit is 0
    for t in range(planes):
        unlike[t] = np.uint64(0) if (fifo_depth >> t) & 1 else ~np.uint64(0)
    full = np.zeros(n_words, dtype=np.uint64)  # PEs holding fifo_depth entries
    working = np.zeros(n_words, dtype=np.uint64)  # PEs that work this cycle
    carry = np.empty(n_words, dtype=np.uint64)
    # the state at every CHECK_EVERY-th position of the last pass: (counts, working PEs),
    # entries sent in the cycle so far, and the cycle
    n_checks = (n_cols + CHECK_EVERY - 1) // CHECK_EVERY
    snap_occ = np.zeros((n_checks, planes, n_words), dtype=np.uint64)
    snap_working = np.zeros((n_checks, n_words), dtype=np.uint64)
    snap_sent = np.zeros(n_checks, dtype=np.int64)
    snap_cycle = np.zeros(n_checks, dtype=np.int64)
    finish = np.zeros(n_pes, dtype=np.int64)  # each PE's last entry's finish so far
    before_finish = np.zeros(n_pes, dtype=np.int64)  # and at the end of the last pass
    before_broadcast = -1
    cycle = 0
    sent = 0  # entries broadcast this cycle
    last_broadcast = -1
    n = 0  # passes done
    while n < repeats:
        if sent == width:  # the cycle is over: compare where the next one starts
            cycle = _end_cycle(occ, full, working, carry, unlike, cycle)
            sent = 0
        if n > 0 and n_checks and _same(occ, working, sent, snap_occ[0], snap_working[0],
                                        snap_sent[0]):  # fmt: skip
            # the state after n passes repeats that after n - 1: so does every later pass
            return _repeated(n, last_broadcast, cycle - snap_cycle[0], finish, pass_busy,
                             n_cols, repeats, width)  # fmt: skip
        if n >= max_passes:  # not periodic within the caller's bound
            none = np.zeros(n_pes, dtype=np.int64)
            return -1, -1, none, (-1, 0, 0, none, none)
        for k in range(n_cols):
            if k % CHECK_EVERY == 0:
                c = k // CHECK_EVERY
                if k > 0:
                    if sent == width:
                        cycle = _end_cycle(occ, full, working, carry, unlike, cycle)
                        sent = 0
                    if n > 0 and _same(occ, working, sent, snap_occ[c], snap_working[c],
                                       snap_sent[c]):  # fmt: skip
                        # the rest of this pass, and every later one, is the last pass's,
                        # later: this pass ends as that one did, shifted
                        period = cycle - snap_cycle[c]
                        for p in range(n_pes):
                            if last_pos[p] >= k:
                                finish[p] = before_finish[p] + period
                        return _repeated(n + 1, before_broadcast + period, period, finish,
                                         pass_busy, n_cols, repeats, width)  # fmt: skip
                snap_occ[c] = occ
                snap_working[c] = working
                snap_sent[c] = sent
                snap_cycle[c] = cycle
            words = by_col[entry_cols[k]]
            while sent == width or _blocked(words, full):
                cycle = _end_cycle(occ, full, working, carry, unlike, cycle)
                sent = 0
            _take(occ, full, carry, unlike, words)
            for q in range(ends_ptr[k], ends_ptr[k + 1]):  # PEs whose last entry this is
                p = ends_pes[q]
                w, bit = p >> 6, np.uint64(p & 63)
                ahead = _count(occ, w, bit) - 1
                idle = 1 - np.int64((working[w] >> bit) & np.uint64(1))
                finish[p] = cycle + 1 + ahead + idle
            sent += 1
            last_broadcast = cycle
        before_finish[:] = finish
        before_broadcast = last_broadcast
        n += 1
    cycles, stall = _finish_times(last_broadcast, finish, n_cols * repeats, width)
    none = np.zeros(n_pes, dtype=np.int64)
    return cycles, stall, pass_busy * repeats, (-1, 0, 0, none, pass_busy)


@njit(**JIT_OPTIONS)
def _repeated(passes, last_broadcast, period, finish, pass_busy, n_cols, repeats, width):
    """The four values once the schedule after ``passes`` passes repeats every ``period``
    cycles (``repeated_finish``'s rule for the passes left)."""
    shift = period * (repeats - passes)
    free = np.empty(finish.shape[0], dtype=np.int64)
    for p in range(finish.shape[0]):
        free[p] = max(finish[p], last_broadcast + 1) + shift
    cycles, stall = _finish_times(last_broadcast + shift, free, n_cols * repeats, width)
    return cycles, stall, pass_busy * repeats, (passes, last_broadcast, period, finish,
                                                pass_busy)  # fmt: skip


@njit(**JIT_OPTIONS)
def _stream_totals(by_col, degree, entry_cols, n_pes):
    """Each PE's entries in a pass of ``entry_cols`` (its busy cycles) and the position of
    its last one (-1: none). When the stream takes each column at most once and every column
    with a kept weight, a PE's entries are its row's kept weights (``degree``)."""
    n_in, n_words = by_col.shape
    n_cols = entry_cols.shape[0]
    last_pos = np.full(n_pes, -1, dtype=np.int64)
    seen = np.zeros(n_words, dtype=np.uint64)
    for k in range(n_cols - 1, -1, -1):  # backwards: a PE's first sighting is its last entry
        words = by_col[entry_cols[k]]
        for w in range(n_words):
            new = words[w] & ~seen[w]
            seen[w] |= new
            while new:
                last_pos[64 * w + lowest_bit(new)] = k
                new &= new - np.uint64(1)
    streamed = np.zeros(n_in, dtype=np.bool_)
    once = True
    for k in range(n_cols):
        once = once and not streamed[entry_cols[k]]
        streamed[entry_cols[k]] = True
    covered = once
    for j in range(n_in):
        if not streamed[j]:
            for w in range(n_words):
                covered = covered and by_col[j, w] == 0
    pass_busy = np.zeros(n_pes, dtype=np.int64)
    if covered:
        pass_busy[: degree.shape[0]] = degree
        return pass_busy, last_pos
    for k in range(n_cols):
        words = by_col[entry_cols[k]]
        for w in range(n_words):
            x = words[w]
            while x:
                pass_busy[64 * w + lowest_bit(x)] += 1
                x &= x - np.uint64(1)
    return pass_busy, last_pos


@njit(**JIT_OPTIONS)
def _pes_by_last_position(last_pos, n_cols):
    """The PEs whose last entry of a pass is at each stream position, as (pointers, PEs)."""
    count = np.zeros(n_cols + 1, dtype=np.int64)
    for p in range(last_pos.shape[0]):
        if last_pos[p] >= 0:
            count[last_pos[p] + 1] += 1
    for k in range(n_cols):
        count[k + 1] += count[k]
    fill = count[:-1].copy()
    pes = np.empty(count[n_cols], dtype=np.int64)
    for p in range(last_pos.shape[0]):
        k = last_pos[p]
        if k >= 0:
            pes[fill[k]] = p
            fill[k] += 1
    return count, pes


@njit(inline="always", **JIT_OPTIONS)
def _blocked(words, full):
    """Whether a PE taking the entry (its column's row ``words``) is full."""
    hit = np.uint64(0)
    for w in range(words.shape[0]):
        hit |= words[w] & full[w]
    return hit != 0


@njit(inline="always", **JIT_OPTIONS)
def _full(occ, full, unlike):
    """The PEs whose count equals the depth (``unlike``: its bits, inverted, as masks)."""
    planes, n_words = occ.shape
    for w in range(n_words):
        full[w] = ~np.uint64(0)
    for t in range(planes):
        for w in range(n_words):
            full[w] &= occ[t, w] ^ unlike[t]


@njit(inline="always", **JIT_OPTIONS)
def _take(occ, full, carry, unlike, words):
    """Add one to the counts of the PEs set in ``words`` (a ripple-carry add per word; a
    count stays below ``2 ** planes``, being at most the depth)."""
    planes, n_words = occ.shape
    for w in range(n_words):
        carry[w] = words[w]
    for t in range(planes):
        for w in range(n_words):
            before = occ[t, w]
            occ[t, w] = before ^ carry[w]
            carry[w] = before & carry[w]
    _full(occ, full, unlike)


@njit(inline="always", **JIT_OPTIONS)
def _count(occ, w, bit):
    """The count of PE ``64 w + bit``."""
    value = 0
    for t in range(occ.shape[0]):
        value += np.int64((occ[t, w] >> bit) & np.uint64(1)) << t
    return value


@njit(inline="always", **JIT_OPTIONS)
def _end_cycle(occ, full, working, borrow, unlike, cycle):
    """The compute phase (every working PE finishes its one-cycle entry: a ripple borrow),
    then the next cycle's pop (a PE works iff it holds an entry): the next cycle's index."""
    planes, n_words = occ.shape
    for w in range(n_words):
        borrow[w] = working[w]
        working[w] = 0
    for t in range(planes):
        for w in range(n_words):
            before = occ[t, w]
            after = before ^ borrow[w]
            borrow[w] = ~before & borrow[w]
            occ[t, w] = after
            working[w] |= after
    _full(occ, full, unlike)
    return cycle + 1


@njit(inline="always", **JIT_OPTIONS)
def _same(occ, working, sent, snap_occ, snap_working, snap_sent):
    """Whether the counts, the working PEs and the entries sent this cycle equal the
    snapshot's."""
    if sent != snap_sent:
        return False
    for w in range(working.shape[0]):
        if working[w] != snap_working[w]:
            return False
    for t in range(occ.shape[0]):
        for w in range(occ.shape[1]):
            if occ[t, w] != snap_occ[t, w]:
                return False
    return True
