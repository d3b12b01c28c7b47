"""Bit rows of a keep-mask and the bit tricks the kernels read them with.

``pack_rows`` lays a bool mask ``[rows, cols]`` out as 64-column words, word-major
(``[ceil(cols / 64), rows]``): the rows of one word lie side by side, so a kernel that walks
64 columns at a time reads memory in order. numpy's ``packbits`` along the rows does the
packing (a 3,072 x 768 mask in about 0.1 ms; the word-major copy is of words, 64x fewer than
the mask's cells).
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

__all__ = ["lowest_bit", "pack_rows", "popcount"]

_ONE = np.uint64(1)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def pack_rows(mask) -> np.ndarray:
    """``[ceil(cols / 64), rows]`` uint64: bit ``j % 64`` of ``[j // 64, i]`` is
    ``mask[i, j]``."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape
    if cols and cols % 64 == 0:  # whole words: packbits' bytes are the words, no padding
        packed_words = np.packbits(mask, axis=1, bitorder="little").view("<u8")
        return np.ascontiguousarray(packed_words.astype(np.uint64, copy=False).T)
    words = max(1, (cols + 63) // 64)
    packed = np.zeros((rows, 8 * words), dtype=np.uint8)
    packed[:, : (cols + 7) // 8] = np.packbits(mask, axis=1, bitorder="little")
    return np.ascontiguousarray(packed.view("<u8").astype(np.uint64, copy=False).T)


@njit(**JIT_OPTIONS)
def popcount(x):
    """Set bits of a uint64 (SWAR; LLVM turns it into the popcnt instruction)."""
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(**JIT_OPTIONS)
def lowest_bit(x):
    """Index of the lowest set bit of a uint64 (64 for 0)."""
    return popcount((x & (~x + _ONE)) - _ONE)


@njit(**JIT_OPTIONS)
def highest_bit(x):
    """Index of the highest set bit of a uint64 (the bits below it set, counted; -1 for
    0)."""
    for shift in (1, 2, 4, 8, 16, 32):
        x |= x >> np.uint64(shift)
    return popcount(x) - 1
