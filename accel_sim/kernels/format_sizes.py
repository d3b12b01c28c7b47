"""Single-pass mask statistics behind ``accel_sim.formats`` (sparse weight storage sizes).

Each kernel takes a C-contiguous 2-D bool mask ``[out, in]`` (or, for
``rle_entries_from_column_bits``, the mask's 64-row column words) and scalars and returns a
count; argument checking lives in the Python wrapper (``accel_sim.formats.format_size``). NumPy
reductions over short inner axes (``reshape(...).any(axis=...)`` for 1x4 blocks or 2:4 groups)
cost several milliseconds on a 3072x768 mask, these loops well under one.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.bitops import highest_bit, lowest_bit, popcount


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


_ONE = np.uint64(1)


@njit(**JIT_OPTIONS)
def rle_entries_from_column_bits(col, run_bits):
    """``rle_entries_along_columns`` of a mask given as its column bits (``[ceil(out / 64),
    in]`` uint64, bit ``i % 64`` of word ``[i // 64, j]`` the mask's ``[i, j]``:
    ``sparse_pe.column_words``), 64 rows of a column a step instead of one.

    A kept weight after ``L`` zeros costs ``1 + (L >> run_bits)`` entries. Per word: the
    lowest kept bit's run is the zeros carried from the words above plus those below it in
    the word; every other kept bit's run lies inside the word, and ``L >> run_bits`` is the
    number of ``k >= 1`` with no kept bit among the ``k x 2**run_bits`` positions below it,
    a shift-OR and a popcount for each ``k``. The zeros above the word's highest kept bit
    (all 64 when it keeps none) carry to the next word; bits past the mask's last row are
    zeros after every kept weight, never stored. From ``run_bits = 4`` on at most three
    ``k`` can count (62 zeros at most lie between two bits of a word), and the loop runs
    branch-free, which vectorises: ten times faster than the cell scan on BERT-base's
    masks; narrower runs take ``_rle_narrow_runs``."""
    if run_bits < 4:
        return _rle_narrow_runs(col, run_bits)
    n_words, n_in = col.shape
    span = 1 << min(run_bits, 6)  # a padding entry's zeros, as far as a word can hold them
    full = ~np.uint64(0)
    # the doublings that spread each kept bit over the span above it, and the shifts of the
    # second and third k, each dropped where it would reach past the word
    spread = np.zeros(6, dtype=np.uint64)
    for i in range(6):
        spread[i] = full if (1 << i) < span else np.uint64(0)
    s1, s2, s3, s4, s5, s6 = spread[0], spread[1], spread[2], spread[3], spread[4], spread[5]
    second = full if span < 64 else np.uint64(0)
    third = full if 2 * span < 64 else np.uint64(0)
    shift2 = np.uint64(span & 63)
    shift3 = np.uint64((2 * span) & 63)
    run = np.zeros(n_in, dtype=np.int64)  # zeros since each column's last kept weight
    entries = 0
    for w in range(n_words):
        words = col[w]
        for j in range(n_in):
            x = words[j]
            first = (run[j] + lowest_bit(x)) >> run_bits  # lowest_bit(0) is 64: unused
            near = x  # bit p: a kept bit among the span's positions up to p
            near |= (near << np.uint64(1)) & s1
            near |= (near << np.uint64(2)) & s2
            near |= (near << np.uint64(4)) & s3
            near |= (near << np.uint64(8)) & s4
            near |= (near << np.uint64(16)) & s5
            near |= (near << np.uint64(32)) & s6
            below = near << _ONE  # ... among the span below p
            rest = x & (x - _ONE)  # all but the lowest kept bit
            b1 = below
            b2 = b1 | ((below << shift2) & second)
            b3 = b2 | ((below << shift3) & third)
            padding = popcount(rest & ~b1) + popcount(rest & ~b2) + popcount(rest & ~b3)
            entries += popcount(x) + (first + padding) * (x != 0)
            # the zeros above the highest kept bit carry (highest_bit(0) is -1: all 64)
            run[j] = 63 - highest_bit(x) + run[j] * (x == 0)
    return entries


@njit(**JIT_OPTIONS)
def _rle_narrow_runs(col, run_bits):
    """``rle_entries_from_column_bits`` for runs of fewer than four bits (up to 62 ``k`` a
    word): the same counts, a loop over ``k`` per word."""
    n_words, n_in = col.shape
    span = 1 << run_bits
    run = np.zeros(n_in, dtype=np.int64)
    entries = 0
    for w in range(n_words):
        words = col[w]
        for j in range(n_in):
            x = words[j]
            if not x:
                run[j] += 64
                continue
            entries += popcount(x) + ((run[j] + lowest_bit(x)) >> run_bits)
            rest = x & (x - _ONE)
            near = x
            reach = 1
            while reach < span:
                near |= near << np.uint64(reach)
                reach *= 2
            below = near << _ONE
            blocked = below
            gap = span
            while gap <= 62:
                entries += popcount(rest & ~blocked)
                blocked |= below << np.uint64(gap)
                gap += span
            run[j] = 63 - highest_bit(x)
    return entries
