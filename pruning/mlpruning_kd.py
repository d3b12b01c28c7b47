"""MLPruning's distillation loss (``yaozhewei/MLPruning``, ``training/masked_run_glue.py``,
``train``): one teacher forward per batch, and

    L = alpha_distil (KL(p_t^T || p_s^T) T^2 + sum_l MSE(H_s^l, H_t^l) + sum_l MSE(A_s^l, A_t^l))
        + alpha_ce CE(z_s, y)

with ``alpha_distil = 0.9``, ``alpha_ce = 0.1`` and ``T = 2`` (their README). ``H`` are the
hidden states (embeddings and every layer), ``A`` the pre-softmax attention scores with
padded keys at 0 (their ``torch.where(att <= -1e2, 0, att)``), recomputed by
:mod:`pruning.distill` from the query/key projections. Teacher and student have the same
layers and heads (a step-1 student is masked, not shrunk; a step-2 student is a copy of the
shrunk teacher), so the terms pair up one to one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pruning.distill import _forward

__all__ = ["ALPHA_CE", "ALPHA_DISTIL", "TEMPERATURE", "MLPruningDistillation"]

ALPHA_DISTIL = 0.9
ALPHA_CE = 0.1
TEMPERATURE = 2.0


def _logit_term(z_s: Tensor, z_t: Tensor) -> Tensor:
    """``KL(p_t^T || p_s^T) T^2``; ``MSE(z_s, z_t)`` for a one-output (regression) head."""
    if z_s.shape[-1] == 1:
        return F.mse_loss(z_s, z_t)
    kl = F.kl_div(
        F.log_softmax(z_s / TEMPERATURE, -1), F.softmax(z_t / TEMPERATURE, -1),
        reduction="batchmean",
    )  # fmt: skip
    return kl * TEMPERATURE**2


class MLPruningDistillation(nn.Module):
    """``loss_fn`` for :func:`pruning.train.train`; the teacher is frozen, in eval mode and
    not a submodule (never trained or saved)."""

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        teacher.eval()
        for param in teacher.parameters():
            param.requires_grad_(False)
        object.__setattr__(self, "teacher", teacher)
        self.last_terms: dict[str, float] = {}

    def train(self, mode: bool = True) -> MLPruningDistillation:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            t_out, t_scores = _forward(self.teacher, batch, attention=True)
        s_out, s_scores = _forward(student, batch, attention=True)
        z_s, z_t = s_out.logits, t_out.logits
        if len(s_scores) != len(t_scores):
            raise ValueError(
                f"student has {len(s_scores)} attention layers, teacher {len(t_scores)}: "
                "MLPruning distils layer to layer"
            )
        terms: dict[str, Tensor] = {
            "logits": _logit_term(z_s, z_t),
            "hidden": sum(
                F.mse_loss(s, t)
                for s, t in zip(s_out.hidden_states, t_out.hidden_states, strict=True)
            ),
            "attention": sum(F.mse_loss(s, t) for s, t in zip(s_scores, t_scores, strict=True)),
        }
        labels = batch["labels"]
        if z_s.shape[-1] == 1:  # regression (STS-B): squared errors instead of KL and CE
            hard = F.mse_loss(z_s.squeeze(-1), labels.to(z_s.dtype))
        else:
            hard = F.cross_entropy(z_s, labels)
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        self.last_terms["ce"] = float(hard.detach())
        return ALPHA_DISTIL * sum(terms.values()) + ALPHA_CE * hard

    def describe(self) -> dict[str, Any]:
        return {
            "alpha_distil": ALPHA_DISTIL,
            "alpha_ce": ALPHA_CE,
            "temperature": TEMPERATURE,
            "terms": "KL(logits) T^2 + sum MSE(hidden states) + sum MSE(pre-softmax attention)",
            "source": "yaozhewei/MLPruning training/masked_run_glue.py",
        }
