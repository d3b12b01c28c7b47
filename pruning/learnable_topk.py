"""MLPruning's learnable top-k and its adaptive regulariser (Yao et al. 2021, arXiv
2105.14636; ``yaozhewei/MLPruning``, ``training/emmental/modules/binarizer.py`` and
``regularization`` in ``training/masked_run_glue.py`` / ``masked_blockwise_run_glue.py``).

The keep ratio of a group of scores is ``k = sigmoid(theta)`` (theta starts at 10, so every
group starts dense) and the mask keeps the ``ceil(k n)`` highest scores. The backward pass is
straight-through: ``dL/dS = dL/dM`` and ``dL/dtheta = sum(dL/dM * M)`` (their
``TopKBinarizer.backward``). Only the regulariser pulls theta down; the task gradient through
``sum(dL/dM * M)`` pulls it up where the kept weights matter.

The regulariser is the paper's ``R = max(0, P - tau)^2`` on the expected remaining fraction
``P`` of the prunable weights, weighted ``lambda = max(lambda_final R / (1 - tau)^2, 50)``,
``lambda = 10`` once ``R < 3e-4`` (their ``train`` loop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "LAMBDA_FLOOR",
    "LAMBDA_NEAR",
    "NEAR_TARGET",
    "THETA_INIT",
    "adaptive_lambda",
    "keep_count",
    "learnable_top_k",
    "remaining_fraction",
    "top_k_of",
]

THETA_INIT = 10.0  # MLPruning: threshold initialised to 10 (sigmoid 0.99995: start dense)
LAMBDA_FLOOR = 50.0  # regu_lambda = max(final_lambda * R / (1 - tau)^2, 50)
LAMBDA_NEAR = 10.0  # regu_lambda once R < 3e-4
NEAR_TARGET = 3e-4


def keep_count(theta: Tensor, n: int) -> int:
    """``ceil(sigmoid(theta) n)``: how many of ``n`` scores the mask keeps (at least 1)."""
    return max(1, math.ceil(float(torch.sigmoid(theta.detach())) * n))


def top_k_of(scores: Tensor, theta: Tensor) -> Tensor:
    """The bool mask of the ``keep_count(theta, n)`` highest scores (ties: lower index
    first, as :func:`pruning.movement.top_k_mask`; counted exactly, not through a sparsity)."""
    keep = keep_count(theta, scores.numel())
    order = torch.argsort(scores.detach().flatten(), descending=True, stable=True)
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[order[:keep]] = True
    return mask.view_as(scores)


class _LearnableTopK(torch.autograd.Function):
    """Forward: the top-``ceil(sigmoid(theta) n)`` mask of ``scores``; backward:
    straight-through to the scores, ``sum(grad * M)`` to theta."""

    @staticmethod
    def forward(ctx: Any, scores: Tensor, theta: Tensor) -> Tensor:
        mask = top_k_of(scores, theta).to(scores.dtype)
        ctx.save_for_backward(mask)
        return mask

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        (mask,) = ctx.saved_tensors
        return grad, (grad * mask).sum()


def learnable_top_k(scores: Tensor, theta: Tensor) -> Tensor:
    """The float keep-mask of ``scores`` at keep ratio ``sigmoid(theta)`` (0-d ``theta``),
    with MLPruning's straight-through gradients to both."""
    if theta.dim() != 0:
        raise ValueError(f"theta must be a 0-d tensor, got shape {tuple(theta.shape)}")
    return _LearnableTopK.apply(scores, theta)


def remaining_fraction(
    thetas: Sequence[Tensor], weights: Sequence[int], floors: Sequence[float], total: int
) -> Tensor:
    """Expected remaining fraction ``sum_g max(sigmoid(theta_g), floor_g) w_g / total``.

    ``w_g`` counts the weights group ``g``'s mask covers and ``floor_g = 1 / n_g`` (one kept
    unit): the paper's ``P / 144`` with ``h_hat = max(h, 1/12)`` and ``f_hat = max(f, 1/3072)``
    generalised from BERT-base's counts to any model's.
    """
    parts = [
        torch.clamp(torch.sigmoid(theta), min=floor) * count
        for theta, count, floor in zip(thetas, weights, floors, strict=True)
    ]
    return torch.stack(parts).sum() / total


def adaptive_lambda(penalty: float, target: float, final_lambda: float) -> float:
    """The paper's adaptive weight of ``R``: ``max(lambda_final R / (1 - tau)^2, 50)``, and
    10 once ``R < 3e-4``. A target of 1 keeps everything: no regulariser (weight 0)."""
    if target >= 1.0:
        return 0.0
    if penalty < NEAR_TARGET:
        return LAMBDA_NEAR
    return max(final_lambda * penalty / (1.0 - target) ** 2, LAMBDA_FLOOR)
