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

**Teacher cache** (:mod:`pruning.teacher_cache`): with a cache the teacher's logits (and,
when cached, hidden states) come from a table computed once per training example instead of
a forward per batch; the batch carries ``example_index``. The teacher still runs live when
the attention term needs its scores. A cached hidden state exists only at real tokens, so
with cached hidden states the hidden MSE averages over real tokens (live, it also covers
padding, as SparseBERT's code does).

**MixKD** (Liang et al., ICLR 2021), ``mixkd_weight > 0``: each batch is also mixed with a
shuffled copy of itself at the word-embedding level, ``e = lam e_i + (1 - lam) e_j`` with
``lam ~ Beta(mixkd_alpha, mixkd_alpha)`` per example (each model mixes its own embeddings;
the attention mask is the union of the two, token types follow the larger share), and the
student is trained to match the teacher's logits on the interpolations with the logit term
of the mode (soft cross-entropy or KL at ``T``; MSE for regression), weighted
``mixkd_weight``. The mixed inputs are new, so the teacher always runs on them live. A
bi-encoder mixes each sentence with the same sentence of the partner pair. The paper's
separate student-mixup loss (cross-entropy with interpolated labels) is not included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from pruning.teacher_cache import TeacherCache

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
    mixkd_weight: float = 0.0
    mixkd_alpha: float = 0.4

    def __post_init__(self) -> None:
        if self.mode not in ("full", "logits"):
            raise ValueError(f"kd mode must be 'full' or 'logits', got {self.mode!r}")
        if self.temperature is not None and not (
            math.isfinite(self.temperature) and self.temperature > 0
        ):
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        if not (math.isfinite(self.mixkd_alpha) and self.mixkd_alpha > 0):
            raise ValueError(f"mixkd_alpha must be a positive number, got {self.mixkd_alpha!r}")
        for name in ("attention_weight", "hidden_weight", "logit_weight", "mixkd_weight"):
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


def _head_size(model: nn.Module) -> int:
    config = model.config
    return int(getattr(config, "hidden_size", None) or config.dim) // _heads(model)


def _scores(query: Tensor, key: Tensor, d: int, key_mask: Tensor | None) -> Tensor:
    """Pre-softmax ``Q K^T / sqrt(d)`` per head ``[batch, heads, seq, seq]`` for heads of
    width ``d`` (a layer shrunk by :mod:`pruning.shrink` has fewer), 0 at padded keys."""
    batch, seq, width = query.shape
    heads = width // d
    q = query.view(batch, seq, heads, d).transpose(1, 2)
    k = key.view(batch, key.shape[1], heads, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if key_mask is not None:
        scores = scores * key_mask[:, None, None, :].to(scores.dtype)
    return scores


NOT_INPUTS = frozenset({"labels", "example_index"})


def _forward(model: nn.Module, batch: dict[str, Tensor], attention: bool):
    from pruning.heads import encoder_attention_mask

    inputs = {k: v for k, v in batch.items() if k not in NOT_INPUTS}
    if not attention:
        return model(**inputs, output_hidden_states=True), []
    d = _head_size(model)
    with _recording(model) as records:
        outputs = model(**inputs, output_hidden_states=True)
    key_mask = encoder_attention_mask(model, batch)
    return outputs, [_scores(q, k, d, key_mask) for q, k in records]


def _mixed_inputs(
    model: nn.Module, batch: dict[str, Tensor], perm: Tensor, lam: Tensor
) -> dict[str, Tensor]:
    """``batch`` mixed with ``batch[perm]`` at ``model``'s word embeddings (see module doc)."""
    embed = model.get_input_embeddings()
    mixed: dict[str, Tensor] = {}
    for suffix in ("", "_b"):
        ids = batch.get("input_ids" + suffix)
        if ids is None:
            continue
        weight = lam.to(embed.weight.dtype).view(-1, 1, 1)
        words = embed(ids)
        mixed["inputs_embeds" + suffix] = weight * words + (1 - weight) * words[perm]
        mask = batch["attention_mask" + suffix]
        mixed["attention_mask" + suffix] = torch.maximum(mask, mask[perm])
        types = batch.get("token_type_ids" + suffix)
        if types is not None:
            own = (lam >= 0.5).view(-1, 1)
            mixed["token_type_ids" + suffix] = torch.where(own, types, types[perm])
    return mixed


# ----------------------------------------------------------------------------- the loss


class DistillationLoss(nn.Module):
    """``loss_fn`` for :func:`pruning.train.train`: distil ``teacher`` into the trained model.

    The teacher is frozen, kept in eval mode and run under ``no_grad``; it is not a
    submodule (checkpoints and the optimizer see only the projection, if any).
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: DistillConfig,
        cache: TeacherCache | None = None,
    ) -> None:
        from pruning.heads import head_of

        super().__init__()
        self.config = config
        self.cache = cache
        self.needs_example_index = cache is not None  # pruning.train passes example_index
        pair_heads = {head_of(teacher) == "bi-encoder", head_of(student) == "bi-encoder"}
        if len(pair_heads) > 1:
            raise ValueError(
                f"teacher head {head_of(teacher)!r} and student head {head_of(student)!r} read "
                "their inputs differently: a bi-encoder distils from a bi-encoder teacher"
            )
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
        if config.mode == "full" and config.attention_weight > 0:
            from workloads.structure import structured_keep_of

            for role, model in (("teacher", teacher), ("student", student)):
                if structured_keep_of(model.config) is not None:
                    raise ValueError(
                        f"attention loss compares every head of every layer, and the {role} "
                        "is shrunk (pruning.shrink: heads removed per layer): set "
                        "attention_weight 0"
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

    def _logit_term(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        """The mode's logit distance: soft cross-entropy at T (full), KL x T^2 (logits),
        MSE for a one-output (regression) head."""
        T = self.config.t
        if z_s.shape[-1] == 1:
            return F.mse_loss(z_s, z_t)
        if self.config.mode == "full":
            return (-F.softmax(z_t / T, -1) * F.log_softmax(z_s / T, -1)).mean()
        kl = F.kl_div(
            F.log_softmax(z_s / T, -1), F.log_softmax(z_t / T, -1),
            reduction="batchmean", log_target=True,
        )  # fmt: skip
        return kl * (T * T)

    def _teacher(self, batch: dict[str, Tensor], attention: bool, hidden: bool):
        """Teacher logits, hidden states (or None) and attention scores for ``batch``: from
        the cache where it has them, else from a live forward. Also says whether the hidden
        states came from the cache (real tokens only)."""
        from pruning.heads import encoder_attention_mask

        cache = self.cache if "example_index" in batch else None
        use_hidden_cache = hidden and cache is not None and cache.has_hidden
        if attention or cache is None or (hidden and not use_hidden_cache):
            with torch.no_grad():
                out, scores = _forward(self.teacher, batch, attention)
            return out.logits, out.hidden_states, scores, False
        index = batch["example_index"]
        states = None
        if use_hidden_cache:
            states = cache.teacher_hidden(index, encoder_attention_mask(self.teacher, batch))
        return cache.teacher_logits(index), states, [], use_hidden_cache

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        from pruning.heads import encoder_attention_mask

        config = self.config
        full = config.mode == "full"
        attention = full and config.attention_weight > 0
        hidden = full and config.hidden_weight > 0
        z_t, t_hidden, t_scores, cached_hidden = self._teacher(batch, attention, hidden)
        s_out, s_scores = _forward(student, batch, attention)
        z_s = s_out.logits
        terms: dict[str, Tensor] = {}
        if full:
            if attention:
                terms["attention"] = config.attention_weight * sum(
                    F.mse_loss(s, t_scores[self._teacher_layer(m + 1) - 1])
                    for m, s in enumerate(s_scores)
                )
            if hidden:
                mask = encoder_attention_mask(student, batch) if cached_hidden else None
                terms["hidden"] = config.hidden_weight * sum(
                    _hidden_mse(
                        h if self.projection is None else self.projection(h),
                        t_hidden[self._teacher_layer(m)],
                        mask,
                    )
                    for m, h in enumerate(s_out.hidden_states)
                )
            if config.logit_weight > 0:
                terms["logits"] = config.logit_weight * self._logit_term(z_s, z_t)
        else:
            labels = batch["labels"]
            if z_s.shape[-1] == 1:
                hard = F.mse_loss(z_s.squeeze(-1), labels.to(z_s.dtype))
            else:
                hard = F.cross_entropy(z_s, labels)
            terms["kd"] = config.alpha * self._logit_term(z_s, z_t)
            terms["hard"] = (1 - config.alpha) * hard
        if config.mixkd_weight > 0 and self.training:
            terms["mixkd"] = config.mixkd_weight * self._mixkd(student, batch)
        if not terms:
            raise ValueError("every distillation loss weight is 0: nothing to train on")
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        return sum(terms.values())

    def _mixkd(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """The MixKD term: the mode's logit distance on interpolated pairs of examples."""
        rows = batch["attention_mask"].shape[0]
        perm = torch.randperm(rows)
        alpha = torch.tensor(float(self.config.mixkd_alpha))
        lam = torch.distributions.Beta(alpha, alpha).sample((rows,))
        with torch.no_grad():
            z_t = self.teacher(**_mixed_inputs(self.teacher, batch, perm, lam)).logits
        z_s = student(**_mixed_inputs(student, batch, perm, lam)).logits
        return self._logit_term(z_s, z_t)


def _hidden_mse(student: Tensor, teacher: Tensor, mask: Tensor | None) -> Tensor:
    """MSE of two ``[rows, seq, h]`` hidden states; over real tokens only when ``mask``."""
    if mask is None:
        return F.mse_loss(student, teacher)
    weights = mask.to(student.dtype).unsqueeze(-1)
    return ((student - teacher) ** 2 * weights).sum() / (weights.sum() * student.shape[-1])
