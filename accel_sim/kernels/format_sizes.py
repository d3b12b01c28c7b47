"""Single-pass mask statistics behind ``accel_sim.formats`` (sparse weight storage sizes).

Each kernel takes a C-contiguous 2-D bool mask ``[out, in]`` and scalars and returns a count;
argument checking lives in the Python wrapper (``accel_sim.formats.format_size``). NumPy
reductions over short inner axes (``reshape(...).any(axis=...)`` for 1x4 blocks or 2:4 groups)
cost several milliseconds on a 3072x768 mask, these loops well under one.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit


@njit(**JIT_OPTIONS)
def occupied_blocks(mask, block_rows, block_cols):
    """Number of ``block_rows x block_cols`` tiles of ``mask`` holding at least one True.

    Tiles start at (0, 0); partial tiles at the bottom/right edges count like whole ones.
    Each block row is OR-ed down into one row, then OR-ed across each block's columns
    (strided by block, which LLVM vectorises; a branch per element does not).
    """
    n_rows, n_cols = mask.shape
    n_block_cols = (n_cols + block_cols - 1) // block_cols
    rows_or = np.zeros(n_block_cols * block_cols, dtype=np.uint8)
    blocks_or = np.zeros(n_block_cols, dtype=np.uint8)
    count = 0
    for first_row in range(0, n_rows, block_rows):
        rows_or[:] = 0
        for row in range(first_row, min(first_row + block_rows, n_rows)):
            for col in range(n_cols):
                rows_or[col] |= mask[row, col]
        blocks_or[:] = 0
        for k in range(block_cols):
            for bc in range(n_block_cols):
                blocks_or[bc] |= rows_or[bc * block_cols + k]
        for bc in range(n_block_cols):
            count += np.int64(blocks_or[bc])
    return count


@njit(**JIT_OPTIONS)
def _fullest_word(flat, m):
    """Most True values in one aligned group of ``m`` (2, 4 or 8) bytes of the bool array
    ``flat``: each group read as one integer whose bytes a multiply by 0x0101... sums into
    its top byte (no carries: every partial sum is at most 8), which vectorises."""
    best = np.uint64(0)
    if m == 2:
        pairs = flat.view(np.uint16)
        for i in range(pairs.shape[0]):
            best = max(best, np.uint64((pairs[i] * np.uint32(0x0101)) >> 8) & np.uint64(0xFF))
    elif m == 4:
        quads = flat.view(np.uint32)
        for i in range(quads.shape[0]):
            v = (quads[i] * np.uint32(0x01010101)) >> np.uint32(24)
            best = max(best, np.uint64(v) & np.uint64(0xFF))
    else:
        octets = flat.view(np.uint64)
        for i in range(octets.shape[0]):
            best = max(best, (octets[i] * np.uint64(0x0101010101010101)) >> np.uint64(56))
    return np.int64(best)


@njit(**JIT_OPTIONS)
def first_nm_violation(mask, n, m):
    """Flat index ``row * (in // m) + group`` of the first group of ``m`` consecutive
    elements along a row holding more than ``n`` True values, or -1 if there is none.

    ``mask`` must be C-contiguous and ``in`` a multiple of ``m`` (checked by the caller).
    A branch-free pass finds the fullest group (for M of 2, 4 or 8 reading each group as one
    integer); only a violating mask is scanned again.
    """
    n_rows, n_cols = mask.shape
    n_groups = n_rows * (n_cols // m)
    groups = mask.reshape(n_groups, m)
    if m in (2, 4, 8):
        fullest = _fullest_word(mask.reshape(n_rows * n_cols), m)
    else:
        fullest = 0
        for g in range(n_groups):
            kept = 0
            for k in range(m):
                kept += groups[g, k]
            fullest = max(fullest, kept)
    if fullest <= n:
        return -1
    for g in range(n_groups):
        kept = 0
        for k in range(m):
            kept += groups[g, k]
        if kept > n:
            return g
    return -1


@njit(**JIT_OPTIONS)
def rle_entries_along_rows(mask, run_bits):
    """Stored entries of a per-row zero-run encoding with ``run_bits``-bit run counts.

    Every True costs one entry; a run of ``L`` zeros before it costs ``L >> run_bits`` extra
    padding entries (a stored zero after ``2**run_bits - 1`` counted zeros). Runs restart at
    each row; zeros after a row's last True are not stored.
    """
    n_rows, n_cols = mask.shape
    entries = 0
    for row in range(n_rows):
        run = 0
        for col in range(n_cols):
            kept = np.int64(mask[row, col])
            entries += kept * (1 + (run >> run_bits))
            run = (run + 1) * (1 - kept)
    return entries


@njit(**JIT_OPTIONS)
def rle_entries_along_columns(mask, run_bits):
    """Like ``rle_entries_along_rows`` with runs counted down each column.

    The mask is walked row by row (its memory order) with one run counter per column.
    """
    n_rows, n_cols = mask.shape
    run = np.zeros(n_cols, dtype=np.int64)
    entries = 0
    for row in range(n_rows):
        for col in range(n_cols):
            kept = np.int64(mask[row, col])
            entries += kept * (1 + (run[col] >> run_bits))
            run[col] = (run[col] + 1) * (1 - kept)
    return entries
