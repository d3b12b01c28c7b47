"""Slow, obvious twins of ``accel_sim.kernels.flexible``: the packing written as lists of
(multiplier, output, input) entries, and a fold run cycle by cycle.

``naive_pack`` places the kept weights group by group (block of outputs, then strip of
inputs), output by output, on consecutive multipliers; ``naive_fold_stats`` reads every
per-fold count off those lists. ``naive_fold_stepping`` steps one fold through its
pipeline: the distribution network first loads the stationary words, ``load_bandwidth`` a
cycle, then delivers each token row's distinct inputs, at most ``bandwidth`` a cycle, rows
back to back; a multiplier
multiplies the cycle after its input arrives; a segment's partial sum is complete once all
its products of that row are in, and leaves the FAN ``levels`` cycles later.
"""

from __future__ import annotations

import math


def naive_pack(mask, width, block, multipliers, dpe):
    """(folds, groups): each fold a list of (multiplier, output, input); its group index."""
    n, k = len(mask), len(mask[0])
    n_strips = math.ceil(k / width)
    folds, groups = [], []
    for b in range(math.ceil(n / block)):
        for s in range(n_strips):
            group = b * n_strips + s
            current = None
            for j in range(b * block, min(n, b * block + block)):
                for i in range(s * width, min(k, s * width + width)):
                    if not mask[j][i]:
                        continue
                    if current is None or len(current) == multipliers:
                        current = []
                        folds.append(current)
                        groups.append(group)
                    current.append((len(current), j, i))
    return folds, groups


def naive_fold_stats(folds, dpe):
    """Per fold: (nnz, distinct inputs, segments, first segments, last segments)."""
    segments = []  # (fold, output), in order
    for f, fold in enumerate(folds):
        previous = None
        for slot, j, _ in fold:
            key = (j, slot // dpe)
            if key != previous:
                segments.append((f, j))
                previous = key
    first = [0] * len(folds)
    last = [0] * len(folds)
    outputs = {j for _, j in segments}
    for j in outputs:
        mine = [f for f, jj in segments if jj == j]
        first[mine[0]] += 1
        last[mine[-1]] += 1
    out = []
    for f, fold in enumerate(folds):
        count = sum(1 for ff, _ in segments if ff == f)
        out.append((len(fold), len({i for _, _, i in fold}), count, first[f], last[f]))
    return out


def naive_group_inputs(mask, width, block):
    """Per group: (inputs of its strip with a kept weight in its block, of those the ones no
    earlier group had)."""
    n, k = len(mask), len(mask[0])
    seen = set()
    out = []
    for b in range(math.ceil(n / block)):
        for s in range(math.ceil(k / width)):
            live = {
                i
                for j in range(b * block, min(n, b * block + block))
                for i in range(s * width, min(k, s * width + width))
                if mask[j][i]
            }
            out.append((len(live), len(live - seen)))
            seen |= live
    return out


def naive_fold_stepping(fold, m, bandwidth, dpe, levels, load_bandwidth=None):
    """(cycles, MACs, partial sums) of one fold, stepped cycle by cycle (stationary words
    load ``load_bandwidth`` a cycle, ``bandwidth`` when None)."""
    load_bandwidth = bandwidth if load_bandwidth is None else load_bandwidth
    inputs = sorted({i for _, _, i in fold})
    segment_of = {}
    sizes = {}
    previous, seg = None, -1
    for slot, j, _ in fold:
        if (j, slot // dpe) != previous:
            seg += 1
            previous = (j, slot // dpe)
        segment_of[slot] = seg
        sizes[seg] = sizes.get(seg, 0) + 1
    holders = {i: [slot for slot, _, ii in fold if ii == i] for i in inputs}

    to_load = len(fold)
    row, sent = 0, 0  # token row being streamed, its inputs already sent
    multiplying = []  # slots whose operand arrived last cycle, with their row
    arrived = {}  # (segment, row) -> products in
    leaving = []  # cycles at whose end a partial sum leaves the FAN
    macs = psums = 0
    cycle = 0
    while to_load or row < m or multiplying or any(c >= cycle for c in leaving):
        # multiply what arrived in the previous cycle; complete segments enter the FAN
        for slot, r in multiplying:
            macs += 1
            key = (segment_of[slot], r)
            arrived[key] = arrived.get(key, 0) + 1
            if arrived[key] == sizes[segment_of[slot]]:
                leaving.append(cycle + levels)
                psums += 1
        multiplying = []
        # the distribution network: stationary words first, then token rows
        if to_load:
            to_load -= min(load_bandwidth, to_load)
        elif row < m:
            batch = inputs[sent : sent + bandwidth]
            for i in batch:
                multiplying.extend((slot, row) for slot in holders[i])
            sent += len(batch)
            if sent == len(inputs):
                row, sent = row + 1, 0
        cycle += 1
    return max(leaving) + 1, macs, psums
