"""Knowledge-aware pruning at distilling (SparseBERT: Xu et al., NAACL 2021).

The teacher is the dense model fine-tuned on the task; the student starts from the
pre-trained weights and is pruned (:class:`~pruning.gradual.GradualMagnitude` or
:class:`~pruning.gradual.CyclicMagnitude`) while :class:`DistillationLoss` is the training
loss of :func:`pruning.train.train`. See ``../shared/reference/pruning-algorithms.md`` 1, 7.1.

``mode="full"`` (SparseBERT, ``task_distill_prune_simultaneously.py``)::

    L = w_a sum_l MSE(A_s^l, A_t^l) + w_h sum_{l=0..L} MSE(H_s^l W_h, H_t^l)
        + w_z mean(-softmax(z_t / T) * log_softmax(z_s / T))

with all weights 1 and ``T = 1`` by default. ``A`` are the **pre-softmax** attention scores
``Q K^T / sqrt(d)`` recomputed from forward hooks on the query and key projections (so any
attention implementation works), with entries of padded keys set to 0 as SparseBERT does
(its additive mask pushes them to <= -100 and it zeroes those). ``H^0`` is the embedding
output. ``W_h`` is a learned linear projection, present only when the student is narrower
than the teacher; it is a submodule of the loss, so :func:`~pruning.train.train` optimises
it. The soft cross-entropy is averaged over batch *and* classes, as in TinyBERT/SparseBERT's
``soft_cross_entropy``. A student with fewer layers is mapped uniformly (student layer ``m``
-> teacher layer ``m * L_t / L_s``, TinyBERT's mapping). For a regression task (one output)
the logit term is ``MSE(z_s, z_t)``.

``mode="logits"``: Hinton KD, ``alpha KL(p_t^T || p_s^T) T^2 + (1 - alpha) CE(z_s, y)``,
with ``alpha = 0.9`` and ``T = 2`` by default.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DistillConfig", "DistillationLoss", "attention_projections"]

KdMode = Literal["full", "logits"]


@dataclass(frozen=True)
class DistillConfig:
    """Distillation loss settings. ``temperature=None``: 1 for ``full``, 2 for ``logits``."""

    mode: KdMode = "full"
    temperature: float | None = None
    attention_weight: float = 1.0
    hidden_weight: float = 1.0
    logit_weight: float = 1.0
    alpha: float = 0.9

    def __post_init__(self) -> None:
        if self.mode not in ("full", "logits"):
            raise ValueError(f"kd mode must be 'full' or 'logits', got {self.mode!r}")
        if self.temperature is not None and not (
            math.isfinite(self.temperature) and self.temperature > 0
        ):
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        for name in ("attention_weight", "hidden_weight", "logit_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")

    @property
    def t(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 1.0 if self.mode == "full" else 2.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "temperature": self.t}


# ----------------------------------------------------------------------------- attention


def _heads(model: nn.Module) -> int:
    config = model.config
    return int(getattr(config, "num_attention_heads", None) or config.n_heads)


def attention_projections(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(query, key) linear layers of every self-attention layer, in layer order (BERT,
    RoBERTa: ``attention.self.query/key``; DistilBERT: ``attention.q_lin/k_lin``)."""
    modules = dict(model.named_modules())
    pairs = []
    for name, module in modules.items():
        if name.endswith("attention.self.query"):
            pairs.append((module, modules[name[: -len("query")] + "key"]))
        elif name.endswith("attention.q_lin"):
            pairs.append((module, modules[name[: -len("q_lin")] + "k_lin"]))
    if not pairs:
        raise ValueError(
            f"{type(model).__name__}: no self-attention query/key projections found "
            "(expected a BERT, RoBERTa or DistilBERT model)"
        )
    return pairs


@contextmanager
def _recording(model: nn.Module) -> Iterator[list[list[Tensor]]]:
    """Record each attention layer's [query, key] projection outputs during one forward."""
    pairs = attention_projections(model)
    records: list[list[Tensor]] = [[] for _ in pairs]
    handles = []
    for record, (query, key) in zip(records, pairs, strict=True):
        for module in (query, key):
            handles.append(
                module.register_forward_hook(lambda _m, _i, out, r=record: r.append(out))
            )
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def _scores(query: Tensor, key: Tensor, heads: int, key_mask: Tensor | None) -> Tensor:
    """Pre-softmax ``Q K^T / sqrt(d)`` per head ``[batch, heads, seq, seq]``, 0 at padded
    keys."""
    batch, seq, width = query.shape
    d = width // heads
    q = query.view(batch, seq, heads, d).transpose(1, 2)
    k = key.view(batch, key.shape[1], heads, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if key_mask is not None:
        scores = scores * key_mask[:, None, None, :].to(scores.dtype)
    return scores


def _forward(model: nn.Module, batch: dict[str, Tensor], attention: bool):
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if not attention:
        return model(**inputs, output_hidden_states=True), []
    heads = _heads(model)
    with _recording(model) as records:
        outputs = model(**inputs, output_hidden_states=True)
    key_mask = batch.get("attention_mask")
    return outputs, [_scores(q, k, heads, key_mask) for q, k in records]


# ----------------------------------------------------------------------------- the loss


class DistillationLoss(nn.Module):
    """``loss_fn`` for :func:`pruning.train.train`: distil ``teacher`` into the trained model.

    The teacher is frozen, kept in eval mode and run under ``no_grad``; it is not a
    submodule (checkpoints and the optimizer see only the projection, if any).
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, config: DistillConfig) -> None:
        super().__init__()
        self.config = config
        teacher.eval()
        for param in teacher.parameters():
            param.requires_grad_(False)
        object.__setattr__(self, "teacher", teacher)  # not registered: never trained or saved
        t_cfg, s_cfg = teacher.config, student.config
        self.t_layers = int(t_cfg.num_hidden_layers)
        self.s_layers = int(s_cfg.num_hidden_layers)
        if config.mode == "full" and self.t_layers % self.s_layers != 0:
            raise ValueError(
                f"teacher layers ({self.t_layers}) must be a multiple of student layers "
                f"({self.s_layers}) for the layer-wise loss"
            )
        if (
            config.mode == "full"
            and config.attention_weight > 0
            and _heads(teacher) != _heads(student)
        ):
            raise ValueError(
                f"attention loss needs as many heads in the student ({_heads(student)}) as in "
                f"the teacher ({_heads(teacher)}): set attention_weight 0"
            )
        t_width, s_width = int(t_cfg.hidden_size), int(s_cfg.hidden_size)
        device = next(student.parameters()).device
        self.projection = nn.Linear(s_width, t_width, device=device) if s_width != t_width else None
        self.last_terms: dict[str, float] = {}

    def train(self, mode: bool = True) -> DistillationLoss:
        super().train(mode)
        self.teacher.eval()  # the teacher never drops out
        return self

    def _teacher_layer(self, student_layer: int) -> int:
        return student_layer * self.t_layers // self.s_layers

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        config = self.config
        full = config.mode == "full"
        attention = full and config.attention_weight > 0
        with torch.no_grad():
            t_out, t_scores = _forward(self.teacher, batch, attention)
        s_out, s_scores = _forward(student, batch, attention)
        z_s, z_t = s_out.logits, t_out.logits
        T = config.t
        terms: dict[str, Tensor] = {}
        if full:
            if attention:
                terms["attention"] = config.attention_weight * sum(
                    F.mse_loss(s, t_scores[self._teacher_layer(m + 1) - 1])
                    for m, s in enumerate(s_scores)
                )
            if config.hidden_weight > 0:
                terms["hidden"] = config.hidden_weight * sum(
                    F.mse_loss(
                        h if self.projection is None else self.projection(h),
                        t_out.hidden_states[self._teacher_layer(m)],
                    )
                    for m, h in enumerate(s_out.hidden_states)
                )
            if config.logit_weight > 0:
                if z_s.shape[-1] == 1:
                    soft = F.mse_loss(z_s, z_t)
                else:
                    soft = (-F.softmax(z_t / T, -1) * F.log_softmax(z_s / T, -1)).mean()
                terms["logits"] = config.logit_weight * soft
        else:
            labels = batch["labels"]
            if z_s.shape[-1] == 1:
                kd = F.mse_loss(z_s, z_t)
                hard = F.mse_loss(z_s.squeeze(-1), labels.to(z_s.dtype))
            else:
                kd = F.kl_div(
                    F.log_softmax(z_s / T, -1),
                    F.log_softmax(z_t / T, -1),
                    reduction="batchmean",
                    log_target=True,
                ) * (T * T)
                hard = F.cross_entropy(z_s, labels)
            terms["kd"] = config.alpha * kd
            terms["hard"] = (1 - config.alpha) * hard
        if not terms:
            raise ValueError("every distillation loss weight is 0: nothing to train on")
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        return sum(terms.values())
