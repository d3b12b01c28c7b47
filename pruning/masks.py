"""Masks for many matrices at once (per-matrix or global scope) and mask statistics.

Masks are bool tensors shaped like their ``weight[out, in]``, ``True`` where kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from pruning.patterns import NM, Head, Pattern, RankedPattern, check_sparsity, parse_pattern

__all__ = ["SCOPES", "block_occupancy", "compute_masks", "density"]

Scope = Literal["per-matrix", "global"]
SCOPES: tuple[str, ...] = ("per-matrix", "global")


def compute_masks(
    weights: Mapping[str, Tensor],
    pattern: Pattern | str,
    sparsity: float | None,
    scope: Scope = "per-matrix",
    within: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Keep-masks for every weight in ``weights`` (same keys, same order).

    ``within`` (name -> previous keep-mask, optional per name) makes the result nested in
    the previous masks: groups already pruned go first and stay pruned, which is what a
    gradual schedule needs.

    - ``per-matrix``: each matrix gets ``pattern.compute_mask(weight, sparsity)``, i.e.
      ``floor(sparsity * n_groups)`` of its own groups pruned.
    - ``global``: the group scores of all matrices are ranked together and
      ``floor(sparsity * total_groups)`` groups pruned overall. The score is the raw group
      L2 norm (``|w|`` for unstructured), not normalised per matrix or per group size, so
      matrices with smaller weights (and, for row/column/head, groups with fewer entries)
      lose more. Ties go to the earlier matrix in ``weights`` order, then the lower group
      index. The target counts groups, not weights: with partial edge blocks or groups of
      different sizes the pruned weight fraction can differ from ``sparsity``.
    - N:M patterns act within each group of M, so ``scope`` has no effect on them.
    - ``head:H``: attention weights (Q, K, V, attention output) are pruned head by head, each
      head scored jointly over its Q/K/V rows and output columns (:mod:`pruning.head_groups`;
      per layer, or over all layers when global); other weights keep ``H`` row groups each.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if isinstance(pattern, str):
        pattern = parse_pattern(pattern)
    within = within or {}
    if isinstance(pattern, Head):
        return _head_masks(weights, pattern, sparsity, scope, within)
    if isinstance(pattern, NM) or scope == "per-matrix":
        return {
            name: pattern.compute_mask(w, sparsity, within.get(name)) for name, w in weights.items()
        }
    if not isinstance(pattern, RankedPattern):
        raise TypeError(f"global scope needs a ranked pattern, got {pattern!r}")
    if sparsity is None:
        raise ValueError(f"sparsity is required for pattern {pattern}")
    check_sparsity(sparsity)
    if not weights:
        return {}

    names = list(weights)
    masks = pattern.compute_masks(
        [weights[name] for name in names], sparsity, [within.get(name) for name in names]
    )
    return dict(zip(names, masks, strict=True))


def _head_masks(
    weights: Mapping[str, Tensor],
    pattern: Head,
    sparsity: float | None,
    scope: Scope,
    within: Mapping[str, Tensor],
) -> dict[str, Tensor]:
    """``head:H`` masks: whole heads of the attention weights, row groups of the rest."""
    from pruning.head_groups import attention_groups, joint_head_masks

    if sparsity is None:
        raise ValueError(f"sparsity is required for pattern {pattern}")
    check_sparsity(sparsity)
    grouped = {n for members in attention_groups(list(weights)).values() for n in members.values()}
    joint = joint_head_masks(
        {n: w for n, w in weights.items() if n in grouped}, pattern, sparsity, scope, within
    )
    rest = {n: w for n, w in weights.items() if n not in grouped}
    if scope == "per-matrix":
        others = {n: pattern.compute_mask(w, sparsity, within.get(n)) for n, w in rest.items()}
    else:
        names = list(rest)
        masks = pattern.compute_masks(
            [rest[n] for n in names], sparsity, [within.get(n) for n in names]
        )
        others = dict(zip(names, masks, strict=True))
    return {name: joint[name] if name in joint else others[name] for name in weights}


def _as_bool_tensor(mask: Tensor | np.ndarray) -> Tensor:
    t = torch.as_tensor(mask)
    if t.dim() != 2:
        raise ValueError(f"mask must be 2-D [out, in], got shape {tuple(t.shape)}")
    return t != 0


def density(mask: Tensor | np.ndarray) -> float:
    """Fraction of entries kept (nonzero); 1.0 for an empty mask."""
    t = torch.as_tensor(mask)
    if t.numel() == 0:
        return 1.0
    return (t != 0).sum().item() / t.numel()


def block_occupancy(mask: Tensor | np.ndarray, rows: int, cols: int) -> float:
    """Fraction of ``rows x cols`` blocks (``rows`` along ``out``) holding any nonzero.

    When the block size does not divide the mask, the edge blocks are partial: the mask is
    padded with zeros to a multiple, so a partial block counts as occupied iff one of its
    real entries is. 1.0 for an empty mask.
    """
    for value, name in ((rows, "rows"), (cols, "cols")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"block {name} must be a positive integer, got {value!r}")
    t = _as_bool_tensor(mask)
    out, inp = t.shape
    if t.numel() == 0:
        return 1.0
    grid_r, grid_c = -(-out // rows), -(-inp // cols)
    padded = torch.zeros(grid_r * rows, grid_c * cols, dtype=torch.bool, device=t.device)
    padded[:out, :inp] = t
    occupied = padded.reshape(grid_r, rows, grid_c, cols).any(dim=3).any(dim=1)
    return occupied.sum().item() / occupied.numel()
