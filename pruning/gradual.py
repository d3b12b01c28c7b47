"""Gradual magnitude pruning (GMP) on the cubic schedule, as a training hook.

After every optimizer step the weights are re-masked (``W <- W * M``) and gradients are
masked before it; at each schedule update the masks are recomputed from the current
magnitudes at the schedule's sparsity. By default the new mask is nested in the old one
(pruned groups go first and never come back), as in SparseBERT, whose top-k runs on already
masked weights. With ``regrow=True`` a dense copy of the weights keeps training through the
masked forward pass (straight-through), so a pruned weight whose dense value grows back can
re-enter the mask at the next update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pruning.masking import MaskSet
from pruning.masks import Scope, compute_masks
from pruning.patterns import NM, Pattern
from pruning.schedule import CubicSchedule
from pruning.train import TrainHook

__all__ = ["GradualMagnitude", "nm_at_sparsity"]


def nm_at_sparsity(pattern: NM, sparsity: float) -> NM:
    """The N':M pattern on the way to ``pattern`` at ``sparsity``: the fewest kept
    weights per group that do not exceed the schedule's sparsity, never below N."""
    kept = pattern.m - math.floor(sparsity * pattern.m + 1e-9)
    return NM(max(pattern.n, kept), pattern.m)


class GradualMagnitude(TrainHook):
    """Prune ``weights`` (name -> parameter of the trained model) to ``schedule``'s final
    sparsity with ``pattern``. Without a schedule, :meth:`CubicSchedule.fit` builds one from
    the run's length (``ramp_fraction``, ``update_every``)."""

    def __init__(
        self,
        weights: Mapping[str, Tensor],
        pattern: Pattern,
        final_sparsity: float,
        *,
        schedule: CubicSchedule | None = None,
        ramp_fraction: float = 0.7,
        update_every: int | None = None,
        scope: Scope = "per-matrix",
        regrow: bool = False,
    ) -> None:
        self.weights = dict(weights)
        self.pattern = pattern
        self.final_sparsity = final_sparsity
        self.schedule = schedule
        self.ramp_fraction = ramp_fraction
        self.update_every = update_every
        self.scope = scope
        self.regrow = regrow
        self.masks: MaskSet | None = None
        self.history: list[dict[str, Any]] = []
        self._dense: dict[str, Tensor] = {}

    # -------------------------------------------------------------- schedule and masks

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        if self.schedule is None:
            self.schedule = CubicSchedule.fit(
                total_steps,
                self.final_sparsity,
                ramp_fraction=self.ramp_fraction,
                update_every=self.update_every,
            )
        else:
            self.schedule.check_fits(total_steps)
        self.masks = MaskSet(model)
        if self.regrow:
            self._dense = {name: w.detach().clone() for name, w in self.weights.items()}
        if self.schedule.is_update_step(0):
            self._update_masks(0)

    def _pattern_at(self, sparsity: float) -> tuple[Pattern, float | None]:
        if isinstance(self.pattern, NM):
            return nm_at_sparsity(self.pattern, sparsity), None
        return self.pattern, sparsity

    def _update_masks(self, step: int) -> None:
        assert self.masks is not None and self.schedule is not None
        target = self.schedule.sparsity_at(step)
        pattern, sparsity = self._pattern_at(target)
        scores = self._dense if self.regrow else self.weights
        within = None if self.regrow else (self.masks.masks or None)
        self.masks.update(compute_masks(scores, pattern, sparsity, self.scope, within))
        self.masks.apply()
        self.history.append(
            {"step": step, "target_sparsity": target, "sparsity": 1 - self.masks.density()}
        )

    # -------------------------------------------------------------- training hooks

    def before_optimizer_step(self, model: nn.Module, step: int) -> None:
        assert self.masks is not None
        if not self.regrow:
            self.masks.mask_grads()
            return
        # Straight-through: the optimizer updates the dense copy with the masked model's grad.
        with torch.no_grad():
            for name, weight in self.weights.items():
                weight.copy_(self._dense[name])

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        assert self.masks is not None and self.schedule is not None
        if self.regrow:
            with torch.no_grad():
                for name, weight in self.weights.items():
                    self._dense[name].copy_(weight)
        if self.schedule.is_update_step(step):
            self._update_masks(step)
        self.masks.apply()

    def on_train_end(self, model: nn.Module) -> None:
        assert self.masks is not None
        self.masks.apply()
        self._dense.clear()

    def postfix(self) -> dict[str, str]:
        if self.masks is None:
            return {}
        return {"sparsity": f"{1 - self.masks.density():.3f}"}

    def describe(self) -> dict[str, Any]:
        """Schedule and mask-update history for the artifact manifest."""
        return {
            "schedule": None if self.schedule is None else self.schedule.to_dict(),
            "scope": self.scope,
            "nested": not self.regrow,
            "updates": self.history,
        }
