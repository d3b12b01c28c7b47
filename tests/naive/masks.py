"""Slow, obvious twins of the mask selection in ``pruning.lowest``, ``pruning.top_n`` and
``pruning.groups``: Python sorts with the tie rule spelled out as a sort key, and the torch
expression that defined group norms before they were computed in numpy."""

from __future__ import annotations

import math

import numpy as np
import torch


def _ascending(value: float, index: int) -> tuple:
    """Sort key of a stable ascending sort with NaN last."""
    return (math.isnan(value), 0.0 if math.isnan(value) else value, index)


def naive_keep_above_lowest(scores: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Prune the first ``k`` of all scores in (value, position) order, NaN last."""
    flat = [float(v) for s in scores for v in np.ravel(s)]
    order = sorted(range(len(flat)), key=lambda i: _ascending(flat[i], i))
    keep = [True] * len(flat)
    for i in order[:k]:
        keep[i] = False
    out, start = [], 0
    for s in scores:
        out.append(np.array(keep[start : start + s.size], dtype=bool).reshape(s.shape))
        start += s.size
    return out


def naive_keep_top_n(scores: np.ndarray, n: int, m: int) -> np.ndarray:
    """Per group of ``m`` consecutive scores keep the ``n`` first in descending order, ties
    to the lower index, NaN first."""
    flat = [float(v) for v in np.ravel(scores)]
    keep = [False] * len(flat)
    for start in range(0, len(flat), m):
        group = range(start, start + m)

        def descending(i: int) -> tuple:
            value = flat[i]
            return (not math.isnan(value), 0.0 if math.isnan(value) else -value, i)

        for i in sorted(group, key=descending)[:n]:
            keep[i] = True
    return np.array(keep, dtype=bool).reshape(np.shape(scores))


def torch_group_norms(weight: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Group L2 norms as ``RankedPattern.group_scores`` computed them in torch."""
    w = torch.from_numpy(weight)
    if (rows, cols) == (1, 1):
        return w.abs().numpy()
    out, inp = w.shape
    grid_r, grid_c = -(-out // rows), -(-inp // cols)
    padded = torch.nn.functional.pad(w, (0, grid_c * cols - inp, 0, grid_r * rows - out))
    return padded.reshape(grid_r, rows, grid_c, cols).square().sum(dim=(1, 3)).sqrt().numpy()
