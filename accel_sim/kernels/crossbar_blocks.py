"""Crossbar block statistics of a weight mask in one pass (``accel_sim.datapaths.crossbar.
mapping.block_stats`` is the wrapper; its numpy original is the twin in ``tests/naive``).

The weight ``[out=n, in=k]`` is stored transposed on ``rows x cols`` crossbars: block
``(rb, cb)`` holds inputs ``rb * rows ..`` and outputs ``cb * cols ..``, and its columns go in
``adcs`` contiguous groups of ``cols // adcs``, one per ADC.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

__all__ = ["block_counts"]


@njit(**JIT_OPTIONS)
def _slices_kept_words(mask, rows):
    """``kept[j, rb]``: row j of ``mask`` keeps a weight among inputs ``rb * rows ..``; for
    ``k`` and ``rows`` multiples of 8, OR-ing 8 bools at a time as one word (a loop
    reduction over bools does not vectorise)."""
    n, k = mask.shape
    row_blocks = (k + rows - 1) // rows
    words = mask.reshape(n * k).view(np.uint64)
    row_words, block_words = k // 8, rows // 8
    kept = np.zeros((n, row_blocks), dtype=np.bool_)
    for j in range(n):
        for rb in range(row_blocks):
            bits = np.uint64(0)
            first = j * row_words + rb * block_words
            for w in range(first, min(first + block_words, (j + 1) * row_words)):
                bits |= words[w]
            kept[j, rb] = bits != 0
    return kept


@njit(**JIT_OPTIONS)
def _slices_kept(mask, rows):
    """``_slices_kept_words`` for any ``k`` and ``rows``, one bool at a time."""
    n, k = mask.shape
    row_blocks = (k + rows - 1) // rows
    kept = np.zeros((n, row_blocks), dtype=np.bool_)
    for j in range(n):
        for rb in range(row_blocks):
            for i in range(rb * rows, min(k, rb * rows + rows)):
                if mask[j, i]:
                    kept[j, rb] = True
                    break
    return kept


@njit(**JIT_OPTIONS)
def block_counts(mask, rows, cols, adcs):
    """(active_rows[rb, cb], adc_load[rb, cb, adcs], active_inputs, active_outputs) of a
    C-contiguous bool ``mask [n, k]``: inputs of each block with a kept weight, its outputs
    with a kept weight behind each ADC, and the weight's inputs and outputs with one. ``adcs``
    must divide ``cols`` (checked by the caller)."""
    n, k = mask.shape
    row_blocks = (k + rows - 1) // rows
    col_blocks = (n + cols - 1) // cols
    group = cols // adcs
    if k % 8 == 0 and rows % 8 == 0:
        kept = _slices_kept_words(mask, rows)
    else:
        kept = _slices_kept(mask, rows)
    input_live = np.zeros((col_blocks, k), dtype=np.bool_)  # input i live in column block cb
    adc_load = np.zeros((row_blocks, col_blocks, adcs), dtype=np.int64)
    active_outputs = 0
    for j in range(n):
        cb = j // cols
        adc = (j - cb * cols) // group
        row = mask[j]
        live = input_live[cb]
        for i in range(k):
            live[i] |= row[i]  # branch-free, so it vectorises
        output_live = False
        for rb in range(row_blocks):
            if kept[j, rb]:
                adc_load[rb, cb, adc] += 1
                output_live = True
        if output_live:
            active_outputs += 1
    active_rows = np.zeros((row_blocks, col_blocks), dtype=np.int64)
    for cb in range(col_blocks):
        for i in range(k):
            if input_live[cb, i]:
                active_rows[i // rows, cb] += 1
    active_inputs = 0
    for i in range(k):
        for cb in range(col_blocks):
            if input_live[cb, i]:
                active_inputs += 1
                break
    return active_rows, adc_load, active_inputs, active_outputs
