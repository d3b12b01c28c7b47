"""Timing of an unstructured-sparse PE array (EIE / SparTen style): two engines, same rules.

Both kernels take ``cost`` ``[P, in]`` (cycles PE p spends on an activation of column j;
0 means PE p's FIFO filters that column out and it takes no slot), ``entry_cols`` (the
columns broadcast for one pass of the stream), ``repeats`` (how many times that pass is
broadcast: the number of tokens when every token has the same nonzero activations, else 1
with the whole token-major stream in ``entry_cols``), ``fifo_depth`` and ``width``. They
return ``(cycles, broadcast_stall_cycles, busy_cycles[P])``.

Timing rules (cycle t = 0, 1, ...; each cycle runs three phases in this order):

1. *Pop.* Every PE that has no entry in progress starts the head of its FIFO, if any: it is
   busy for ``cost`` cycles starting this cycle. The entry stays in its FIFO slot until it is
   done (``fifo_depth`` counts the entry the PE works on, as EIE's activation queue does, so
   depth 1 is lockstep: the next activation waits until the PE has finished this one).
2. *Broadcast.* The broadcaster sends up to ``width`` entries, in stream order, each into
   every FIFO that accepts it (``cost[p, col] > 0``) provided each of those holds fewer than
   ``fifo_depth`` entries (counting those sent earlier this cycle); the first entry that
   does not fit ends this cycle's broadcast. An entry sent in cycle t starts in cycle t + 1
   at the earliest.
3. *Compute.* Every PE with an entry in progress does one cycle of it; an entry whose last
   cycle this was leaves its FIFO.

The layer ends at the start of the first cycle in which everything has been broadcast and
every FIFO is empty; ``cycles`` is that cycle's index. ``broadcast_stall_cycles`` is the
broadcast's length beyond its minimum: ``b_last + 1 - ceil(entries / width)``.

``fifo_cycle_stepping`` executes these phases literally, O(cycles x P). ``fifo_event_schedule``
is the equivalent event recurrence, O(entries x P). With b_e the broadcast cycle of entry e,
and s/f the start and finish (first free) cycle of e at an accepting PE p, e' the previous
entry p accepted and e'' the one it accepted ``fifo_depth`` places before e:

    b_e = max(b_{e-1}, b_{e-width} + 1, max_p f_{p,e''})    (terms absent when e < index)
    s_{p,e} = max(b_e + 1, f_{p,e'})                        (f = 0 before the first entry)
    f_{p,e} = s_{p,e} + cost_{p,e}
    cycles = max(b_last + 1, max_p f_p)

The FIFO at p holds, when e is offered in cycle t, the accepted entries before e that have
not finished by t; they finish in order, so it has room iff e'' has (f_{p,e''} <= t). When no
cost is 0 every PE takes every entry and the loops over PEs are branch-free (vectorised).
``per_pe_entries`` counts each PE's entries per column, RLE padding entries included.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit


@njit(**JIT_OPTIONS)
def per_pe_entries(mask, n_pes, run_bits):
    """``[n_pes, in]``: entries PE p stores for column j, its rows being ``i % n_pes == p``
    (local row ``i // n_pes``), run-length coded as EIE does: a kept weight after a run of L
    zeros of the PE's column takes ``1 + (L >> run_bits)`` entries (``L >> run_bits`` padding
    entries, each a stored zero the PE spends a cycle on); zeros after the last kept weight
    are not stored. ``run_bits = 0`` counts kept weights only (no padding)."""
    out, n_in = mask.shape
    entries = np.zeros((n_pes, n_in), dtype=np.int64)
    run = np.zeros(n_pes, dtype=np.int64)
    for j in range(n_in):
        run[:] = 0
        for i in range(out):
            p = i % n_pes
            if mask[i, j]:
                entries[p, j] += 1
                if run_bits > 0:
                    entries[p, j] += run[p] >> run_bits
                run[p] = 0
            else:
                run[p] += 1
    return entries


@njit(**JIT_OPTIONS)
def _finish_times(last_broadcast, free_at, n_entries, width):
    """(cycles, broadcast stall): the last PE finish or broadcast, and the broadcast cycles
    beyond ``ceil(entries / width)``."""
    cycles = last_broadcast + 1
    for p in range(free_at.shape[0]):
        cycles = max(cycles, free_at[p])
    return cycles, last_broadcast + 1 - (n_entries + width - 1) // width


@njit(**JIT_OPTIONS)
def _every_pe_accepts(by_col, entry_cols, repeats, fifo_depth, width):
    """``fifo_event_schedule`` when no cost is 0: every PE takes every entry, so all rings
    advance together and the loops over PEs are branch-free (vectorised)."""
    n_pes = by_col.shape[1]
    n_cols = entry_cols.shape[0]
    busy = np.zeros(n_pes, dtype=np.int64)
    free_at = np.zeros(n_pes, dtype=np.int64)
    finishes = np.zeros((fifo_depth, n_pes), dtype=np.int64)  # ring of finish cycles
    sent_ring = np.full(width, -1, dtype=np.int64)  # broadcast cycles of the last ``width``
    slot = 0
    full = False  # has every ring seen ``fifo_depth`` entries?
    last_broadcast = -1
    e = 0
    for _ in range(repeats):
        for k in range(n_cols):
            col_cost = by_col[entry_cols[k]]
            sent = max(last_broadcast, sent_ring[e % width] + 1)
            if full:
                oldest = finishes[slot]
                for p in range(n_pes):
                    sent = max(sent, oldest[p])
            ring = finishes[slot]
            for p in range(n_pes):
                free_at[p] = max(sent + 1, free_at[p]) + col_cost[p]
                ring[p] = free_at[p]
                busy[p] += col_cost[p]
            slot += 1
            if slot == fifo_depth:
                slot = 0
                full = True
            sent_ring[e % width] = sent
            last_broadcast = sent
            e += 1
    cycles, stall = _finish_times(last_broadcast, free_at, n_cols * repeats, width)
    return cycles, stall, busy


@njit(**JIT_OPTIONS)
def fifo_event_schedule(cost, entry_cols, repeats, fifo_depth, width):
    """Exact event recurrence of the broadcast/FIFO/PE timing (see the module docstring)."""
    n_pes = cost.shape[0]
    n_cols = entry_cols.shape[0]
    by_col = np.ascontiguousarray(cost.T)  # [in, P]: the inner loops run along PEs
    if n_pes > 0 and cost.size > 0 and cost.min() > 0:
        return _every_pe_accepts(by_col, entry_cols, repeats, fifo_depth, width)
    busy = np.zeros(n_pes, dtype=np.int64)
    free_at = np.zeros(n_pes, dtype=np.int64)
    # finish cycles of each PE's last ``fifo_depth`` accepted entries, as a ring; slot[p] is
    # the oldest (the one ``fifo_depth`` accepted entries back once the ring is full)
    finishes = np.zeros((fifo_depth, n_pes), dtype=np.int64)
    slot = np.zeros(n_pes, dtype=np.int64)
    accepted = np.zeros(n_pes, dtype=np.int64)
    sent_ring = np.full(width, -1, dtype=np.int64)
    last_broadcast = -1
    e = 0
    for _ in range(repeats):
        for k in range(n_cols):
            col_cost = by_col[entry_cols[k]]
            sent = max(last_broadcast, sent_ring[e % width] + 1)
            for p in range(n_pes):
                if col_cost[p] > 0 and accepted[p] >= fifo_depth:
                    sent = max(sent, finishes[slot[p], p])
            for p in range(n_pes):
                c = col_cost[p]
                if c > 0:
                    free_at[p] = max(sent + 1, free_at[p]) + c
                    finishes[slot[p], p] = free_at[p]
                    slot[p] = slot[p] + 1 if slot[p] + 1 < fifo_depth else 0
                    accepted[p] += 1
                    busy[p] += c
            sent_ring[e % width] = sent
            last_broadcast = sent
            e += 1
    cycles, stall = _finish_times(last_broadcast, free_at, n_cols * repeats, width)
    return cycles, stall, busy


@njit(**JIT_OPTIONS)
def fifo_cycle_stepping(cost, entry_cols, repeats, fifo_depth, width):
    """Advance the broadcaster, every FIFO and every PE one cycle at a time."""
    n_pes = cost.shape[0]
    n_cols = entry_cols.shape[0]
    n_entries = n_cols * repeats
    fifo = np.zeros((n_pes, fifo_depth), dtype=np.int64)  # ring buffers of columns
    head = np.zeros(n_pes, dtype=np.int64)
    count = np.zeros(n_pes, dtype=np.int64)  # entries held, the one in progress included
    remaining = np.zeros(n_pes, dtype=np.int64)  # cycles left on the entry in progress
    working = np.zeros(n_pes, dtype=np.bool_)
    busy = np.zeros(n_pes, dtype=np.int64)
    next_entry = 0
    last_broadcast = -1
    cycle = 0
    while True:
        if next_entry == n_entries:
            drained = True
            for p in range(n_pes):
                if count[p] > 0:
                    drained = False
                    break
            if drained:
                return cycle, last_broadcast + 1 - (n_entries + width - 1) // width, busy
        # phase 1: pop (the entry stays in its slot until done)
        for p in range(n_pes):
            if not working[p] and count[p] > 0:
                remaining[p] = cost[p, fifo[p, head[p]]]
                working[p] = True
        # phase 2: broadcast up to ``width`` entries in order
        for _ in range(width):
            if next_entry == n_entries:
                break
            col = entry_cols[next_entry % n_cols]
            room = True
            for p in range(n_pes):
                if cost[p, col] > 0 and count[p] == fifo_depth:
                    room = False
                    break
            if not room:
                break
            for p in range(n_pes):
                if cost[p, col] > 0:
                    fifo[p, (head[p] + count[p]) % fifo_depth] = col
                    count[p] += 1
            next_entry += 1
            last_broadcast = cycle
        # phase 3: compute; a finished entry leaves its FIFO
        for p in range(n_pes):
            if working[p]:
                remaining[p] -= 1
                busy[p] += 1
                if remaining[p] == 0:
                    working[p] = False
                    head[p] = (head[p] + 1) % fifo_depth
                    count[p] -= 1
        cycle += 1
