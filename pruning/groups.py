"""``r x c`` groups of a weight matrix, in numpy: their L2 norms, and a group grid back to
an element mask.

Masks must stay bit-identical from release to release, and which of two near-equal groups
is pruned depends on the last bit of their norms, so :func:`group_norms` gives exactly the
bits of torch's float32 ``square().sum(dim=(1, 3)).sqrt()`` rather than summing in an order
of its own. That reduction (one kernel call per group, slow for small groups) adds, for each
group, the sums of its ``r`` row segments of ``c`` entries in row order. Here the segment
sums of a band of rows come from one call of torch's row kernel (``sum(dim=1)`` over
``[-1, c]``), or, for segments shorter than a SIMD vector (2 to 7 float32 entries, where
torch runs a short scalar loop), from replaying that loop's order as whole-array adds; the
``r`` segments of each group are then added in order. Each way is checked once per process
against torch's own reduction on a random matrix, and not used where they differ (another
torch, another CPU); ``tests/test_mask_selection.py`` checks all shapes on random weights.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["any_in_groups", "expand_groups", "grid_shape", "group_norms"]

# Order in which torch's scalar row-sum kernel (SumKernel.cpp ``row_sum``, four interleaved
# partial sums) adds a segment of c < 8 entries: entries 4.. go into the first partial sum,
# then the other three partials are added to it in turn.
_SEGMENT_ORDER = {c: (0, *range(4, c), 1, 2, 3) if c >= 4 else tuple(range(c)) for c in range(8)}
_SIMD_BYTES = 32  # the narrowest torch CPU vector (AVX2); shorter segments are scalar
BAND = 1 << 17  # entries squared and summed per step: cache-resident
# From this segment length on (two SIMD vectors), and for one-column groups (summed across
# groups at once), torch's own group reduction is faster than summing segments here.
FAST_TORCH_COLS = 16
# Repeating each byte of a bool grid c times is one multiply of the grid widened to c bytes.
_BYTE_REPEAT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def grid_shape(shape: tuple[int, int], rows: int, cols: int) -> tuple[int, int]:
    """Groups along ``out`` and ``in``; edge groups may be partial."""
    return -(-shape[0] // rows), -(-shape[1] // cols)


def _padded(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``matrix`` zero-padded to whole groups, C-contiguous (a copy only when needed)."""
    grid_r, grid_c = grid_shape(matrix.shape, rows, cols)
    height, width = grid_r * rows, grid_c * cols
    if (height, width) == matrix.shape:
        return np.ascontiguousarray(matrix)
    padded = np.zeros((height, width), dtype=matrix.dtype)
    padded[: matrix.shape[0], : matrix.shape[1]] = matrix
    return padded


def _replayed_segment_sums(squares: np.ndarray, cols: int) -> np.ndarray:
    """Sums of consecutive ``cols``-entry segments of each row, in torch's scalar order."""
    segments = squares.reshape(-1, cols)
    order = _SEGMENT_ORDER[cols]
    total = segments[:, order[0]] + segments[:, order[1]]
    for j in order[2:]:
        total += segments[:, j]
    return total


def _segment_sums(squares: np.ndarray, cols: int, replay: bool) -> np.ndarray:
    """Sums of consecutive ``cols``-entry segments of each row of ``squares``, flat."""
    if replay:
        return _replayed_segment_sums(squares, cols)
    return torch.from_numpy(squares).view(-1, cols).sum(dim=1).numpy()


def _banded_sums(padded: np.ndarray, rows: int, cols: int, replay: bool) -> np.ndarray:
    """Group sums of squares, a cache-sized band of group rows at a time: each group's row
    segments summed as torch sums them, then added in row order."""
    height, width = padded.shape
    grid_r, grid_c = height // rows, width // cols
    sums = np.empty((grid_r, grid_c), dtype=padded.dtype)
    band = max(1, BAND // (rows * width))
    for g in range(0, grid_r, band):
        block = padded[g * rows : (g + band) * rows]
        segments = _segment_sums(np.square(block), cols, replay).reshape(-1, rows, grid_c)
        total = sums[g : g + band]
        np.copyto(total, segments[:, 0])
        for i in range(1, rows):
            total += segments[:, i]
    return sums


def _torch_sums(padded: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Group sums of squares by torch's own reduction (the definition)."""
    grid_r, grid_c = padded.shape[0] // rows, padded.shape[1] // cols
    tiles = torch.from_numpy(padded).reshape(grid_r, rows, grid_c, cols)
    return tiles.square().sum(dim=(1, 3)).numpy()


@functools.cache
def _banding(rows: int, cols: int, dtype: np.dtype) -> str | None:
    """How :func:`_banded_sums` reproduces torch here for ``rows x cols`` groups ("replay",
    "torch" segment sums) or None: checked once on a random matrix with several groups."""
    if not 1 < cols < FAST_TORCH_COLS:
        return None  # torch's own reduction is fast there
    shape = (rows * 5, cols * 40 + cols // 2)  # a partial edge group too
    weight = np.random.default_rng(rows * 131 + cols).standard_normal(shape).astype(dtype)
    padded = _padded(weight, rows, cols)
    expected = _torch_sums(padded, rows, cols)
    scalar = cols < min(len(_SEGMENT_ORDER), _SIMD_BYTES // dtype.itemsize)
    for way in ("replay", "torch") if scalar else ("torch",):
        if np.array_equal(_banded_sums(padded, rows, cols, way == "replay"), expected):
            return way
    return None


def group_norms(weight: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """L2 norm of every ``rows x cols`` group of ``weight`` (float32 or float64), as a grid;
    ``|w|`` for 1 x 1 groups. Edge groups are scored by their real entries."""
    if (rows, cols) == (1, 1):
        return np.abs(weight)
    padded = _padded(weight, rows, cols)
    # one group across: torch merges the row and column loops into one longer segment
    way = _banding(rows, cols, padded.dtype) if padded.shape[1] > cols else None
    if way is None:
        sums = _torch_sums(padded, rows, cols)
    else:
        sums = _banded_sums(padded, rows, cols, way == "replay")
    return torch.sqrt(torch.from_numpy(sums)).numpy()


def expand_groups(keep: np.ndarray, rows: int, cols: int, shape: tuple[int, int]) -> np.ndarray:
    """Element mask of ``shape`` from a group keep-grid (``rows x cols`` groups, cropped at
    the edges), C-contiguous."""
    if (rows, cols) == (1, 1):
        return np.ascontiguousarray(keep.reshape(shape))
    grid_r = keep.shape[0]
    if cols in _BYTE_REPEAT:
        wide = _BYTE_REPEAT[cols]
        spread = keep.astype(wide) * wide(int("01" * cols, 16))
        per_row = spread.view(np.bool_).reshape(grid_r, -1)
    else:
        per_row = np.repeat(keep, cols, axis=1) if cols > 1 else keep
    full = np.repeat(per_row, rows, axis=0) if rows > 1 else per_row
    return np.ascontiguousarray(full[: shape[0], : shape[1]])


def any_in_groups(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Group grid: does the group hold any ``True`` entry of ``mask``?"""
    padded = _padded(np.asarray(mask, dtype=bool), rows, cols)
    grid_r, grid_c = padded.shape[0] // rows, padded.shape[1] // cols
    return padded.reshape(grid_r, rows, grid_c, cols).any(axis=(1, 3))
