"""Timing of one weight GEMM on its ReRAM crossbars: two engines, same rules.

Time is counted in *ticks* of the ADC sample period (one conversion per ADC per tick), so
ISAAC's 1.28 GS/s ADC and 100 ns read are both whole numbers (128 ticks per read) whatever the
chip clock; ``accel_sim.datapaths.crossbar`` converts ticks to chip cycles at the op boundary.

Inputs (one replica of the op's crossbars; every replica is an identical copy):

* ``adc_load[X, A]``: conversions ADC ``a`` of crossbar ``x`` makes per read (the active
  columns of its column group); ``ima_of[X]``: the IMA of crossbar ``x``.
* ``sa_rate``: conversions the shift-and-add units of one IMA consume per tick (0: no limit,
  one tick per read).
* ``arrivals[V]``: the tick vector ``v`` is available to the op (0 when run layer by layer);
  vector ``v`` goes to replica ``v % replicas``.
* ``slices`` bit-serial reads per vector; ``read_ticks`` per read; ``in_ticks`` to read a
  vector from the tile buffers; ``net_ticks`` to move one vector's inputs and partial sums
  over the network; ``out_ticks`` to write one output vector to the tile buffers.
* ``ir_vectors``: vectors the IMA input registers hold (at least 1).

Rules (a job that starts at tick ``t`` and lasts ``d`` occupies ticks ``t .. t + d - 1`` and
its result is usable from tick ``t + d``). Per replica:

1. *Buffer read* into the input registers: vectors in order, one at a time, and only once
   the registers have room: ``B_v = max(B_{v-1}, arrival_v, R_{v - ir_vectors}) + in``, where
   ``R_u`` is the tick the last bit-serial read of vector ``u`` ends on every crossbar (its
   register entry is free from then). A slow ADC queue thus stalls the buffer reads.
2. *Crossbar read*: read ``i`` (vector ``i // slices``) starts when the crossbar is free and
   its vector has been read: ``S_i = max(L_{i-1}, B_v)``, ends ``E_i = S_i + read``.
3. *Sample-and-hold*: the bitline values are latched once every ADC of the crossbar has
   converted the previous read: ``L_i = max(E_i, F_{i-1})``; the crossbar is free from
   ``L_i``. Each ADC converts its queue, one conversion per tick: ``F_i = L_i + max_a
   load[a]`` (the busiest ADC of the crossbar).
4. *Shift-and-add*, per IMA and read: once every crossbar of the IMA has converted read ``i``,
   ``SA_i = max(SA_{i-1}, max_x F_{x,i}) + ceil(conversions_i / sa_rate)``.
5. *Network* and *buffer write*, per vector, once the last slice of the vector has been
   shifted and added in every IMA: ``N_v = max(N_{v-1}, max SA) + net``, ``W_v = max(W_{v-1},
   N_v) + out``.

``crossbar_cycle_stepping`` executes these rules tick by tick, O(ticks x replicas x X x A):
every buffer, crossbar, ADC queue, S+A unit, network port and write port has a countdown, and
the registers count the vectors loaded and freed.
``crossbar_event_schedule`` is the event recurrence above, O(V x slices x K), over the ``K``
distinct IMA classes (busiest ADC of the IMA, S+A ticks per read): the busiest crossbar of an
IMA sets its ``F`` (and the busiest crossbar of the op its ``R``) because the recurrence is
monotone in the load. Both return ``W_v`` per vector (the op ends at ``max_v W_v``).

``book_shared_unit`` books jobs on a unit that every pipeline stage shares (the digital unit
in pipelined execution): a calendar of busy intervals, each job in the earliest gap that fits.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit


@njit(**JIT_OPTIONS)
def crossbar_event_schedule(
    ima_busiest, ima_sa_ticks, arrivals, replicas, slices, read_ticks, in_ticks, net_ticks,
    out_ticks, ir_vectors,
):  # fmt: skip
    """Finish tick of every vector (the rules of the module docstring as a recurrence)."""
    n_vectors = arrivals.shape[0]
    n_classes = ima_busiest.shape[0]
    done = np.zeros(n_vectors, dtype=np.int64)
    released = np.zeros(n_vectors, dtype=np.int64)  # R per local vector of the replica
    latched = np.zeros(n_classes, dtype=np.int64)
    converted = np.zeros(n_classes, dtype=np.int64)
    summed = np.zeros(n_classes, dtype=np.int64)
    for rep in range(replicas):
        latched[:] = 0
        converted[:] = 0
        summed[:] = 0
        buffer_free = 0
        network_free = 0
        write_free = 0
        for j, v in enumerate(range(rep, n_vectors, replicas)):  # j: local vector index
            room = released[j - ir_vectors] if j >= ir_vectors else 0
            buffer_free = max(buffer_free, arrivals[v], room) + in_ticks
            last = 0
            freed = 0
            for k in range(n_classes):
                busiest = ima_busiest[k]
                sa = ima_sa_ticks[k]
                lat = latched[k]
                conv = converted[k]
                add = summed[k]
                end = 0
                for _ in range(slices):
                    end = max(lat, buffer_free) + read_ticks
                    lat = max(end, conv)
                    conv = lat + busiest
                    add = max(add, conv) + sa
                latched[k] = lat
                converted[k] = conv
                summed[k] = add
                last = max(last, add)
                freed = max(freed, end)
            released[j] = freed
            network_free = max(network_free, last) + net_ticks
            write_free = max(write_free, network_free) + out_ticks
            done[v] = write_free
    return done


@njit(**JIT_OPTIONS)
def crossbar_cycle_stepping(
    adc_load, ima_of, sa_rate, arrivals, replicas, slices, read_ticks, in_ticks, net_ticks,
    out_ticks, ir_vectors,
):  # fmt: skip
    """Finish tick of every vector, advancing every resource one tick at a time."""
    n_xbars, n_adcs = adc_load.shape
    n_vectors = arrivals.shape[0]
    n_imas = 0
    for x in range(n_xbars):
        n_imas = max(n_imas, ima_of[x] + 1)
    ima_conversions = np.zeros(n_imas, dtype=np.int64)
    for x in range(n_xbars):
        for a in range(n_adcs):
            ima_conversions[ima_of[x]] += adc_load[x, a]
    done = np.full(n_vectors, -1, dtype=np.int64)
    # per replica: local vector counts and state
    local = np.zeros(replicas, dtype=np.int64)
    for v in range(n_vectors):
        local[v % replicas] += 1
    buf_left = np.zeros(replicas, dtype=np.int64)
    buf_next = np.zeros(replicas, dtype=np.int64)  # local vectors started by the buffer
    buf_busy = np.zeros(replicas, dtype=np.bool_)
    in_reg = np.zeros(replicas, dtype=np.int64)  # local vectors in the input registers
    rd_left = np.zeros((replicas, n_xbars), dtype=np.int64)
    rd_state = np.zeros((replicas, n_xbars), dtype=np.int64)  # 0 free, 1 reading, 2 held
    rd_next = np.zeros((replicas, n_xbars), dtype=np.int64)  # reads started
    rd_ended = np.zeros((replicas, n_xbars), dtype=np.int64)  # reads whose drive has ended
    adc_left = np.zeros((replicas, n_xbars, n_adcs), dtype=np.int64)
    converting = np.zeros((replicas, n_xbars), dtype=np.bool_)
    conv_count = np.zeros((replicas, n_xbars), dtype=np.int64)  # reads fully converted
    sa_left = np.zeros((replicas, n_imas), dtype=np.int64)  # conversions left on the job
    sa_busy = np.zeros((replicas, n_imas), dtype=np.bool_)
    sa_next = np.zeros((replicas, n_imas), dtype=np.int64)  # reads started by the S+A
    sa_count = np.zeros((replicas, n_imas), dtype=np.int64)  # reads shifted and added
    net_left = np.zeros(replicas, dtype=np.int64)
    net_busy = np.zeros(replicas, dtype=np.bool_)
    net_next = np.zeros(replicas, dtype=np.int64)
    net_count = np.zeros(replicas, dtype=np.int64)
    wr_left = np.zeros(replicas, dtype=np.int64)
    wr_busy = np.zeros(replicas, dtype=np.bool_)
    wr_next = np.zeros(replicas, dtype=np.int64)
    finished = 0
    t = 0
    while finished < n_vectors:
        for r in range(replicas):
            n_local = local[r]
            reads = n_local * slices
            # -- completions of jobs whose countdown reached 0 --
            if buf_busy[r] and buf_left[r] == 0:
                buf_busy[r] = False
                in_reg[r] += 1
            for x in range(n_xbars):
                if converting[r, x]:
                    idle = True
                    for a in range(n_adcs):
                        if adc_left[r, x, a] > 0:
                            idle = False
                    if idle:
                        converting[r, x] = False
                        conv_count[r, x] += 1
                if rd_state[r, x] == 1 and rd_left[r, x] == 0:
                    rd_state[r, x] = 2
                    rd_ended[r, x] += 1
            for m in range(n_imas):
                if sa_busy[r, m] and sa_left[r, m] == 0:
                    sa_busy[r, m] = False
                    sa_count[r, m] += 1
            if net_busy[r] and net_left[r] == 0:
                net_busy[r] = False
                net_count[r] += 1
            if wr_busy[r] and wr_left[r] == 0:
                wr_busy[r] = False
                done[r + replicas * (wr_next[r] - 1)] = t
                finished += 1
            # -- starts, in pipeline order --
            freed = n_local
            for x in range(n_xbars):
                freed = min(freed, rd_ended[r, x] // slices)  # register entries released
            waiting = not buf_busy[r] and buf_next[r] < n_local
            waiting = waiting and buf_next[r] - freed < ir_vectors
            if waiting and arrivals[r + replicas * buf_next[r]] <= t:
                buf_busy[r] = True
                buf_left[r] = in_ticks
                buf_next[r] += 1
            for x in range(n_xbars):
                if rd_state[r, x] == 2 and not converting[r, x]:  # latch into S+H
                    rd_state[r, x] = 0
                    converting[r, x] = True
                    for a in range(n_adcs):
                        adc_left[r, x, a] = adc_load[x, a]
                free = rd_state[r, x] == 0 and rd_next[r, x] < reads
                if free and rd_next[r, x] // slices < in_reg[r]:
                    rd_state[r, x] = 1
                    rd_left[r, x] = read_ticks
                    rd_next[r, x] += 1
            for m in range(n_imas):
                if not sa_busy[r, m] and sa_next[r, m] < reads:
                    ready = True
                    for x in range(n_xbars):
                        if ima_of[x] == m and conv_count[r, x] <= sa_next[r, m]:
                            ready = False
                    if ready:
                        sa_busy[r, m] = True
                        sa_left[r, m] = ima_conversions[m]
                        sa_next[r, m] += 1
            if not net_busy[r] and net_next[r] < n_local:
                ready = True
                for m in range(n_imas):
                    if sa_count[r, m] < (net_next[r] + 1) * slices:
                        ready = False
                if ready:
                    net_busy[r] = True
                    net_left[r] = net_ticks
                    net_next[r] += 1
            if not wr_busy[r] and wr_next[r] < net_count[r]:
                wr_busy[r] = True
                wr_left[r] = out_ticks
                wr_next[r] += 1
            # -- one tick of work --
            if buf_busy[r]:
                buf_left[r] -= 1
            for x in range(n_xbars):
                if rd_state[r, x] == 1:
                    rd_left[r, x] -= 1
                if converting[r, x]:
                    for a in range(n_adcs):
                        if adc_left[r, x, a] > 0:
                            adc_left[r, x, a] -= 1
            for m in range(n_imas):
                if sa_busy[r, m]:
                    if sa_rate == 0:
                        sa_left[r, m] = 0
                    else:
                        sa_left[r, m] = max(0, sa_left[r, m] - sa_rate)
            if net_busy[r]:
                net_left[r] -= 1
            if wr_busy[r]:
                wr_left[r] -= 1
        t += 1
    return done


@njit(**JIT_OPTIONS)
def book_shared_unit(starts, ends, count, ready, durations):
    """Book jobs, in the given order, on one unit shared by every pipeline stage.

    ``starts[:count]`` / ``ends[:count]`` are the unit's busy intervals (sorted, disjoint,
    touching ones merged; the arrays need room for ``count + len(ready)`` intervals). Job
    ``j`` may start at ``max(ready_j, finish_{j-1})`` (a stage serves its tokens in order) and
    takes the earliest gap of the unit from then that is ``durations_j`` long; a job of
    duration 0 finishes when it may start. Returns the jobs' finish ticks and the new
    ``count``; ``starts`` and ``ends`` are updated in place."""
    n_jobs = ready.shape[0]
    finish = np.zeros(n_jobs, dtype=np.int64)
    previous = 0
    for j in range(n_jobs):
        length = durations[j]
        t = max(ready[j], previous)
        if length > 0:
            lo, hi = 0, count
            while lo < hi:  # first interval ending after t
                mid = (lo + hi) // 2
                if ends[mid] <= t:
                    lo = mid + 1
                else:
                    hi = mid
            i = lo
            while i < count and starts[i] < t + length:
                t = max(t, ends[i])
                i += 1
            left = i > 0 and ends[i - 1] == t
            right = i < count and starts[i] == t + length
            if left and right:
                ends[i - 1] = ends[i]
                for q in range(i, count - 1):
                    starts[q] = starts[q + 1]
                    ends[q] = ends[q + 1]
                count -= 1
            elif left:
                ends[i - 1] = t + length
            elif right:
                starts[i] = t
            else:
                for q in range(count, i, -1):
                    starts[q] = starts[q - 1]
                    ends[q] = ends[q - 1]
                starts[i] = t
                ends[i] = t + length
                count += 1
            t += length
        finish[j] = t
        previous = t
    return finish, count
