"""Event-driven replay of a fold schedule (SimPy): the cross-check of the stall model.

The fold kernel charges each fold a window of max(compute, DRAM traffic moved meanwhile),
with fold boundaries as barriers. Here the same schedule runs as processes sharing one DRAM
channel granted first come, first served: a loader prefetches fold f once a buffer slot is
free, the array computes fold f once its inputs are in (and any partial-sum spill traffic
of the fold has passed through DRAM), and a writer drains each fold's outputs. With double
buffering there are two input and two output slots, without it one of each, which makes
loads, compute and write-backs strictly serial.
"""

from __future__ import annotations

import numpy as np
import simpy


def event_driven_cycles(
    prefetch: np.ndarray,
    inflight: np.ndarray,
    writeback: np.ndarray,
    busy: np.ndarray,
    double_buffered: bool,
    dram_bytes_per_cycle: float,
) -> float:
    """Cycles from the first load to the last write-back of the schedule, event by event.

    ``prefetch`` has one entry per fold plus a trailing zero, as the kernel returns it.
    """
    env = simpy.Environment()
    dram = simpy.Resource(env, capacity=1)
    n_folds = len(busy)
    slots = 2 if double_buffered else 1
    loaded = [env.event() for _ in range(n_folds)]
    computed = [env.event() for _ in range(n_folds)]
    written = [env.event() for _ in range(n_folds)]

    def transfer(nbytes: float):
        if nbytes <= 0:
            return
        with dram.request() as grant:
            yield grant
            yield env.timeout(nbytes / dram_bytes_per_cycle)

    def loader():
        for f in range(n_folds):
            if f >= slots:
                # the slot is free once the fold that used it has computed (and, without
                # double buffering, once its outputs have left too)
                yield computed[f - slots] if double_buffered else written[f - slots]
            yield from transfer(prefetch[f])
            loaded[f].succeed()

    def writer(f: int):
        yield from transfer(writeback[f])
        written[f].succeed()

    def array():
        for f in range(n_folds):
            yield loaded[f]
            if f >= slots:
                yield written[f - slots]  # an output slot to write into
            started = env.now
            spill = env.process(transfer_process(inflight[f]))
            yield spill
            remaining = busy[f] - (env.now - started)
            if remaining > 0:
                yield env.timeout(remaining)
            computed[f].succeed()
            if not double_buffered:
                yield env.process(writer(f))
            else:
                env.process(writer(f))

    def transfer_process(nbytes: float):
        yield from transfer(nbytes)

    env.process(loader())
    env.process(array())
    env.run()
    return float(env.now)
