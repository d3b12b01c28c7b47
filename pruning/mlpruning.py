"""MLPruning's masks as a training hook (Yao et al. 2021, arXiv 2105.14636;
``yaozhewei/MLPruning``): learnable top-k scores at three levels of a BERT encoder.

- ``heads``: one score per attention head, shared by the head's rows of Q, K and V and its
  columns of the attention output, so a head is kept or pruned as a whole (one keep ratio
  per layer); with its output columns masked a pruned head contributes nothing, exactly as
  after it is removed;
- ``rows``: one score per FFN neuron, shared by its row of ``intermediate.dense`` and its
  column of ``output.dense`` (one keep ratio per layer). The paper also row-prunes the
  attention output; that matrix writes the residual stream, so its rows cannot be removed
  physically and are left whole here;
- ``blocks``: one score per ``R x C`` block of every encoder linear weight (one keep ratio
  per matrix), the paper's second step.

Step 1 uses ``heads`` and ``rows`` together; step 2 ``blocks``. Keep ratios, masks and the
regulariser are :mod:`pruning.learnable_topk`. Scores start at 0 as movement pruning's
(:data:`pruning.movement.SCORE_INIT`) and train with their own AdamW (``mask_lr``, the paper's
``mask_scores_learning_rate`` 1e-2, weight decay 0, the run's warm-up/decay factor); the
keep ratios start at ``sigmoid(theta_init)`` (the paper's 10: dense). Adam moves theta by
about ``mask_lr`` a step, so a short run needs a larger ``mask_lr`` or a lower
``theta_init`` to reach its target; Adam's momentum then carries theta past the target by
about ``10 mask_lr`` once the regulariser lets go (it is zero below the target). The
masked forward is :class:`pruning.movement`'s parametrization; at the end the masks are
fixed, the parametrizations removed and the weights folded (``W <- W * M``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from pruning.learnable_topk import (
    THETA_INIT,
    adaptive_lambda,
    learnable_top_k,
    remaining_fraction,
    top_k_of,
)
from pruning.masking import MaskSet
from pruning.movement import SCORE_INIT, _MaskedWeight
from pruning.train import TrainHook, lr_factor

__all__ = [
    "DEFAULT_FINAL_LAMBDA",
    "DEFAULT_MASK_LR",
    "LEVELS",
    "MAX_THETA_INIT",
    "EncoderLayer",
    "MLPruningMasks",
    "encoder_layers",
]

LEVELS = ("heads", "rows", "blocks")
DEFAULT_MASK_LR = 1e-2  # MLPruning README: --mask_scores_learning_rate 1e-2
DEFAULT_FINAL_LAMBDA = 20000.0  # MLPruning README, step 1: --final_lambda 20000
# sigmoid(20) is 1 in float32: a larger start only delays pruning.
MAX_THETA_INIT = 20.0

Expand = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class EncoderLayer:
    """Module names of one BERT encoder layer and its head width."""

    query: str
    key: str
    value: str
    attention_output: str
    intermediate: str
    output: str
    head_size: int

    @property
    def linears(self) -> tuple[str, ...]:
        return (
            self.query, self.key, self.value, self.attention_output, self.intermediate,
            self.output,
        )  # fmt: skip


def encoder_layers(model: nn.Module) -> list[EncoderLayer]:
    """The encoder layers of a BERT-style model (``attention.self.query`` ... ``output.dense``)."""
    config = model.config
    head_size = int(config.hidden_size) // int(config.num_attention_heads)
    modules = dict(model.named_modules())
    layers = []
    for name in modules:
        if not name.endswith(".attention.self.query"):
            continue
        prefix = name[: -len(".attention.self.query")]
        names = [
            f"{prefix}.attention.self.query", f"{prefix}.attention.self.key",
            f"{prefix}.attention.self.value", f"{prefix}.attention.output.dense",
            f"{prefix}.intermediate.dense", f"{prefix}.output.dense",
        ]  # fmt: skip
        if not all(isinstance(modules.get(n), nn.Linear) for n in names):
            continue
        layers.append(EncoderLayer(*names, head_size=head_size))
    if not layers:
        raise ValueError(
            f"{type(model).__name__}: no BERT encoder layers found (attention.self.query ... "
            "output.dense): MLPruning prunes BERT-style encoders"
        )
    return layers


@dataclass
class _Group:
    """Scores sharing one keep ratio, and the weights their mask covers."""

    name: str
    scores: Tensor
    theta: Tensor
    members: dict[str, Expand]  # weight name -> scores-shaped mask to weight-shaped mask
    weights: int  # how many weights the members hold

    def mask(self) -> Tensor:
        """The float mask over the scores, straight-through to scores and theta."""
        return learnable_top_k(self.scores, self.theta)

    def hard_mask(self) -> Tensor:
        return top_k_of(self.scores, self.theta)


def _rows(size: int) -> Expand:
    return lambda m: m.repeat_interleave(size)[:, None]


def _cols(size: int) -> Expand:
    return lambda m: m.repeat_interleave(size)[None, :]


def _blocks(rows: int, cols: int, shape: tuple[int, int]) -> Expand:
    def expand(m: Tensor) -> Tensor:
        full = m.repeat_interleave(rows, dim=0).repeat_interleave(cols, dim=1)
        return full[: shape[0], : shape[1]]

    return expand


def _new_scores(shape: tuple[int, ...], like: Tensor, theta_init: float) -> tuple[Tensor, Tensor]:
    scores = torch.full(shape, SCORE_INIT, dtype=like.dtype, device=like.device)
    theta = torch.tensor(theta_init, dtype=like.dtype, device=like.device)
    return scores.requires_grad_(True), theta.requires_grad_(True)


class MLPruningMasks(TrainHook):
    """Learnable top-k masks of ``levels`` (``("heads", "rows")`` or ``("blocks",)``) on
    ``model``'s encoder, regularised towards ``target``, the remaining fraction of the
    encoder's linear weights (the paper's ``final_threshold``)."""

    def __init__(
        self,
        model: nn.Module,
        levels: tuple[str, ...],
        target: float,
        *,
        block: tuple[int, int] = (16, 16),
        mask_lr: float = DEFAULT_MASK_LR,
        final_lambda: float = DEFAULT_FINAL_LAMBDA,
        theta_init: float = THETA_INIT,
        lr_schedule: str = "constant",
        warmup_ratio: float = 0.0,
    ) -> None:
        unknown = sorted(set(levels) - set(LEVELS))
        if unknown or not levels:
            raise ValueError(f"levels must be from {', '.join(LEVELS)}, got {list(levels)}")
        if "blocks" in levels and len(levels) > 1:
            raise ValueError("blocks are MLPruning's second step: prune them on their own")
        if not (math.isfinite(target) and 0.0 < target <= 1.0):
            raise ValueError(f"target (remaining fraction) must be in (0, 1], got {target!r}")
        if not (math.isfinite(mask_lr) and mask_lr > 0):
            raise ValueError(f"mask_lr must be a positive number, got {mask_lr!r}")
        if not (math.isfinite(final_lambda) and final_lambda >= 0):
            raise ValueError(f"final_lambda must be a non-negative number, got {final_lambda!r}")
        if not (math.isfinite(theta_init) and abs(theta_init) <= MAX_THETA_INIT):
            raise ValueError(
                f"theta_init must be a number in [-{MAX_THETA_INIT:g}, {MAX_THETA_INIT:g}], "
                f"got {theta_init!r}"
            )
        self.theta_init = theta_init
        self.levels = tuple(levels)
        self.target = target
        self.block = block
        self.mask_lr = mask_lr
        self.final_lambda = final_lambda
        self.lr_schedule = lr_schedule
        self.warmup_ratio = warmup_ratio
        self.layers = encoder_layers(model)
        modules = dict(model.named_modules())
        self.weights = {
            f"{name}.weight": modules[name].weight
            for layer in self.layers
            for name in layer.linears
        }
        self.total = sum(w.numel() for w in self.weights.values())
        self.groups = self._build_groups(modules)
        self._covering: dict[str, tuple[_Group, Expand]] = {
            name: (group, expand) for group in self.groups for name, expand in group.members.items()
        }
        self.optimizer: torch.optim.Optimizer | None = None
        self.masks: MaskSet | None = None
        self.history: list[dict[str, Any]] = []
        self._total_steps = 1
        self._lr: Any = None
        self._last: dict[str, float] = {}

    # -------------------------------------------------------------- groups

    def _build_groups(self, modules: dict[str, nn.Module]) -> list[_Group]:
        groups = []
        for index, layer in enumerate(self.layers):
            query = modules[layer.query].weight
            if "heads" in self.levels:
                heads = query.shape[0] // layer.head_size
                scores, theta = _new_scores((heads,), query, self.theta_init)
                size = layer.head_size
                qkv = (layer.query, layer.key, layer.value)
                members = {f"{n}.weight": _rows(size) for n in qkv}
                members[f"{layer.attention_output}.weight"] = _cols(size)
                count = sum(modules[n[: -len(".weight")]].weight.numel() for n in members)
                groups.append(_Group(f"layer{index}.heads", scores, theta, members, count))
            if "rows" in self.levels:
                inter = modules[layer.intermediate].weight
                scores, theta = _new_scores((inter.shape[0],), inter, self.theta_init)
                members = {
                    f"{layer.intermediate}.weight": _rows(1), f"{layer.output}.weight": _cols(1)
                }  # fmt: skip
                count = inter.numel() + modules[layer.output].weight.numel()
                groups.append(_Group(f"layer{index}.rows", scores, theta, members, count))
        if "blocks" in self.levels:
            rows, cols = self.block
            for name, weight in self.weights.items():
                out, inn = weight.shape
                scores, theta = _new_scores(
                    (-(-out // rows), -(-inn // cols)), weight, self.theta_init
                )
                expand = _blocks(rows, cols, (out, inn))
                groups.append(_Group(name, scores, theta, {name: expand}, weight.numel()))
        return groups

    # -------------------------------------------------------------- masks

    def soft_mask(self, name: str, shape: tuple[int, ...]) -> Tensor:
        """The float mask of weight ``name`` in the forward pass (called by the
        parametrization), straight-through to its group's scores and theta."""
        group, expand = self._covering[name]
        return expand(group.mask())

    def keep_masks(self) -> dict[str, Tensor]:
        """Bool keep-masks of every covered weight, from the current scores and ratios."""
        masks = {}
        for name, (group, expand) in self._covering.items():
            masks[name] = expand(group.hard_mask()).expand(self.weights[name].shape).clone()
        return masks

    def kept_indices(self, level: str) -> tuple[tuple[int, ...], ...]:
        """Per encoder layer, the kept head (``heads``) or FFN neuron (``rows``) indices."""
        if level not in ("heads", "rows") or level not in self.levels:
            raise ValueError(f"no {level!r} masks in this step (levels {list(self.levels)})")
        kept = []
        for index in range(len(self.layers)):
            group = next(g for g in self.groups if g.name == f"layer{index}.{level}")
            kept.append(tuple(int(i) for i in torch.nonzero(group.hard_mask()).flatten()))
        return tuple(kept)

    def remaining(self) -> float:
        """The fraction of the covered weights the hard masks keep now."""
        kept = sum(int(m.sum()) for m in self.keep_masks().values())
        return kept / self.total

    def expected_remaining(self) -> Tensor:
        """The regulariser's ``P``: remaining fraction from the keep ratios (differentiable)."""
        return remaining_fraction(
            [g.theta for g in self.groups],
            [g.weights for g in self.groups],
            [1.0 / g.scores.numel() for g in self.groups],
            self.total,
        )

    # -------------------------------------------------------------- training hooks

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self._total_steps = total_steps
        params = [t for g in self.groups for t in (g.scores, g.theta)]
        self.optimizer = torch.optim.AdamW(params, lr=self.mask_lr, weight_decay=0.0)
        warm = math.floor(self.warmup_ratio * total_steps)
        self._lr = lr_factor(self.lr_schedule, warm, total_steps)
        self._set_lr(0)
        modules = dict(model.named_modules())
        for name in self._covering:
            module = modules[name[: -len(".weight")]]
            parametrize.register_parametrization(module, "weight", _MaskedWeight(self, name))

    def _set_lr(self, step: int) -> None:
        assert self.optimizer is not None
        for group in self.optimizer.param_groups:
            group["lr"] = self.mask_lr * self._lr(step)

    def loss_term(self, model: nn.Module, step: int) -> Tensor | None:
        expected = self.expected_remaining()
        penalty = torch.clamp(expected - self.target, min=0.0) ** 2
        lam = adaptive_lambda(float(penalty.detach()), self.target, self.final_lambda)
        self._last = {"expected_remaining": float(expected.detach()), "lambda": lam}
        if lam == 0.0:
            return None
        return lam * penalty

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        assert self.optimizer is not None
        self._set_lr(step - 1)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        every = max(1, self._total_steps // 20)
        if step % every == 0 or step == self._total_steps:
            self.history.append(
                {"step": step, "remaining": round(self.remaining(), 6), **self._last}
            )

    def on_train_end(self, model: nn.Module) -> None:
        masks = self.keep_masks()
        modules = dict(model.named_modules())
        for name in self._covering:
            module = modules[name[: -len(".weight")]]
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        self.weights = {name: modules[name[: -len(".weight")]].weight for name in self.weights}
        self.masks = MaskSet(model, masks)
        self.masks.apply()

    def postfix(self) -> dict[str, str]:
        if not self.history:
            return {}
        return {"remaining": f"{self.history[-1]['remaining']:.3f}"}

    def keep_ratios(self) -> dict[str, float]:
        return {g.name: float(torch.sigmoid(g.theta.detach())) for g in self.groups}

    def describe(self) -> dict[str, Any]:
        """Levels, target, regulariser and history for the artifact manifest."""
        record: dict[str, Any] = {
            "levels": list(self.levels),
            "target_remaining": self.target,
            "remaining": round(self.remaining(), 6),
            "mask_lr": self.mask_lr,
            "final_lambda": self.final_lambda,
            "theta_init": self.theta_init,
            "score_init": SCORE_INIT,
            "keep_ratios": {k: round(v, 6) for k, v in self.keep_ratios().items()},
            "updates": self.history,
        }
        if "blocks" in self.levels:
            record["block"] = f"{self.block[0]}x{self.block[1]}"
        return record


def weights_of(model: nn.Module) -> Mapping[str, Tensor]:
    """Every encoder linear weight MLPruning covers, by parameter name."""
    modules = dict(model.named_modules())
    return {
        f"{name}.weight": modules[name].weight
        for layer in encoder_layers(model)
        for name in layer.linears
    }
