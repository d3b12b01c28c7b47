"""Timing of an unstructured-sparse PE array (EIE / SparTen style): two engines, same rules.

Both kernels take ``cost`` ``[P, in]`` (cycles PE p spends on an activation of column j;
0 means PE p's FIFO filters that column out and it takes no slot), ``entry_cols`` (the
columns broadcast for one pass of the stream), ``repeats`` (how many times that pass is
broadcast: the number of tokens when every token has the same nonzero activations, else 1
with the whole token-major stream in ``entry_cols``) and ``fifo_depth``. They return
``(cycles, broadcast_stall_cycles, busy_cycles[P])``.

Timing rules (cycle t = 0, 1, ...; each cycle runs three phases in this order):

1. *Pop.* Every PE that has no entry in progress pops the head of its FIFO, if any, and
   starts it: it is busy for ``cost`` cycles starting this cycle.
2. *Broadcast.* If entries remain, the broadcaster sends the next one iff every FIFO that
   accepts it (``cost[p, col] > 0``) holds fewer than ``fifo_depth`` entries after phase 1
   (pop-then-push: a slot freed this cycle is reused this cycle). Otherwise it stalls this
   cycle (one broadcast stall cycle). An entry pushed in cycle t can be popped in t + 1 at
   the earliest (one cycle of broadcast latency).
3. *Compute.* Every PE with an entry in progress performs one MAC (or pointer read).

The layer ends at the start of the first cycle in which everything has been broadcast, every
FIFO is empty and no PE is busy; ``cycles`` is that cycle's index.

``fifo_cycle_stepping`` executes these phases literally, O(cycles x P). ``fifo_event_schedule``
is the equivalent event recurrence, O(entries x P). With b_e the broadcast cycle of entry e,
and s/f the start and first free cycle of e at an accepting PE p (whose previous accepted
entry is e' and whose accepted entry ``fifo_depth`` places before e is e''):

    b_e = max(b_{e-1} + 1, max_p s_{p,e''})     (b_{-1} = -1; no term if e'' does not exist)
    s_{p,e} = max(b_e + 1, f_{p,e'})             (f = 0 before the first entry)
    f_{p,e} = s_{p,e} + cost_{p,e}
    cycles = max(b_last + 1, max_p f_p)         stall = b_last + 1 - entries

The FIFO at p holds, when entry e is offered in cycle t, the accepted entries before e not yet
popped by t; s grows along them, so it has a free slot iff e'' was popped by t (s_{p,e''} <= t).
When no cost is 0 (``min_cycles_per_entry >= 1``) every PE takes every entry and the loops
over PEs are branch-free, which lets LLVM vectorise them.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit


@njit(**JIT_OPTIONS)
def _finish_times(last_broadcast, free_at, n_entries):
    """(cycles, broadcast stall): the last PE finish or broadcast, and the broadcast cycles
    beyond one per entry."""
    cycles = last_broadcast + 1
    for p in range(free_at.shape[0]):
        cycles = max(cycles, free_at[p])
    return cycles, last_broadcast + 1 - n_entries


@njit(**JIT_OPTIONS)
def _every_pe_accepts(by_col, entry_cols, repeats, fifo_depth):
    """``fifo_event_schedule`` when no cost is 0: every PE takes every entry, so all rings
    advance together and the loops over PEs are branch-free (vectorised)."""
    n_pes = by_col.shape[1]
    n_cols = entry_cols.shape[0]
    busy = np.zeros(n_pes, dtype=np.int64)
    free_at = np.zeros(n_pes, dtype=np.int64)
    starts = np.zeros((fifo_depth, n_pes), dtype=np.int64)
    slot = 0
    full = False  # has every ring seen ``fifo_depth`` entries?
    last_broadcast = -1
    for _ in range(repeats):
        for k in range(n_cols):
            col_cost = by_col[entry_cols[k]]
            sent = last_broadcast + 1
            if full:
                oldest = starts[slot]
                for p in range(n_pes):
                    sent = max(sent, oldest[p])
            ring = starts[slot]
            for p in range(n_pes):
                start = max(sent + 1, free_at[p])
                ring[p] = start
                free_at[p] = start + col_cost[p]
                busy[p] += col_cost[p]
            slot += 1
            if slot == fifo_depth:
                slot = 0
                full = True
            last_broadcast = sent
    cycles, stall = _finish_times(last_broadcast, free_at, n_cols * repeats)
    return cycles, stall, busy


@njit(**JIT_OPTIONS)
def fifo_event_schedule(cost, entry_cols, repeats, fifo_depth):
    """Exact event recurrence of the broadcast/FIFO/PE timing (see the module docstring)."""
    n_pes = cost.shape[0]
    n_cols = entry_cols.shape[0]
    by_col = np.ascontiguousarray(cost.T)  # [in, P]: the inner loops run along PEs
    if n_pes > 0 and cost.size > 0 and cost.min() > 0:
        return _every_pe_accepts(by_col, entry_cols, repeats, fifo_depth)
    busy = np.zeros(n_pes, dtype=np.int64)
    free_at = np.zeros(n_pes, dtype=np.int64)
    # start cycles of each PE's last ``fifo_depth`` accepted entries, as a ring; slot[p] is
    # the oldest (the one ``fifo_depth`` accepted entries back once the ring is full)
    starts = np.zeros((fifo_depth, n_pes), dtype=np.int64)
    slot = np.zeros(n_pes, dtype=np.int64)
    accepted = np.zeros(n_pes, dtype=np.int64)
    last_broadcast = -1
    for _ in range(repeats):
        for k in range(n_cols):
            col_cost = by_col[entry_cols[k]]
            sent = last_broadcast + 1
            for p in range(n_pes):
                if col_cost[p] > 0 and accepted[p] >= fifo_depth:
                    sent = max(sent, starts[slot[p], p])
            for p in range(n_pes):
                c = col_cost[p]
                if c > 0:
                    start = max(sent + 1, free_at[p])
                    free_at[p] = start + c
                    starts[slot[p], p] = start
                    slot[p] = slot[p] + 1 if slot[p] + 1 < fifo_depth else 0
                    accepted[p] += 1
                    busy[p] += c
            last_broadcast = sent
    cycles, stall = _finish_times(last_broadcast, free_at, n_cols * repeats)
    return cycles, stall, busy


@njit(**JIT_OPTIONS)
def fifo_cycle_stepping(cost, entry_cols, repeats, fifo_depth):
    """Advance the broadcaster, every FIFO and every PE one cycle at a time."""
    n_pes = cost.shape[0]
    n_cols = entry_cols.shape[0]
    n_entries = n_cols * repeats
    fifo = np.zeros((n_pes, fifo_depth), dtype=np.int64)  # ring buffers of columns
    head = np.zeros(n_pes, dtype=np.int64)
    count = np.zeros(n_pes, dtype=np.int64)
    remaining = np.zeros(n_pes, dtype=np.int64)  # cycles left on the entry in progress
    busy = np.zeros(n_pes, dtype=np.int64)
    next_entry = 0
    stall = 0
    cycle = 0
    while True:
        if next_entry == n_entries:
            drained = True
            for p in range(n_pes):
                if remaining[p] > 0 or count[p] > 0:
                    drained = False
                    break
            if drained:
                return cycle, stall, busy
        # phase 1: pop
        for p in range(n_pes):
            if remaining[p] == 0 and count[p] > 0:
                remaining[p] = cost[p, fifo[p, head[p]]]
                head[p] = (head[p] + 1) % fifo_depth
                count[p] -= 1
        # phase 2: broadcast
        if next_entry < n_entries:
            col = entry_cols[next_entry % n_cols]
            room = True
            for p in range(n_pes):
                if cost[p, col] > 0 and count[p] == fifo_depth:
                    room = False
                    break
            if room:
                for p in range(n_pes):
                    if cost[p, col] > 0:
                        fifo[p, (head[p] + count[p]) % fifo_depth] = col
                        count[p] += 1
                next_entry += 1
            else:
                stall += 1
        # phase 3: compute
        for p in range(n_pes):
            if remaining[p] > 0:
                remaining[p] -= 1
                busy[p] += 1
        cycle += 1
