"""Slow, obvious twins of ``accel_sim.kernels.sparse_pe`` and ``per_pe_work``.

Work from explicit row loops (RLE padding entries counted run by run), the broadcast stream
as a Python list of columns, FIFOs as lists that keep the entry in progress at their head,
and the same three phases per cycle (start, broadcast up to ``width``, compute) written
plainly; and the event recurrence with whole lists of finish times instead of rings.
"""

from __future__ import annotations


def naive_per_pe_work(mask, n_pes):
    """work[p][j]: kept weights of rows i with i % n_pes == p in column j."""
    n_out, n_in = len(mask), len(mask[0])
    work = [[0] * n_in for _ in range(n_pes)]
    for i in range(n_out):
        for j in range(n_in):
            if mask[i][j]:
                work[i % n_pes][j] += 1
    return work


def naive_per_pe_entries(mask, n_pes, run_bits):
    """entries[p][j]: PE p's stored entries of column j, run-length coded with
    ``run_bits``-bit zero runs (a run of L zeros before a kept weight adds L >> run_bits
    padding entries; trailing zeros are not stored)."""
    n_out, n_in = len(mask), len(mask[0])
    entries = [[0] * n_in for _ in range(n_pes)]
    for p in range(n_pes):
        rows = list(range(p, n_out, n_pes))
        for j in range(n_in):
            zeros = 0
            for i in rows:
                if mask[i][j]:
                    entries[p][j] += 1 + (zeros >> run_bits if run_bits else 0)
                    zeros = 0
                else:
                    zeros += 1
    return entries


def naive_stream(n_in, m, activations):
    """Columns broadcast, token by token, skipping zero activations."""
    stream = []
    for token in range(m):
        for j in range(n_in):
            if activations is None:
                nonzero = True
            elif activations.ndim == 1:
                nonzero = activations[j]
            else:
                nonzero = activations[token][j]
            if nonzero:
                stream.append(j)
    return stream


def _costs(mask, n_pes, min_cycles, run_bits):
    entries = naive_per_pe_entries(mask, n_pes, run_bits)
    return [[max(e, min_cycles) for e in row] for row in entries]


def naive_cycle_stepping(
    mask, m, n_pes, fifo_depth, activations=None, min_cycles=1, width=1, run_bits=0
):
    """(cycles, broadcast stall cycles, busy cycles per PE), one cycle at a time."""
    cost = _costs(mask, n_pes, min_cycles, run_bits)
    stream = naive_stream(len(mask[0]), m, activations)
    fifos = [[] for _ in range(n_pes)]  # columns held; the head is in progress when working
    working = [False] * n_pes
    left = [0] * n_pes
    busy = [0] * n_pes
    sent = 0
    last_broadcast = -1
    cycle = 0
    while sent < len(stream) or any(fifos):
        for p in range(n_pes):  # start the head
            if not working[p] and fifos[p]:
                working[p] = True
                left[p] = cost[p][fifos[p][0]]
        for _ in range(width):  # broadcast, in order, while every taker has room
            if sent == len(stream):
                break
            col = stream[sent]
            takers = [p for p in range(n_pes) if cost[p][col] > 0]
            if not all(len(fifos[p]) < fifo_depth for p in takers):
                break
            for p in takers:
                fifos[p].append(col)
            sent += 1
            last_broadcast = cycle
        for p in range(n_pes):  # compute; a finished entry leaves
            if working[p]:
                left[p] -= 1
                busy[p] += 1
                if left[p] == 0:
                    working[p] = False
                    fifos[p].pop(0)
        cycle += 1
    minimum = -(-len(stream) // width)
    return cycle, last_broadcast + 1 - minimum, busy


def naive_event_recurrence(
    mask, m, n_pes, fifo_depth, activations=None, min_cycles=1, width=1, run_bits=0
):
    """The same numbers from b_e, s_{p,e}, f_{p,e} (the kernel module's docstring)."""
    cost = _costs(mask, n_pes, min_cycles, run_bits)
    stream = naive_stream(len(mask[0]), m, activations)
    finishes = [[] for _ in range(n_pes)]  # finish cycle of each accepted entry, in order
    free = [0] * n_pes
    busy = [0] * n_pes
    broadcasts: list[int] = []
    for e, col in enumerate(stream):
        takers = [p for p in range(n_pes) if cost[p][col] > 0]
        bounds = [broadcasts[-1] if broadcasts else 0]
        bounds.append(broadcasts[e - width] + 1 if e >= width else 0)
        bounds += [finishes[p][-fifo_depth] for p in takers if len(finishes[p]) >= fifo_depth]
        sent = max(bounds)
        for p in takers:
            free[p] = max(sent + 1, free[p]) + cost[p][col]
            finishes[p].append(free[p])
            busy[p] += cost[p][col]
        broadcasts.append(sent)
    last = broadcasts[-1] if broadcasts else -1
    cycles = max([last + 1, *free])
    return cycles, last + 1 - (-(-len(stream) // width)), busy
