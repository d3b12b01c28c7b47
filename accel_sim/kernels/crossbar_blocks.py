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
def _scan_words(mask, rows, cols, input_live):
    """One pass over ``mask`` read as words of 8 bools (``k`` and ``rows`` multiples of 8):
    ORs each row's words into its column block's live inputs (``input_live``, bool
    ``[col_blocks, k]``, updated) and returns ``kept[j, rb]``, whether row j keeps a weight
    among inputs ``rb * rows ..`` (a loop reduction over bools does not vectorise; over words
    it does not need to)."""
    n, k = mask.shape
    row_blocks = (k + rows - 1) // rows
    words = mask.reshape(n * k).view(np.uint64)
    row_words, block_words = k // 8, rows // 8
    live_words = input_live.reshape(input_live.shape[0] * k).view(np.uint64)
    kept = np.zeros((n, row_blocks), dtype=np.bool_)
    for j in range(n):
        row = words[j * row_words : (j + 1) * row_words]
        live = live_words[(j // cols) * row_words : (j // cols + 1) * row_words]
        for w in range(row_words):
            live[w] |= row[w]
        for rb in range(row_blocks):
            bits = np.uint64(0)
            for w in range(rb * block_words, min(rb * block_words + block_words, row_words)):
                bits |= row[w]
            kept[j, rb] = bits != 0
    return kept


@njit(**JIT_OPTIONS)
def _slices_kept(mask, rows):
    """``kept`` of ``_scan_words`` for any ``k`` and ``rows``, one bool at a time."""
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
    input_live = np.zeros((col_blocks, k), dtype=np.bool_)  # input i live in column block cb
    words = k % 8 == 0 and rows % 8 == 0
    kept = _scan_words(mask, rows, cols, input_live) if words else _slices_kept(mask, rows)
    adc_load = np.zeros((row_blocks, col_blocks, adcs), dtype=np.int64)
    active_outputs = 0
    for j in range(n):
        cb = j // cols
        adc = (j - cb * cols) // group
        if not words:
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
