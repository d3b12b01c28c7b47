"""The ``fisher-mask`` method end to end: Fisher search, rearrangement, tuning, folding.

Kwon et al., "A Fast Post-Training Pruning Framework for Transformers" (NeurIPS 2022), in
the order of their ``main.py`` (github.com/WoosukKwon/retraining-free-pruning): mask
gradients on the calibration batches (:func:`pruning.fisher.mask_gradients`), the FLOPs
search at the target and at its square root (the tuning's teacher), per-layer rearrangement
of the target's masks, least-squares tuning (:mod:`pruning.mask_tuning`), then the tuned
values folded into the weights. The physical removal of the pruned heads and neurons is the
caller's (:func:`pruning.shrink.shrink_model`), from :attr:`FisherMasks.kept_heads` and
:attr:`FisherMasks.kept_neurons`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from pruning.fisher import (
    StructuredShape,
    flops_fraction_of,
    mask_gradients,
    mean_tokens,
    rearrange_masks,
    search_flops,
    teacher_fraction,
)
from pruning.mask_tuning import fold_masks, tune_masks

__all__ = ["FisherMasks", "check_flops_fraction", "fisher_mask_prune"]


def check_flops_fraction(fraction: object) -> float:
    """``fraction`` as a float in (0, 1], else ValueError naming the expected form."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValueError(f"flops_fraction must be a number in (0, 1], got {fraction!r}")
    if not 0 < float(fraction) <= 1:
        raise ValueError(f"flops_fraction must be in (0, 1] (kept share of FLOPs), got {fraction}")
    return float(fraction)


@dataclass(frozen=True)
class FisherMasks:
    """The tuned masks (``[layers, heads]``, ``[layers, intermediate]``; zero = pruned) and
    what the run measured."""

    head_mask: Tensor
    neuron_mask: Tensor
    record: dict[str, Any]

    @property
    def kept_heads(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(row.nonzero().flatten().tolist()) for row in self.head_mask)

    @property
    def kept_neurons(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(row.nonzero().flatten().tolist()) for row in self.neuron_mask)


def fisher_mask_prune(
    model: nn.Module,
    batches: Sequence[dict[str, Tensor]],
    flops_fraction: float,
    cls_head: bool,
    tune: bool = True,
) -> FisherMasks:
    """Find, rearrange and tune head and neuron masks keeping ``flops_fraction`` of the
    encoder's FLOPs, from labelled calibration ``batches``, and fold them into ``model``'s
    weights (pruned heads and neurons become zeros; see :func:`pruning.mask_tuning.
    fold_masks`). ``cls_head``: the task head reads the [CLS] token only."""
    fraction = check_flops_fraction(flops_fraction)
    if not batches:
        raise ValueError("no calibration batches")
    started = time.perf_counter()
    shape = StructuredShape.of(model.config)
    seq_len = mean_tokens(model, batches)
    head_grads, neuron_grads = mask_gradients(model, batches, shape)
    head_fisher, neuron_fisher = head_grads.pow(2).sum(0), neuron_grads.pow(2).sum(0)
    gradient_s = time.perf_counter() - started
    teacher = search_flops(head_fisher, neuron_fisher, shape, seq_len, teacher_fraction(fraction))
    heads, neurons = search_flops(head_fisher, neuron_fisher, shape, seq_len, fraction)
    heads = rearrange_masks(heads, head_grads)
    neurons = rearrange_masks(neurons, neuron_grads)
    search_s = time.perf_counter() - started - gradient_s
    tuning: dict[str, Any] = {"skipped": True}
    if tune:
        heads, neurons, tuning = tune_masks(model, batches, teacher, (heads, neurons), cls_head)
    fold_masks(model, heads, neurons)
    total_s = time.perf_counter() - started
    record = {
        "kind": "post-training structured (Fisher mask search)",
        "flops_fraction_target": fraction,
        "flops_fraction_kept": flops_fraction_of(heads, neurons, shape, seq_len),
        "teacher_flops_fraction": teacher_fraction(fraction),
        "flops_seq_len": seq_len,
        "flops_formula": "per head 2*(4*s*d*d_h + 2*s^2*d_h), per neuron 2*(2*s*d); "
        "s = mean calibration tokens",
        "gradient_batches": int(head_grads.shape[0]),
        "kept_heads": int((heads != 0).sum()),
        "total_heads": shape.layers * shape.heads,
        "kept_neurons": int((neurons != 0).sum()),
        "total_neurons": shape.layers * shape.intermediate,
        "kept_heads_per_layer": [int(n) for n in (heads != 0).sum(dim=1)],
        "kept_neurons_per_layer": [int(n) for n in (neurons != 0).sum(dim=1)],
        "tuning": tuning,
        "gradient_seconds": round(gradient_s, 3),
        "search_seconds": round(search_s, 3),
        "method_seconds": round(total_s, 3),
    }
    return FisherMasks(heads, neurons, record)
