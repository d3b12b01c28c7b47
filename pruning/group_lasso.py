"""Block-structured pruning by reweighted group lasso (BSP; Li et al., Findings of EMNLP 2020).

Training adds ``sum_i lambda_i sum_g alpha_g ||W_{i,g}||_2`` to the task loss, with
``alpha_g = 1 / (||W_{i,g}||_2 + eps)`` frozen between refreshes, which pushes whole groups
towards zero (reweighted l1 of group norms, after Candes, Wakin & Boyd 2008). Defaults are
the BSP code's: ``eps = 1e-3``, ``lambda = 1e-4`` per matrix (pruning-algorithms.md section
2). The groups are the pattern's groups (blocks, crossbar tiles, rows, columns, heads; single
weights for unstructured and N:M, where it is reweighted l1). Afterwards
:func:`pruning.masks.compute_masks` hard-prunes the lowest-norm groups per matrix and the
model is retrained with fixed masks.

Checkpoints (:meth:`GroupLassoPenalty.state_dict`) hold the alphas as tensors and the refresh
count as JSON, so a resumed run penalises with exactly the alphas of an uninterrupted one; the
hard prune and the retraining are phases of :mod:`pruning.pipeline`, checkpointed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pruning.checkpoint import tensors_like
from pruning.patterns import NM, Pattern, RankedPattern
from pruning.train import TrainHook

__all__ = ["DEFAULT_EPS", "DEFAULT_LAMBDA", "GroupLassoPenalty", "group_norms", "group_shape"]

DEFAULT_EPS = 1e-3
DEFAULT_LAMBDA = 1e-4
# Keeps sqrt differentiable at an all-zero group (its gradient would be 0/0).
_NORM_FLOOR = 1e-12


def group_shape(pattern: Pattern, shape: tuple[int, int]) -> tuple[int, int]:
    """The ``(r, c)`` group the penalty acts on for ``pattern``."""
    if isinstance(pattern, NM):
        return (1, 1)
    if isinstance(pattern, RankedPattern):
        return pattern.group_shape(shape)
    raise TypeError(f"no group structure for pattern {pattern!r}")


def group_norms(weight: Tensor, r: int, c: int) -> Tensor:
    """Differentiable L2 norm of every ``r x c`` group of ``weight`` (zero-padded edges), as a
    ``[ceil(out/r), ceil(in/c)]`` grid."""
    rows, cols = weight.shape
    if (r, c) == (1, 1):
        return weight.abs()
    grid_r, grid_c = -(-rows // r), -(-cols // c)
    padded = nn.functional.pad(weight, (0, grid_c * c - cols, 0, grid_r * r - rows))
    squares = padded.reshape(grid_r, r, grid_c, c).square().sum(dim=(1, 3))
    return (squares + _NORM_FLOOR).sqrt()


class GroupLassoPenalty(TrainHook):
    """The reweighted group-lasso term over ``weights`` (name -> parameter).

    ``reweight_every`` (optimizer steps) refreshes ``alpha``; ``None`` keeps the values taken
    from the weights at the start of training (what BSP's 3-epoch runs do).
    """

    def __init__(
        self,
        weights: Mapping[str, Tensor],
        pattern: Pattern,
        *,
        lam: float = DEFAULT_LAMBDA,
        eps: float = DEFAULT_EPS,
        reweight_every: int | None = None,
    ) -> None:
        if not lam > 0:
            raise ValueError(f"group-lasso lambda must be positive, got {lam!r}")
        if not eps > 0:
            raise ValueError(f"group-lasso eps must be positive, got {eps!r}")
        if reweight_every is not None and reweight_every < 1:
            raise ValueError(f"reweight_every must be a positive integer, got {reweight_every!r}")
        self.weights = dict(weights)
        self.pattern = pattern
        self.lam = lam
        self.eps = eps
        self.reweight_every = reweight_every
        self.shapes = {
            name: group_shape(pattern, tuple(w.shape)) for name, w in self.weights.items()
        }
        self.alpha: dict[str, Tensor] = {}
        self.refreshes = 0
        self._last_penalty = 0.0

    def norms(self) -> dict[str, Tensor]:
        """Current group norms (detached), name -> grid."""
        with torch.no_grad():
            return {
                name: group_norms(w.detach(), *self.shapes[name])
                for name, w in self.weights.items()
            }

    def reweight(self) -> None:
        self.alpha = {name: 1.0 / (norm + self.eps) for name, norm in self.norms().items()}
        self.refreshes += 1

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.reweight()

    def loss_term(self, model: nn.Module, step: int) -> Tensor:
        penalty = sum(
            (self.alpha[name] * group_norms(w, *self.shapes[name])).sum()
            for name, w in self.weights.items()
        )
        term = self.lam * penalty
        self._last_penalty = float(term.detach())
        return term

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        if self.reweight_every is not None and step % self.reweight_every == 0:
            self.reweight()

    def postfix(self) -> dict[str, str]:
        return {"lasso": f"{self._last_penalty:.3g}"}

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors = {f"alpha.{name}": alpha for name, alpha in self.alpha.items()}
        return tensors, {"refreshes": self.refreshes, "last_penalty": self._last_penalty}

    def load_state_dict(self, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        self.alpha = tensors_like("alpha", tensors, self.alpha)
        self.refreshes = int(state["refreshes"])
        self._last_penalty = float(state["last_penalty"])

    def describe(self) -> dict[str, Any]:
        return {
            "lambda": self.lam,
            "eps": self.eps,
            "reweight_every_steps": self.reweight_every,
            "alpha_refreshes": self.refreshes,
            "group_shape": "per-matrix pattern groups",
        }
