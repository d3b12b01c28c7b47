"""Slow, obvious twin of ``accel_sim.kernels.crossbar_blocks``: the whole-array numpy version
``block_stats`` used before the kernel (pad, transpose, reshape into blocks, reduce)."""

from __future__ import annotations

import numpy as np


def naive_block_counts(keep: np.ndarray, rows: int, cols: int, adcs: int):
    """(active_rows, adc_load, active_inputs, active_outputs) of a bool mask ``[n, k]``."""
    n, k = keep.shape
    row_blocks, col_blocks = -(-k // rows), -(-n // cols)
    padded = np.zeros((row_blocks * rows, col_blocks * cols), dtype=bool)
    padded[:k, :n] = keep.T
    blocks = padded.reshape(row_blocks, rows, col_blocks, cols)
    row_live = blocks.any(axis=3)  # [rb, rows, cb]
    col_live = blocks.any(axis=1)  # [rb, cb, cols]
    groups = col_live.reshape(row_blocks, col_blocks, adcs, cols // adcs).sum(axis=3)
    return (
        row_live.sum(axis=1).astype(np.int64),
        groups.astype(np.int64),
        int(keep.any(axis=0).sum()),
        int(keep.any(axis=1).sum()),
    )
