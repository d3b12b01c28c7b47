"""Movement pruning (Sanh, Wolf and Rush, NeurIPS 2020; ``huggingface/nn_pruning``), as a
training hook.

Every targeted ``nn.Linear`` gets learned importance scores ``S`` (one per weight for
``unstructured``, one per ``R x C`` block for ``block:RxC``), trained with their own AdamW
(learning rate ``score_lr``, default 1e-2 as in the paper, no weight decay, the run's
warm-up/decay factor) alongside the weights. The forward pass uses ``W' = W * M(S)``:

- ``hard``: ``M = TopK(S)``, the ``1 - s_t`` highest-scoring weights (or blocks) of each
  matrix, ``s_t`` on the cubic schedule of :class:`~pruning.schedule.SparsitySchedule`
  with a warm-up at sparsity 0 and a cool-down at the final sparsity;
- ``soft``: ``M = 1[sigmoid(S) > tau_t]`` (``S > logit(tau_t)``), ``tau_t`` rising on the
  same cubic ramp from 0 to ``threshold``, with the loss term
  ``lambda_t * mean over matrices of mean(sigmoid(S))``, ``lambda_t = lambda * tau_t /
  threshold`` (the paper's ``lambda * sum sigmoid(S)`` normalised per matrix and scheduled
  as in Sanh's ``masked_run_glue.py``); the sparsity follows from ``lambda``.

``M`` is treated as the identity in the backward pass (straight-through), so
``dL/dS = dL/dW' * W``, summed over a block for block scores. Scores start at 0 (the
paper's ``mask_init constant``, ``mask_scale 0``): the first masks are ties, broken by
index. The masked forward is a ``torch.nn.utils.parametrize`` parametrization holding the
scores as plain tensors (so the run's own optimizer never sees them); at the end the masks
are fixed from the final scores, the parametrizations removed and the weights folded
(``W <- W * M``), leaving an ordinary transformers model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from pruning.checkpoint import optimizer_from_flat, optimizer_to_flat, strip_prefix, with_prefix
from pruning.masking import MaskSet
from pruning.patterns import Block, Pattern, PatternError, Unstructured
from pruning.schedule import SparsitySchedule
from pruning.train import TrainHook, lr_factor

__all__ = [
    "DEFAULT_LAMBDA",
    "DEFAULT_SCORE_LR",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WARMUP",
    "SCORE_INIT",
    "VARIANTS",
    "MovementPruning",
    "check_movement_pattern",
    "straight_through",
]

VARIANTS = ("hard", "soft")
DEFAULT_SCORE_LR = 1e-2  # Sanh et al.: mask_scores_learning_rate 1e-2
SCORE_INIT = 0.0  # mask_init constant, mask_scale 0
DEFAULT_THRESHOLD = 0.1  # soft: final threshold on sigmoid(S)
DEFAULT_LAMBDA = 1.0  # soft: final regulariser weight (the paper sweeps it for the sparsity)
DEFAULT_WARMUP = 0.1  # fraction of steps at sparsity 0 (the paper: 1 epoch of 10)


def check_movement_pattern(pattern: Pattern) -> None:
    """Movement scores exist per weight or per block: refuse other patterns."""
    if not isinstance(pattern, Unstructured) and type(pattern) is not Block:
        raise PatternError(
            f"method 'movement' learns one score per weight or per block: use pattern "
            f"unstructured or block:RxC, not {pattern}"
        )


class _StraightThrough(torch.autograd.Function):
    """``mask`` forward, identity backward."""

    @staticmethod
    def forward(ctx: Any, scores: Tensor, mask: Tensor) -> Tensor:
        return mask.to(scores.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def straight_through(scores: Tensor, mask: Tensor) -> Tensor:
    """``mask`` (as ``scores``' dtype) whose gradient flows to ``scores`` unchanged."""
    return _StraightThrough.apply(scores, mask.detach())


def top_k_mask(scores: Tensor, sparsity: float) -> Tensor:
    """Keep the ``n - floor(sparsity * n)`` highest scores (ties: lower index first)."""
    n = scores.numel()
    keep = n - math.floor(sparsity * n)
    order = torch.argsort(scores.detach().flatten(), descending=True, stable=True)
    mask = torch.zeros(n, dtype=torch.bool, device=scores.device)
    mask[order[:keep]] = True
    return mask.view_as(scores)


class _MaskedWeight(nn.Module):
    """The parametrization ``W -> W * M(S)`` of one weight; reads the hook's current target."""

    def __init__(self, hook: MovementPruning, name: str) -> None:
        super().__init__()
        self._hook = hook
        self._name = name

    def forward(self, weight: Tensor) -> Tensor:
        return weight * self._hook.soft_mask(self._name, tuple(weight.shape))


class MovementPruning(TrainHook):
    """Movement-prune ``weights`` (name -> ``nn.Linear`` weight of the trained model) with
    ``pattern`` (unstructured or block). ``hard`` reaches ``final_sparsity`` exactly per
    matrix; ``soft`` ignores it and keeps what ``sigmoid(S) > threshold`` keeps."""

    def __init__(
        self,
        weights: Mapping[str, Tensor],
        pattern: Pattern,
        final_sparsity: float | None,
        *,
        variant: str = "hard",
        score_lr: float = DEFAULT_SCORE_LR,
        threshold: float = DEFAULT_THRESHOLD,
        lam: float = DEFAULT_LAMBDA,
        warmup: float = DEFAULT_WARMUP,
        ramp_fraction: float = 0.7,
        lr_schedule: str = "constant",
        warmup_ratio: float = 0.0,
    ) -> None:
        check_movement_pattern(pattern)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if not (math.isfinite(score_lr) and score_lr > 0):
            raise ValueError(f"score_lr must be a positive number, got {score_lr!r}")
        if variant == "hard" and final_sparsity is None:
            raise ValueError("hard movement pruning needs a final sparsity")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lambda must be a non-negative number, got {lam!r}")
        if not 0.0 <= warmup < ramp_fraction <= 1.0:
            raise ValueError(
                f"the warm-up ({warmup}) must end before the ramp does ({ramp_fraction})"
            )
        self.weights = dict(weights)
        self.pattern = pattern
        self.final_sparsity = final_sparsity
        self.variant = variant
        self.score_lr = score_lr
        self.threshold = threshold
        self.lam = lam
        self.warmup = warmup
        self.ramp_fraction = ramp_fraction
        self.lr_schedule = lr_schedule
        self.warmup_ratio = warmup_ratio
        self.block = (pattern.rows, pattern.cols) if isinstance(pattern, Block) else (1, 1)
        self.scores: dict[str, Tensor] = {}
        self.schedule: SparsitySchedule | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.masks: MaskSet | None = None
        self.history: list[dict[str, Any]] = []
        self._step = 0
        self._total = 1
        self._lr: Any = None

    # -------------------------------------------------------------- schedule and masks

    def _fraction(self, step: int) -> float:
        """Where the cubic ramp is after ``step`` steps: 0 in the warm-up, 1 in cool-down."""
        assert self.schedule is not None
        return self.schedule.sparsity_at(step) / self.schedule.final_sparsity

    @property
    def sparsity(self) -> float:
        """Hard: the target sparsity of the masks in use now."""
        assert self.schedule is not None and self.variant == "hard"
        return self.schedule.sparsity_at(self._step)

    @property
    def tau(self) -> float:
        """Soft: the threshold on ``sigmoid(S)`` in use now."""
        assert self.schedule is not None and self.variant == "soft"
        return self.schedule.sparsity_at(self._step)

    def group_mask(self, name: str) -> Tensor:
        """The bool keep-mask over ``name``'s score groups (weights or blocks), now."""
        scores = self.scores[name]
        if self.variant == "hard":
            return top_k_mask(scores, self.sparsity)
        return torch.sigmoid(scores.detach()) > self.tau

    def _expand(self, groups: Tensor, shape: tuple[int, ...]) -> Tensor:
        rows, cols = self.block
        if (rows, cols) == (1, 1):
            return groups
        full = groups.repeat_interleave(rows, dim=0).repeat_interleave(cols, dim=1)
        return full[: shape[0], : shape[1]]

    def soft_mask(self, name: str, shape: tuple[int, ...]) -> Tensor:
        """The float mask of the forward pass, straight-through to the scores."""
        return self._expand(straight_through(self.scores[name], self.group_mask(name)), shape)

    def keep_masks(self) -> dict[str, Tensor]:
        """Bool keep-masks of every weight, from the current scores and target."""
        return {
            name: self._expand(self.group_mask(name), tuple(weight.shape))
            for name, weight in self.weights.items()
        }

    # -------------------------------------------------------------- training hooks

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        start = math.floor(self.warmup * total_steps)
        end = max(start + 1, math.floor(self.ramp_fraction * total_steps))
        final = self.final_sparsity if self.variant == "hard" else self.threshold
        assert final is not None
        if final == 0.0:
            final = 1e-12  # a dense "ramp": keeps _fraction defined
        self.schedule = SparsitySchedule(final, 0.0, start, 1, end - start, "cubic")
        self.schedule.check_fits(total_steps)
        self._total = total_steps
        self._step = 0
        rows, cols = self.block
        for name, weight in self.weights.items():
            out, inn = weight.shape
            shape = (-(-out // rows), -(-inn // cols))
            self.scores[name] = torch.full(
                shape, SCORE_INIT, dtype=weight.dtype, device=weight.device, requires_grad=True
            )
        self.optimizer = torch.optim.AdamW(
            list(self.scores.values()), lr=self.score_lr, weight_decay=0.0
        )
        warm = math.floor(self.warmup_ratio * total_steps)
        self._lr = lr_factor(self.lr_schedule, warm, total_steps)
        self._set_lr(0)
        modules = dict(model.named_modules())
        for name in self.weights:
            module_name, _, attribute = name.rpartition(".")
            module = modules[module_name]
            if not isinstance(module, nn.Linear) or attribute != "weight":
                raise ValueError(f"movement pruning targets nn.Linear weights, not {name!r}")
            parametrize.register_parametrization(module, "weight", _MaskedWeight(self, name))

    def _set_lr(self, step: int) -> None:
        assert self.optimizer is not None
        for group in self.optimizer.param_groups:
            group["lr"] = self.score_lr * self._lr(step)

    def loss_term(self, model: nn.Module, step: int) -> Tensor | None:
        if self.variant != "soft" or self.lam == 0:
            return None
        lam = self.lam * self._fraction(step - 1)
        if lam == 0:
            return None
        means = [torch.sigmoid(s).mean() for s in self.scores.values()]
        return lam * torch.stack(means).mean()

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        assert self.optimizer is not None
        self._set_lr(step - 1)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._step = step
        every = max(1, self._total // 20)
        if step % every == 0 or step == self._total:
            self.history.append(self._record(step))

    def _record(self, step: int) -> dict[str, Any]:
        masks = self.keep_masks()
        kept = sum(int(m.sum()) for m in masks.values())
        total = sum(m.numel() for m in masks.values())
        target = "target_sparsity" if self.variant == "hard" else "threshold"
        return {"step": step, target: self.schedule.sparsity_at(step), "sparsity": 1 - kept / total}

    def on_train_end(self, model: nn.Module) -> None:
        masks = self.keep_masks()
        modules = dict(model.named_modules())
        for name in self.weights:
            module = modules[name.rpartition(".")[0]]
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        self.masks = MaskSet(model, masks)
        self.masks.apply()

    def postfix(self) -> dict[str, str]:
        if not self.history:
            return {}
        return {"sparsity": f"{self.history[-1]['sparsity']:.3f}"}

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert self.optimizer is not None
        opt_tensors, opt_state = optimizer_to_flat(self.optimizer)
        tensors = {f"score.{name}": s.detach() for name, s in self.scores.items()}
        tensors.update(with_prefix("optimizer.", opt_tensors))
        return tensors, {"history": self.history, "optimizer": opt_state, "step": self._step}

    def load_state_dict(self, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        assert self.optimizer is not None
        with torch.no_grad():
            for name, scores in self.scores.items():
                scores.copy_(tensors[f"score.{name}"])
        optimizer_from_flat(self.optimizer, strip_prefix("optimizer.", tensors), state["optimizer"])
        self.history = [dict(entry) for entry in state["history"]]
        self._step = int(state["step"])

    def describe(self) -> dict[str, Any]:
        """Variant, score settings, schedule and history for the artifact manifest."""
        record: dict[str, Any] = {
            "kind": "movement",
            "source": "Sanh, Wolf and Rush 2020 (nn_pruning)",
            "variant": self.variant,
            "score_lr": self.score_lr,
            "score_init": SCORE_INIT,
            "score_optimizer": "AdamW, weight decay 0, the run's warm-up/decay factor",
            "gradient": "straight-through: dL/dS = dL/dW' * W",
            "warmup_fraction": self.warmup,
            "ramp_fraction": self.ramp_fraction,
            "scope": "per-matrix",
            "updates": self.history,
        }
        schedule = None if self.schedule is None else self.schedule.to_dict()
        if self.variant == "hard":
            record["schedule"] = schedule
        else:
            record.update(
                {"threshold": self.threshold, "lambda": self.lam, "threshold_schedule": schedule}
            )
        return record
