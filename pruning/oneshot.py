"""One-shot pruning: compute masks from the current weights and fold them in."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from pruning.masks import Scope, compute_masks
from pruning.patterns import Pattern
from pruning.targets import prunable_weights

__all__ = ["apply_masks", "magnitude_prune"]


def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Fold ``masks`` into ``model``'s parameters in place: ``W <- W * M``."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            if name not in params:
                raise KeyError(f"model has no parameter {name!r} to mask")
            weight = params[name]
            if tuple(mask.shape) != tuple(weight.shape):
                raise ValueError(
                    f"mask for {name!r} has shape {tuple(mask.shape)}, "
                    f"weight has {tuple(weight.shape)}"
                )
            weight.mul_(mask.to(device=weight.device, dtype=weight.dtype))


def magnitude_prune(
    model: nn.Module,
    pattern: Pattern | str,
    sparsity: float | None,
    scope: Scope = "per-matrix",
    include: Iterable[str] = ("encoder",),
) -> dict[str, Tensor]:
    """Magnitude-prune ``model`` in place and return the bool keep-masks (name -> mask).

    Masks are computed by :func:`pruning.masks.compute_masks` over
    :func:`pruning.targets.prunable_weights` and multiplied into the weights.
    """
    targets = prunable_weights(model, include)
    masks = compute_masks(targets, pattern, sparsity, scope)
    apply_masks(model, masks)
    return masks
