"""Keep the ``n`` largest of every ``m`` consecutive scores, ties to the lower index.

The rule is that of a stable descending sort of each group (``NaN`` first). Sorting millions
of four-entry rows costs seconds, so each cache-sized chunk is answered by whole-array
passes:

- **rank** (any ``n``): every score counts how many of its group beat it: for each offset
  ``d < m``, one comparison of the array with itself shifted by ``d`` settles all pairs
  ``d`` apart at once (the later entry must be strictly larger to win; pairs across groups
  are masked out). Exact for any scores; ``m - 1`` comparisons per score.
- **maximum** (``n == 1``, and ``n == m - 1`` as "prune the minimum"): the group maximum
  comes from ``log2(m)`` maxima of the array with itself shifted, and a score is kept when it
  reaches it. When exactly one score per group does, no tie can matter; a chunk where some
  group has a tie (or a NaN) is answered by the rank method.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

__all__ = ["keep_top_n"]

Key = Callable[[np.ndarray], np.ndarray] | None

CHUNK = 1 << 17  # scores per chunk (rounded down to whole groups): cache-resident
MAXIMUM_FROM_M = 8  # below, spreading the maxima back over their groups costs more


def _group_max(values: np.ndarray, m: int) -> np.ndarray:
    """Maximum of every group of ``m`` consecutive entries (NaN if the group has one)."""
    window, width = values, 1  # window[p] = max(values[p : p + width])
    while 2 * width <= m:
        window = np.maximum(window[:-width], window[width:])
        width *= 2
    first = window[: values.size - m + 1 : m]
    if width == m:
        return first
    return np.maximum(first, window[m - width :: m])  # two windows that cover the group


def _by_maximum(part: np.ndarray, n: int, m: int, keep: np.ndarray) -> bool:
    """Fill ``keep`` for one chunk when ``n`` is 1 or ``m - 1``; False (``keep`` undefined)
    when a tie (or NaN) at some group's extreme needs the rank method."""
    top = n == 1
    values = part if top else np.negative(part)
    maxima = _group_max(values, m)
    if np.isnan(maxima).any():
        return False
    np.greater_equal(values, np.repeat(maxima, m), out=keep)
    if np.count_nonzero(keep) != maxima.size:  # each group has one at least
        return False
    if not top:
        np.logical_not(keep, out=keep)
    return True


@functools.lru_cache(maxsize=8)
def _same_group(m: int, size: int) -> tuple[np.ndarray, ...]:
    """``[d - 1][i]``: entries ``i`` and ``i + d`` of a chunk are in the same group."""
    position = np.tile(np.arange(m), size // m)
    masks = tuple(position[: size - d] < m - d for d in range(1, m))
    for mask in masks:
        mask.flags.writeable = False
    return masks


def _by_rank(part: np.ndarray, n: int, m: int, keep: np.ndarray) -> None:
    """Fill ``keep`` for one chunk from each score's rank in its group (exact, NaN too)."""
    size = part.size
    same_group = _same_group(m, size)
    nan = np.isnan(part) if part.dtype.kind == "f" and np.isnan(part.max()) else None
    # rank = how many of its group beat a score. Of two equal scores the earlier wins, so
    # start from "all earlier ones beat me" and, for each pair, move one count if the later
    # score is larger.
    rank = np.tile(np.arange(m, dtype=np.uint8 if m <= 255 else np.int64), size // m)
    for d in range(1, m):
        later_wins = np.greater(part[d:], part[: size - d])
        if nan is not None:  # NaN beats every number, as in a descending torch.sort
            later_wins |= nan[d:] & ~nan[: size - d]
        later_wins &= same_group[d - 1]
        wins = later_wins.view(np.uint8)
        rank[: size - d] += wins
        rank[d:] -= wins
    np.less(rank, n, out=keep)


def keep_top_n(scores: np.ndarray, n: int, m: int, key: Key = None) -> np.ndarray:
    """Keep-mask of ``scores`` (any shape whose size ``m`` divides; groups are ``m``
    consecutive entries in C order) keeping the ``n`` highest of each group. With ``key``
    the scores are ``key(scores)`` (elementwise, e.g. ``np.abs``), taken chunk by chunk."""
    flat = np.ravel(scores)
    if flat.size % m:
        raise ValueError(f"{flat.size} scores do not split into groups of {m}")
    keep = np.empty(flat.size, dtype=bool)
    if n >= m:
        keep[:] = True
        return keep.reshape(np.shape(scores))
    chunk = m * max(1, CHUNK // m)
    by_maximum = 1 in (n, m - n) and m >= MAXIMUM_FROM_M
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk]
        if key is not None:
            part = key(part)
        out = keep[start : start + part.size]
        if not (by_maximum and _by_maximum(part, n, m, out)):
            _by_rank(part, n, m, out)
    return keep.reshape(np.shape(scores))
