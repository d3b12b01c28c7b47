"""Slow, obvious twin of ``accel_sim.kernels.crossbar_tiles``: the same rules written per
crossbar and per ADC with Python lists (no IMA classes, no reuse of state arrays)."""

from __future__ import annotations

import math


def naive_crossbar_schedule(adc_load, ima_of, sa_rate, arrivals, replicas, slices, read_ticks,
                            in_ticks, net_ticks, out_ticks, ir_vectors):  # fmt: skip
    """Finish tick of every vector."""
    n_xbars = len(adc_load)
    imas = sorted(set(int(m) for m in ima_of))
    conversions = {m: sum(sum(adc_load[x]) for x in range(n_xbars) if ima_of[x] == m) for m in imas}
    sa_ticks = {m: 1 if sa_rate == 0 else math.ceil(conversions[m] / sa_rate) for m in imas}
    done = [0] * len(arrivals)
    for rep in range(replicas):
        mine = list(range(rep, len(arrivals), replicas))
        # per crossbar: latch tick and conversion finish of its latest read
        latched = [0] * n_xbars
        converted = [0] * n_xbars
        finish = [[] for _ in range(n_xbars)]  # conversion finish of every read
        released = []  # tick the last read of each vector ends on every crossbar
        free = 0
        for j, v in enumerate(mine):
            room = released[j - ir_vectors] if j >= ir_vectors else 0
            free = max(free, arrivals[v], room) + in_ticks
            last_end = 0
            for x in range(n_xbars):
                for _ in range(slices):
                    end = max(latched[x], free) + read_ticks
                    latched[x] = max(end, converted[x])
                    converted[x] = latched[x] + max(adc_load[x])
                    finish[x].append(converted[x])
                last_end = max(last_end, end)
            released.append(last_end)
        summed_at = {}
        for m in imas:
            add, out = 0, []
            for i in range(len(mine) * slices):
                ready = max(finish[x][i] for x in range(n_xbars) if ima_of[x] == m)
                add = max(add, ready) + sa_ticks[m]
                out.append(add)
            summed_at[m] = out
        network = write = 0
        for j, v in enumerate(mine):
            last = max(summed_at[m][j * slices + slices - 1] for m in imas)
            network = max(network, last) + net_ticks
            write = max(write, network) + out_ticks
            done[v] = write
    return done
