"""Keep-masks bound to a model's parameters: fold them in and mask gradients.

Both are needed during training (pruning-algorithms.md 7.1.6): ``grad <- grad * M`` stops
the optimizer from moving pruned weights through the gradient, and ``W <- W * M`` after
every optimizer step undoes what momentum and weight decay still do to them. Masks are plain
bool tensors, not torch.nn.utils.prune re-parametrisations, so the model saves as an
ordinary checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from pruning.train import TrainHook

__all__ = ["FixedMasks", "MaskSet"]


class MaskSet:
    """Bool keep-masks keyed by parameter name, bound to ``model``'s parameters."""

    def __init__(self, model: nn.Module, masks: Mapping[str, Tensor] | None = None) -> None:
        self._params = dict(model.named_parameters())
        self.masks: dict[str, Tensor] = {}
        if masks:
            self.update(masks)

    def update(self, masks: Mapping[str, Tensor]) -> None:
        """Replace (or add) the masks for the given names, checking names and shapes."""
        for name, mask in masks.items():
            if name not in self._params:
                raise KeyError(f"model has no parameter {name!r} to mask")
            weight = self._params[name]
            if tuple(mask.shape) != tuple(weight.shape):
                raise ValueError(
                    f"mask for {name!r} has shape {tuple(mask.shape)}, "
                    f"weight has {tuple(weight.shape)}"
                )
            self.masks[name] = mask.to(device=weight.device, dtype=torch.bool)

    def apply(self) -> None:
        """``W <- W * M`` for every masked parameter."""
        with torch.no_grad():
            for name, mask in self.masks.items():
                self._params[name].mul_(mask)

    def mask_grads(self) -> None:
        """``grad <- grad * M`` for every masked parameter that has a gradient."""
        for name, mask in self.masks.items():
            grad = self._params[name].grad
            if grad is not None:
                grad.mul_(mask)

    def density(self) -> float:
        """Kept fraction over all masked weights (1.0 with no masks)."""
        total = sum(m.numel() for m in self.masks.values())
        if total == 0:
            return 1.0
        return sum(int(m.sum()) for m in self.masks.values()) / total

    def as_dict(self) -> dict[str, Tensor]:
        return {name: mask.detach().cpu().clone() for name, mask in self.masks.items()}


class FixedMasks(TrainHook):
    """Masked (re)training: the masks never change; gradients and weights stay masked."""

    def __init__(self, masks: MaskSet) -> None:
        self.masks = masks

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.masks.apply()

    def before_optimizer_step(self, model: nn.Module, step: int) -> None:
        self.masks.mask_grads()

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        self.masks.apply()

    def postfix(self) -> dict[str, str]:
        return {"sparsity": f"{1 - self.masks.density():.3f}"}
