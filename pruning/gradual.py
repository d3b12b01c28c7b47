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
from pruning.schedule import SparsitySchedule
from pruning.train import TrainHook

__all__ = [
    "CyclicMagnitude",
    "GradualMagnitude",
    "cycle_targets",
    "masks_from_zeros",
    "nm_at_sparsity",
]


def nm_at_sparsity(pattern: NM, sparsity: float) -> NM:
    """The N':M pattern on the way to ``pattern`` at ``sparsity``: the fewest kept
    weights per group that do not exceed the schedule's sparsity, never below N."""
    kept = pattern.m - math.floor(sparsity * pattern.m + 1e-9)
    return NM(max(pattern.n, kept), pattern.m)


class GradualMagnitude(TrainHook):
    """Prune ``weights`` (name -> parameter of the trained model) to ``schedule``'s final
    sparsity with ``pattern``. Without a schedule, :meth:`SparsitySchedule.fit` builds one from
    the run's length (``ramp_fraction``, ``update_every``)."""

    def __init__(
        self,
        weights: Mapping[str, Tensor],
        pattern: Pattern,
        final_sparsity: float,
        *,
        schedule: SparsitySchedule | None = None,
        ramp_fraction: float = 0.7,
        update_every: int | None = None,
        scope: Scope = "per-matrix",
        regrow: bool = False,
        shape: str = "cubic",
    ) -> None:
        self.weights = dict(weights)
        self.shape = shape
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
            self.schedule = SparsitySchedule.fit(
                total_steps,
                self.final_sparsity,
                ramp_fraction=self.ramp_fraction,
                update_every=self.update_every,
                shape=self.shape,
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

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert self.masks is not None
        tensors = {f"mask.{name}": mask for name, mask in self.masks.masks.items()}
        tensors.update({f"dense.{name}": dense for name, dense in self._dense.items()})
        return tensors, {"history": self.history}

    def load_state_dict(self, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        assert self.masks is not None
        self.masks.masks.clear()
        self.masks.update({k[5:]: v for k, v in tensors.items() if k.startswith("mask.")})
        for name, dense in tensors.items():
            if name.startswith("dense."):
                self._dense[name[6:]].copy_(dense)
        self.history = [dict(entry) for entry in state["history"]]

    def describe(self) -> dict[str, Any]:
        """Schedule and mask-update history for the artifact manifest."""
        return {
            "schedule": None if self.schedule is None else self.schedule.to_dict(),
            "scope": self.scope,
            "nested": not self.regrow,
            "updates": self.history,
        }


# ----------------------------------------------------------------------------- cyclic


def masks_from_zeros(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keep-masks rebuilt from the weights themselves: ``True`` where nonzero (SparseBERT's
    ``restore_sparsity``), so pruning can resume from an already sparse model."""
    return {name: weight.detach() != 0 for name, weight in weights.items()}


def cycle_targets(final_sparsity: float, cycles: int) -> tuple[float, ...]:
    """Linearly spaced sparsity targets of ``cycles`` ramps ending at ``final_sparsity``."""
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
        raise ValueError(f"cycles must be a positive integer, got {cycles!r}")
    return tuple(final_sparsity * (k + 1) / cycles for k in range(cycles))


class CyclicMagnitude(GradualMagnitude):
    """``K`` prune-then-distill cycles (pruning-algorithms.md 7.1.3, "cyclic"): the run is
    split into ``K`` equal segments; each starts by restoring the masks from the zeros of
    the weights, ramps on a cubic schedule from the previous target to its own (the first
    ``ramp_fraction`` of the segment, mask updates every ``update_every`` steps) and then
    trains with those masks fixed. ``targets`` default to :func:`cycle_targets`."""

    def __init__(
        self,
        weights: Mapping[str, Tensor],
        pattern: Pattern,
        final_sparsity: float,
        *,
        cycles: int = 2,
        targets: tuple[float, ...] | None = None,
        ramp_fraction: float = 0.7,
        update_every: int | None = None,
        scope: Scope = "per-matrix",
        shape: str = "cubic",
    ) -> None:
        super().__init__(
            weights,
            pattern,
            final_sparsity,
            ramp_fraction=ramp_fraction,
            update_every=update_every,
            scope=scope,
            shape=shape,
        )
        self.targets = tuple(targets) if targets else cycle_targets(final_sparsity, cycles)
        if len(self.targets) != cycles:
            raise ValueError(f"{cycles} cycles need {cycles} targets, got {self.targets!r}")
        if list(self.targets) != sorted(self.targets) or self.targets[-1] != final_sparsity:
            raise ValueError(
                f"cycle targets must rise to the final sparsity {final_sparsity}, "
                f"got {self.targets!r}"
            )
        self.cycles = cycles
        self.schedules: list[SparsitySchedule] = []
        self.starts: list[int] = []

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        if total_steps < self.cycles:
            raise ValueError(f"{self.cycles} cycles need at least {self.cycles} steps")
        self.starts = [k * total_steps // self.cycles for k in range(self.cycles)]
        ends = [*self.starts[1:], total_steps]
        self.schedules = []
        for k, (start, end) in enumerate(zip(self.starts, ends, strict=True)):
            ramp = max(1, math.floor(self.ramp_fraction * (end - start)))
            every = min(self.update_every or max(1, ramp // 10), ramp)
            previous = 0.0 if k == 0 else self.targets[k - 1]
            self.schedules.append(
                SparsitySchedule(
                    self.targets[k], previous, start, every, max(1, ramp // every), self.shape
                )
            )
        self.schedule = self.schedules[-1]
        self.masks = MaskSet(model)
        self._after(0)

    def _cycle(self, step: int) -> int:
        return max(k for k, start in enumerate(self.starts) if start <= step)

    def _after(self, step: int) -> None:
        assert self.masks is not None
        cycle = self._cycle(step)
        if step == self.starts[cycle]:
            self.masks.masks.clear()
            self.masks.update(masks_from_zeros(self.weights))
            self.history.append(
                {"step": step, "cycle": cycle, "restored_sparsity": 1 - self.masks.density()}
            )
        self.schedule = self.schedules[cycle]
        if self.schedule.is_update_step(step):
            self._update_masks(step)

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        assert self.masks is not None
        self.masks.apply()
        self._after(step)
        self.masks.apply()

    def postfix(self) -> dict[str, str]:
        if self.masks is None or not self.history:
            return super().postfix()
        cycle = max(h.get("cycle", 0) for h in self.history)
        return {**super().postfix(), "cycle": f"{cycle + 1}/{self.cycles}"}

    def describe(self) -> dict[str, Any]:
        return {
            "schedule": {
                "kind": "cyclic",
                "cycles": self.cycles,
                "targets": list(self.targets),
                "cycle_starts": self.starts,
                "ramps": [s.to_dict() for s in self.schedules],
            },
            "scope": self.scope,
            "nested": True,
            "updates": self.history,
        }
