"""The PE array's timing (``sparse_pe``'s rules) cycle by cycle, 64 PEs a word: with one
row a PE (``n_pes >= out``), or on a multiple of 64 PEs (PE p owning rows p, p + P, ...).

The state of 64 FIFOs is kept bit-sliced in words (bit ``p % 64`` of word ``[t, p // 64]``
is bit t of PE p's number), so one word operation moves 64 FIFOs:

- ``occ``: the entries a FIFO holds, the one in progress included (what fills it);
- ``rem``: the cycles left of the entry in progress (0: idle);
- ``slots``: the queued entries' costs, newest in slot 0 (a slot past the queue is zero).

A cycle runs the module's three phases for every PE at once:

- *pop*: an idle PE holding entries starts its oldest (slot ``occ - 1``), whose cost
  becomes its cycles left;
- *broadcast* an entry of column j: it fits when no PE taking it is full (``takers & full``,
  a word per 64 PEs, ``takers`` the PEs with a row keeping column j); taking it shifts the
  takers' queues up, puts its cost (their rows keeping column j, bit-sliced) in slot 0, and
  adds one to their counts (a ripple-carry add);
- *compute*: every working PE's cycles left drop by one (a ripple borrow), and an entry
  left with none leaves its FIFO.

With one row a PE every entry costs one cycle: a PE starts and finishes its head in the
same cycle, so there are no slots and a PE works in a cycle iff it held an entry at the
cycle's pop (one taken in the cycle waits for the next). An entry taken in
cycle t finishes at t + (cycles left, at least 1) + the queued costs up to it; only each
PE's last entry of a pass is read so.

A pass costs (entries + cycles) x words (times the depth's slots of cost planes with
several rows a PE) instead of a visit per PE taking an entry
(``_periodic``'s recurrence, and the CSC it reads): on BERT-base at 1,024 PEs a fourth of
the time or less (``applies`` says where it is faster). The passes repeat the same stream:
the state every ``CHECK_EVERY`` entries (the words above and the entries sent in the cycle)
is kept and compared with the next pass's at the same position, and once equal the rest of
that pass and every later one repeat, shifted by the cycles between, and are added in one
step, as ``_periodic`` does. This state is a function of ``_periodic``'s (times relative to
the last broadcast), so it repeats no later. The numbers (cycles, broadcast stall, busy
cycles) are ``fifo_event_periodic``'s; the periodic summary has the same meaning for
``repeated_finish``, its pass count at most the recurrence's.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.bitops import lowest_bit
from accel_sim.kernels.sparse_pe import _finish_times, _pointers

__all__ = ["CHECK_EVERY", "MAX_SLOT_PLANES", "applies", "fifo_bitsliced"]

CHECK_EVERY = 16  # entries between the states a pass keeps to compare the next pass's with
MAX_SLOT_PLANES = 64  # bit planes of queued costs a PE word may keep (``applies``)


def applies(n_pes: int, out: int, fifo_depth: int) -> bool:
    """Whether ``fifo_bitsliced`` takes a layer of ``out`` rows on ``n_pes`` PEs: always
    with one row a PE; on a multiple of 64 PEs when a PE's rows are at most a sixteenth of
    the PEs and the queued costs fit ``MAX_SLOT_PLANES`` bit planes (the depth times the
    bits of a PE's rows). A pass's cycles grow with a PE's rows and each costs a word
    operation per 64 PEs, against the recurrence's visit per PE taking an entry: measured
    on BERT-base's layers (8-deep FIFOs) it is 1.4 to 4.3 times faster from 128 PEs with 6
    rows each to 1,024 with 3, and slower at 128 PEs with 24 rows (0.8) and on 64 PEs with
    12 or 48 (0.75, 0.4)."""
    if n_pes >= out:
        return True
    most_rows = -(-out // n_pes)
    return (
        n_pes % 64 == 0
        and 16 * most_rows <= n_pes
        and fifo_depth * most_rows.bit_length() <= MAX_SLOT_PLANES
    )


@njit(**JIT_OPTIONS)
def fifo_bitsliced(columns, n_pes, entry_cols, repeats, fifo_depth, width, max_passes):
    """``fifo_event_periodic``'s four values for a mask given as its ``column_bits`` on
    ``n_pes`` PEs, PE p owning rows p, p + n_pes, ...: ``n_pes >= out`` (PEs past the rows
    take no entry) or a multiple of 64."""
    col, degree, _ = columns
    out = degree.shape[0]
    if n_pes < out and n_pes % 64:
        raise ValueError("fifo_bitsliced: n_pes must be at least the rows or a multiple of 64")
    take, cost = _column_costs(col, n_pes, out)
    groups = take.shape[1]
    cost_planes = cost.shape[1]  # 0: every entry costs one cycle (one row a PE)
    n_cols = entry_cols.shape[0]
    pass_busy, last_pos = _stream_totals(take, cost, degree, entry_cols, n_pes)
    ends_ptr, ends_pes = _pes_by_last_position(last_pos, n_cols)
    planes = 1
    while (1 << planes) <= fifo_depth:
        planes += 1
    # plane-major, so each step below is a loop over the groups' words that vectorises
    occ = np.zeros((planes, groups), dtype=np.uint64)  # entries held, the one in progress too
    rem = np.zeros((max(cost_planes, 1), groups), dtype=np.uint64)  # its cycles left
    slots = np.zeros((fifo_depth if cost_planes else 0, cost_planes, groups), dtype=np.uint64)
    depth_bits = np.array([t for t in range(planes) if (fifo_depth >> t) & 1], dtype=np.int64)
    full = np.zeros(groups, dtype=np.uint64)  # PEs holding fifo_depth entries
    scratch = np.empty((2, groups), dtype=np.uint64)
    # the state at every CHECK_EVERY-th position of the last pass, the entries sent in the
    # cycle so far, and the cycle
    # (none for a single pass, such as a stream of per-token activation masks: nothing
    # would be compared with them)
    n_checks = (n_cols + CHECK_EVERY - 1) // CHECK_EVERY if repeats > 1 else 0
    snap_occ = np.zeros((n_checks, occ.shape[0], groups), dtype=np.uint64)
    snap_rem = np.zeros((n_checks, rem.shape[0], groups), dtype=np.uint64)
    snap_slots = np.zeros((n_checks, slots.shape[0], cost_planes, groups), dtype=np.uint64)
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
            cycle = _end_cycle(occ, rem, slots, full, depth_bits, scratch, cycle)
            sent = 0
        if n > 0 and n_checks and sent == snap_sent[0] and _same(
            occ, rem, slots, snap_occ[0], snap_rem[0], snap_slots[0]
        ):
            # the state after n passes repeats that after n - 1: so does every later pass
            return _repeated(n, last_broadcast, cycle - snap_cycle[0], finish, pass_busy,
                             n_cols, repeats, width)  # fmt: skip
        if n >= max_passes:  # not periodic within the caller's bound
            none = np.zeros(n_pes, dtype=np.int64)
            return -1, -1, none, (-1, 0, 0, none, none)
        for k in range(n_cols):
            if n_checks and k % CHECK_EVERY == 0:
                c = k // CHECK_EVERY
                if k > 0:
                    if sent == width:
                        cycle = _end_cycle(occ, rem, slots, full, depth_bits, scratch, cycle)
                        sent = 0
                    if n > 0 and sent == snap_sent[c] and _same(
                        occ, rem, slots, snap_occ[c], snap_rem[c], snap_slots[c]
                    ):
                        # the rest of this pass, and every later one, is the last pass's,
                        # later: this pass ends as that one did, shifted
                        period = cycle - snap_cycle[c]
                        for p in range(n_pes):
                            if last_pos[p] >= k:
                                finish[p] = before_finish[p] + period
                        return _repeated(n + 1, before_broadcast + period, period, finish,
                                         pass_busy, n_cols, repeats, width)  # fmt: skip
                snap_occ[c] = occ
                snap_rem[c] = rem
                snap_slots[c] = slots
                snap_sent[c] = sent
                snap_cycle[c] = cycle
            j = entry_cols[k]
            takers = take[j]
            while sent == width or _blocked(takers, full):
                cycle = _end_cycle(occ, rem, slots, full, depth_bits, scratch, cycle)
                sent = 0
            _take(occ, slots, full, depth_bits, scratch, takers, cost[j])
            for q in range(ends_ptr[k], ends_ptr[k + 1]):  # PEs whose last entry this is
                p = ends_pes[q]
                finish[p] = cycle + _work_ahead(occ, rem, slots, p >> 6, np.uint64(p & 63))
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
def _column_costs(col, n_pes, out):
    """Each column's takers, ``[in, groups]`` (bit ``p % 64`` of group ``p // 64``: PE p
    has a row keeping the column), and their costs bit-sliced, ``[in, planes, groups]`` (the
    PE's rows keeping it, a ripple add of its row words; no planes with one row a PE, where
    every cost is one). PE p's rows p, p + P, ... are bit p % 64 of row words p // 64,
    p // 64 + P / 64, ... when P is a multiple of 64 (``pe_word_columns``)."""
    n_words, n_in = col.shape
    if n_pes >= out:
        groups, most_rows = n_words, 1
    else:
        groups, most_rows = n_pes // 64, (out + n_pes - 1) // n_pes
    planes = 0
    if most_rows > 1:
        while (1 << planes) <= most_rows:
            planes += 1
    take = np.zeros((n_in, groups), dtype=np.uint64)
    cost = np.zeros((n_in, planes, groups), dtype=np.uint64)
    for w in range(n_words):
        v = w % groups
        words = col[w]
        for j in range(n_in):
            x = words[j]
            take[j, v] |= x
            carry = x
            for t in range(planes):
                before = cost[j, t, v]
                cost[j, t, v] = before ^ carry
                carry = before & carry
    return take, cost


@njit(**JIT_OPTIONS)
def _stream_totals(take, cost, degree, entry_cols, n_pes):
    """Each PE's busy cycles in a pass of ``entry_cols`` and the position of its last entry
    (-1: none). When the stream takes each column at most once and every column with a kept
    weight, a PE's cycles are its rows' kept weights (``degree``)."""
    n_in, groups = take.shape
    n_cols = entry_cols.shape[0]
    last_pos = np.full(n_pes, -1, dtype=np.int64)
    seen = np.zeros(groups, dtype=np.uint64)
    for k in range(n_cols - 1, -1, -1):  # backwards: a PE's first sighting is its last entry
        takers = take[entry_cols[k]]
        for v in range(groups):
            new = takers[v] & ~seen[v]
            seen[v] |= new
            while new:
                last_pos[64 * v + lowest_bit(new)] = k
                new &= new - np.uint64(1)
    streamed = np.zeros(n_in, dtype=np.bool_)
    covered = True
    for k in range(n_cols):
        covered = covered and not streamed[entry_cols[k]]
        streamed[entry_cols[k]] = True
    for j in range(n_in):
        if not streamed[j]:
            for v in range(groups):
                covered = covered and take[j, v] == 0
    pass_busy = np.zeros(n_pes, dtype=np.int64)
    if covered:
        for i in range(degree.shape[0]):
            pass_busy[i % n_pes] += degree[i]
        return pass_busy, last_pos
    for k in range(n_cols):
        j = entry_cols[k]
        for v in range(groups):
            x = take[j, v]
            while x:
                bit = lowest_bit(x)
                pass_busy[64 * v + bit] += _digits(cost[j], v, np.uint64(bit), 1)
                x &= x - np.uint64(1)
    return pass_busy, last_pos


@njit(**JIT_OPTIONS)
def _pes_by_last_position(last_pos, n_cols):
    """The PEs whose last entry of a pass is at each stream position, as (pointers, PEs)."""
    count = np.zeros(n_cols, dtype=np.int64)
    for p in range(last_pos.shape[0]):
        if last_pos[p] >= 0:
            count[last_pos[p]] += 1
    ptr = _pointers(count)
    fill = ptr[:-1].copy()
    pes = np.empty(ptr[n_cols], dtype=np.int64)
    for p in range(last_pos.shape[0]):
        k = last_pos[p]
        if k >= 0:
            pes[fill[k]] = p
            fill[k] += 1
    return ptr, pes


@njit(inline="always", **JIT_OPTIONS)
def _digits(planes, v, bit, empty):
    """The number bit-sliced at ``bit`` of group ``v`` in ``planes [t, groups]`` (``empty``
    when there are no planes: a one-cycle cost)."""
    if planes.shape[0] == 0:
        return empty
    value = 0
    for t in range(planes.shape[0]):
        value += np.int64((planes[t, v] >> bit) & np.uint64(1)) << t
    return value


@njit(inline="always", **JIT_OPTIONS)
def _blocked(takers, full):
    """Whether a PE taking the entry is full."""
    hit = np.uint64(0)
    for v in range(takers.shape[0]):
        hit |= takers[v] & full[v]
    return hit != 0


@njit(inline="always", **JIT_OPTIONS)
def _equal(planes, value, mask):
    """Into ``mask``: the PEs whose bit-sliced number in ``planes`` is ``value``."""
    for v in range(mask.shape[0]):
        mask[v] = ~np.uint64(0)
    for t in range(planes.shape[0]):
        if (value >> t) & 1:
            for v in range(mask.shape[0]):
                mask[v] &= planes[t, v]
        else:
            for v in range(mask.shape[0]):
                mask[v] &= ~planes[t, v]


@njit(inline="always", **JIT_OPTIONS)
def _full(occ, full, depth_bits):
    """The PEs holding as many entries as the depth: as a count never exceeds the depth,
    those with every bit the depth has (``depth_bits``, its set bits' planes) set."""
    first = occ[depth_bits[0]]
    for v in range(full.shape[0]):
        full[v] = first[v]
    for i in range(1, depth_bits.shape[0]):
        plane = occ[depth_bits[i]]
        for v in range(full.shape[0]):
            full[v] &= plane[v]


@njit(inline="always", **JIT_OPTIONS)
def _take(occ, slots, full, depth_bits, scratch, takers, cost):
    """The takers' FIFOs take the entry: its cost goes in at the newest end of each queue
    (queued costs shift one slot up; a slot past the queue is zero) and their counts grow by
    one (a ripple-carry add; a count stays below ``2 ** planes``, being at most the
    depth)."""
    groups = takers.shape[0]
    for s in range(slots.shape[0] - 1, 0, -1):
        for t in range(slots.shape[1]):
            for v in range(groups):
                x = takers[v]
                slots[s, t, v] = (slots[s, t, v] & ~x) | (slots[s - 1, t, v] & x)
    if slots.shape[0]:
        for t in range(slots.shape[1]):
            for v in range(groups):
                slots[0, t, v] = (slots[0, t, v] & ~takers[v]) | cost[t, v]
    carry = scratch[0]
    for v in range(groups):
        carry[v] = takers[v]
    _ripple(occ, carry, _UP)
    _full(occ, full, depth_bits)


_UP, _DOWN = np.uint64(0), ~np.uint64(0)


@njit(inline="always", **JIT_OPTIONS)
def _ripple(planes, carry, direction):
    """Add one (``_UP``) or subtract one (``_DOWN``) at the PEs set in ``carry`` (consumed)
    of the numbers bit-sliced in ``planes``: a ripple carry or borrow."""
    for t in range(planes.shape[0]):
        for v in range(carry.shape[0]):
            before = planes[t, v]
            planes[t, v] = before ^ carry[v]
            carry[v] = (before ^ direction) & carry[v]


@njit(inline="always", **JIT_OPTIONS)
def _end_cycle(occ, rem, slots, full, depth_bits, scratch, cycle):
    """The compute phase (every working PE does a cycle of its entry, which leaves its FIFO
    when done: a ripple borrow of the cycles left, then of the count), then the next cycle's
    pop (an idle PE holding entries starts the oldest, the highest queued slot): the next
    cycle's index."""
    groups = full.shape[0]
    if slots.shape[0] == 0:  # one-cycle entries: every working PE finishes its entry
        _one_cycle_entries_end(occ, rem[0], full, depth_bits, scratch[0])
        return cycle + 1
    borrow, done = scratch[0], scratch[1]
    for v in range(groups):
        borrow[v] = 0
    for t in range(rem.shape[0]):
        for v in range(groups):
            borrow[v] |= rem[t, v]  # working
    for v in range(groups):
        done[v] = borrow[v]
    _ripple(rem, borrow, _DOWN)
    for t in range(rem.shape[0]):
        for v in range(groups):
            done[v] &= ~rem[t, v]  # worked, now idle: the entry is done
    _ripple(occ, done, _DOWN)
    starts = scratch[0]  # idle PEs holding entries
    for v in range(groups):
        starts[v] = 0
    for t in range(occ.shape[0]):
        for v in range(groups):
            starts[v] |= occ[t, v]
    for t in range(rem.shape[0]):
        for v in range(groups):
            starts[v] &= ~rem[t, v]
    at = scratch[1]
    for s in range(slots.shape[0]):  # the oldest queued entry sits at slot (count - 1)
        _equal(occ, s + 1, at)
        for v in range(groups):
            at[v] &= starts[v]
        for t in range(slots.shape[1]):
            for v in range(groups):
                rem[t, v] |= slots[s, t, v] & at[v]
                slots[s, t, v] &= ~at[v]
    _full(occ, full, depth_bits)
    return cycle + 1


@njit(inline="always", **JIT_OPTIONS)
def _one_cycle_entries_end(occ, working, full, depth_bits, borrow):
    """``_end_cycle`` when every entry costs one cycle: the working PEs' counts drop by one
    (a ripple borrow), and a PE works the next cycle iff it still holds an entry."""
    planes, groups = occ.shape
    for v in range(groups):
        borrow[v] = working[v]
        working[v] = 0
    _ripple(occ, borrow, _DOWN)
    for t in range(planes):
        for v in range(groups):
            working[v] |= occ[t, v]
    _full(occ, full, depth_bits)


@njit(inline="always", **JIT_OPTIONS)
def _work_ahead(occ, rem, slots, v, bit):
    """Cycles from now until PE ``64 v + bit``'s newest entry finishes: its entry in
    progress (at least this cycle's start when idle), then every queued one."""
    left = _digits(rem, v, bit, 0)
    queued = _digits(occ, v, bit, 0) - (1 if left > 0 else 0)
    if slots.shape[0] == 0:  # one-cycle entries
        return max(left, 1) + queued
    work = 0
    for s in range(queued):
        work += _digits(slots[s], v, bit, 0)
    return max(left, 1) + work


@njit(inline="always", **JIT_OPTIONS)
def _same(occ, rem, slots, snap_occ, snap_rem, snap_slots):
    """Whether the counts, cycles left and queued costs equal the snapshot's."""
    for t in range(occ.shape[0]):
        for v in range(occ.shape[1]):
            if occ[t, v] != snap_occ[t, v]:
                return False
    for t in range(rem.shape[0]):
        for v in range(rem.shape[1]):
            if rem[t, v] != snap_rem[t, v]:
                return False
    for s in range(slots.shape[0]):
        for t in range(slots.shape[1]):
            for v in range(slots.shape[2]):
                if slots[s, t, v] != snap_slots[s, t, v]:
                    return False
    return True
