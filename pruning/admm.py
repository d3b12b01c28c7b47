"""ADMM pruning under crossbar constraints (after Yuan et al., ISLPED 2019; Zhang et al. 2018).

Problem: ``min f(W)`` subject to ``W_i in S_i``, where ``S_i`` allows at most ``k_i`` nonzero
groups in matrix ``i`` - crossbar tiles, or rows / columns within tiles. ADMM splits it with
``Z_i = W_i`` and a scaled dual ``U_i``:

- W-step: optimizer steps on ``f(W) + sum_i rho/2 ||W_i - Z_i + U_i||^2`` (the proximal term
  is this hook's :meth:`loss_term`);
- Z-step, every ``update_every`` steps: ``Z_i = Proj_S(W_i + U_i)`` - keep the ``k_i``
  highest-norm groups, zero the rest;
- U-step: ``U_i <- U_i + W_i - Z_i``; then ``rho <- min(rho * rho_growth, rho_max)``.

The reference (pruning-algorithms.md section 4, marked unverified there) starts ``rho`` near
1e-3; in our short CPU runs that start, with Z/U updated every few steps, let the scaled dual
``U`` outrun ``W`` and the primal gap grew, so the defaults here are ours: ``rho`` 1e-2,
doubling per update up to 1, and a W-step of at least 8 optimizer steps between Z/U updates
(``max(8, total_steps // 6)``), with which the gap falls (tests/test_pruning_methods.py). At
the end :func:`project` gives the hard masks, and the model is
retrained with them fixed.

Granularity, in ``weight[out, in]`` orientation for a tile of ``rows x cols``
(``crossbar:RxC``): ``tile`` groups are whole tiles; ``tile-row`` groups are ``1 x cols``
segments (one output's weights inside a tile: a bitline when outputs map to crossbar columns);
``tile-column`` groups are ``rows x 1`` segments (one input inside a tile: a wordline).
Other patterns project with their own groups.

With a :class:`~pruning.quantize.Quantization` the constraint set is also "weights on the
crossbar's conductance levels" (``Q_i`` of pruning-algorithms.md section 4): the Z-step
projects onto the sparsity set and then onto the levels, ``Z_i = Q(Proj_S(W_i + U_i))``
(quantization maps zero to zero, so ``Z_i`` keeps the sparsity); the level scales are fixed
from the weights when ADMM starts (:func:`pruning.quantize.level_scales`).

Checkpoints (:meth:`AdmmPruning.state_dict`) hold ``Z`` and ``U`` per weight as tensors and
``rho``, the W-step length and the update history as JSON, so a resumed run continues the
same W/Z/U iterates; the final projection and the retraining are phases of
:mod:`pruning.pipeline`, checkpointed there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pruning.checkpoint import CheckpointError, tensors_like
from pruning.masks import compute_masks
from pruning.patterns import Block, Pattern
from pruning.quantize import Quantization
from pruning.train import TrainHook

__all__ = [
    "GRANULARITIES",
    "AdmmPruning",
    "constraint_pattern",
    "nonzero_groups",
    "project",
]

Granularity = Literal["tile", "tile-row", "tile-column"]
GRANULARITIES: tuple[str, ...] = ("tile", "tile-row", "tile-column")
DEFAULT_RHO = 1e-2
DEFAULT_RHO_GROWTH = 2.0
MIN_W_STEPS = 8
DEFAULT_RHO_MAX = 1.0


def constraint_pattern(pattern: Pattern, granularity: Granularity = "tile") -> Pattern:
    """The pattern whose groups the constraint counts."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if granularity == "tile":
        return pattern
    if not isinstance(pattern, Block):
        raise ValueError(
            f"granularity {granularity!r} needs a block or crossbar pattern, got {pattern}"
        )
    if granularity == "tile-row":
        return Block(1, pattern.cols)
    return Block(pattern.rows, 1)


def project(
    weights: Mapping[str, Tensor], pattern: Pattern, sparsity: float | None
) -> dict[str, Tensor]:
    """Keep-masks of the Euclidean projection onto ``S``: per matrix, the highest-norm groups
    (``floor(sparsity * n_groups)`` pruned). The projection itself is ``W * mask``."""
    return compute_masks(weights, pattern, sparsity, "per-matrix")


def nonzero_groups(weight: Tensor, rows: int, cols: int) -> int:
    """How many ``rows x cols`` groups of ``weight`` (zero-padded edges) hold a nonzero."""
    w = weight.detach() != 0
    out, inp = w.shape
    grid_r, grid_c = -(-out // rows), -(-inp // cols)
    padded = torch.zeros(grid_r * rows, grid_c * cols, dtype=torch.bool, device=w.device)
    padded[:out, :inp] = w
    return int(padded.reshape(grid_r, rows, grid_c, cols).any(dim=3).any(dim=1).sum())


class AdmmPruning(TrainHook):
    """The ADMM W/Z/U loop over ``weights`` (name -> parameter) as a training hook."""

    def __init__(
        self,
        weights: Mapping[str, Tensor],
        pattern: Pattern,
        sparsity: float | None,
        *,
        rho: float = DEFAULT_RHO,
        rho_growth: float = DEFAULT_RHO_GROWTH,
        rho_max: float = DEFAULT_RHO_MAX,
        update_every: int | None = None,
        quantization: Quantization | None = None,
    ) -> None:
        if not rho > 0:
            raise ValueError(f"ADMM rho must be positive, got {rho!r}")
        if not rho_growth >= 1:
            raise ValueError(f"ADMM rho_growth must be >= 1, got {rho_growth!r}")
        if update_every is not None and update_every < 1:
            raise ValueError(f"ADMM update_every must be a positive integer, got {update_every!r}")
        self.weights = dict(weights)
        self.pattern = pattern
        self.sparsity = sparsity
        self.rho = rho
        self.rho_growth = rho_growth
        self.rho_max = max(rho_max, rho)
        self.update_every = update_every
        self.quantization = quantization
        self.z: dict[str, Tensor] = {}
        self.u: dict[str, Tensor] = {}
        self.history: list[dict[str, float]] = []
        self._last_gap = float("nan")

    def _z_step(self) -> None:
        with torch.no_grad():
            shifted = {name: w.detach() + self.u[name] for name, w in self.weights.items()}
            masks = project(shifted, self.pattern, self.sparsity)
            self.z = {name: shifted[name] * masks[name] for name in shifted}
            if self.quantization is not None:
                self.z = self.quantization.project(self.z)

    def primal_gap(self) -> float:
        """``sqrt(sum ||W - Z||^2) / sqrt(sum ||W||^2)``: how far W is from the constraint."""
        with torch.no_grad():
            gap = sum(float((w - self.z[n]).square().sum()) for n, w in self.weights.items())
            norm = sum(float(w.square().sum()) for w in self.weights.values())
        return (gap / norm) ** 0.5 if norm > 0 else 0.0

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        if self.update_every is None:
            self.update_every = max(MIN_W_STEPS, total_steps // 6)
        self.u = {name: torch.zeros_like(w.detach()) for name, w in self.weights.items()}
        if self.quantization is not None and not self.quantization.scales:
            self.quantization.fit(self.weights)
        self._z_step()

    def loss_term(self, model: nn.Module, step: int) -> Tensor:
        return (
            0.5
            * self.rho
            * sum(
                (w - self.z[name] + self.u[name]).square().sum() for name, w in self.weights.items()
            )
        )

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        assert self.update_every is not None
        if step % self.update_every:
            return
        self._z_step()
        with torch.no_grad():
            for name, w in self.weights.items():
                self.u[name] += w.detach() - self.z[name]
        self._last_gap = self.primal_gap()
        self.history.append({"step": step, "rho": self.rho, "primal_gap": self._last_gap})
        grown = min(self.rho * self.rho_growth, self.rho_max)
        # Scaled form: U = Y / rho, so the dual keeps its value when rho changes only if U is
        # rescaled (Boyd et al. 2011, section 3.4.1).
        with torch.no_grad():
            for name in self.u:
                self.u[name] *= self.rho / grown
        self.rho = grown

    def postfix(self) -> dict[str, str]:
        return {"rho": f"{self.rho:.2g}", "gap": f"{self._last_gap:.3f}"}

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors = {f"z.{name}": z for name, z in self.z.items()}
        tensors.update({f"u.{name}": u for name, u in self.u.items()})
        gap = None if math.isnan(self._last_gap) else self._last_gap
        state = {
            "rho": self.rho,
            "update_every": self.update_every,
            "updates": len(self.history),
            "history": self.history,
            "last_gap": gap,
        }
        if self.quantization is not None:
            state["level_scales"] = dict(self.quantization.scales)
        return tensors, state

    def load_state_dict(self, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        if state["update_every"] != self.update_every:
            raise CheckpointError(
                f"checkpoint ADMM updates every {state['update_every']} steps, this run every "
                f"{self.update_every}"
            )
        history = [dict(entry) for entry in state["history"]]
        if len(history) != state["updates"]:
            raise CheckpointError(
                f"checkpoint ADMM history has {len(history)} updates, says {state['updates']}"
            )
        self.z = tensors_like("z", tensors, self.weights)
        self.u = tensors_like("u", tensors, self.weights)
        self.rho = float(state["rho"])
        self.history = history
        self._last_gap = float("nan") if state["last_gap"] is None else float(state["last_gap"])
        if self.quantization is not None:
            if "level_scales" not in state:
                raise CheckpointError("checkpoint ADMM has no level scales: it did not quantize")
            self.quantization.scales = {k: float(v) for k, v in state["level_scales"].items()}

    def describe(self) -> dict[str, Any]:
        return {
            "rho_final": self.rho,
            "rho_growth": self.rho_growth,
            "rho_max": self.rho_max,
            "update_every_steps": self.update_every,
            "constraint": str(self.pattern),
            "updates": self.history,
            **({} if self.quantization is None else {"z_projection": "sparsity, then levels"}),
        }
