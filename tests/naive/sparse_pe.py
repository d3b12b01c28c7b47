"""Slow, obvious twins of ``accel_sim.kernels.sparse_pe`` and ``per_pe_work``.

Work from explicit row loops, the broadcast stream as a Python list of columns, FIFOs as
deques, and the same three phases per cycle (pop, broadcast, compute) written plainly; and
the event recurrence with whole lists of start times instead of rings.
"""

from __future__ import annotations

from collections import deque


def naive_per_pe_work(mask, n_pes):
    """work[p][j]: kept weights of rows i with i % n_pes == p in column j."""
    n_out, n_in = len(mask), len(mask[0])
    work = [[0] * n_in for _ in range(n_pes)]
    for i in range(n_out):
        for j in range(n_in):
            if mask[i][j]:
                work[i % n_pes][j] += 1
    return work


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


def _costs(mask, n_pes, min_cycles):
    work = naive_per_pe_work(mask, n_pes)
    return [[max(w, min_cycles) for w in row] for row in work]


def naive_cycle_stepping(mask, m, n_pes, fifo_depth, activations=None, min_cycles=1):
    """(cycles, broadcast stall cycles, busy cycles per PE), one cycle at a time."""
    cost = _costs(mask, n_pes, min_cycles)
    stream = naive_stream(len(mask[0]), m, activations)
    fifos = [deque() for _ in range(n_pes)]
    left = [0] * n_pes  # cycles left on the entry in progress
    busy = [0] * n_pes
    sent = 0
    stall = 0
    cycle = 0
    while sent < len(stream) or any(fifos) or any(left):
        for p in range(n_pes):  # pop
            if left[p] == 0 and fifos[p]:
                left[p] = cost[p][fifos[p].popleft()]
        if sent < len(stream):  # broadcast
            col = stream[sent]
            takers = [p for p in range(n_pes) if cost[p][col] > 0]
            if all(len(fifos[p]) < fifo_depth for p in takers):
                for p in takers:
                    fifos[p].append(col)
                sent += 1
            else:
                stall += 1
        for p in range(n_pes):  # compute
            if left[p] > 0:
                left[p] -= 1
                busy[p] += 1
        cycle += 1
    return cycle, stall, busy


def naive_event_recurrence(mask, m, n_pes, fifo_depth, activations=None, min_cycles=1):
    """The same numbers from b_e, s_{p,e}, f_{p,e} (the kernel module's docstring)."""
    cost = _costs(mask, n_pes, min_cycles)
    stream = naive_stream(len(mask[0]), m, activations)
    starts = [[] for _ in range(n_pes)]  # start cycle of each accepted entry, in order
    free = [0] * n_pes
    busy = [0] * n_pes
    previous = -1
    for col in stream:
        takers = [p for p in range(n_pes) if cost[p][col] > 0]
        waits = [starts[p][-fifo_depth] for p in takers if len(starts[p]) >= fifo_depth]
        sent = max([previous + 1, *waits])
        for p in takers:
            start = max(sent + 1, free[p])
            starts[p].append(start)
            free[p] = start + cost[p][col]
            busy[p] += cost[p][col]
        previous = sent
    cycles = max([previous + 1, *free])
    return cycles, previous + 1 - len(stream), busy
