"""Fisher-based mask search: which attention heads and FFN neurons to keep under a FLOPs budget.

Kwon, Kim, Mahoney, Hassoun, Keutzer and Gholami, "A Fast Post-Training Pruning Framework for
Transformers", NeurIPS 2022; the steps follow their code (github.com/WoosukKwon/
retraining-free-pruning, files cited per function):

1. a mask variable of 1.0 per head (``[layers, heads]``) and per FFN neuron (``[layers,
   intermediate]``), applied by hooks that multiply the input of the attention output
   projection (head by head) and of the FFN output projection (neuron by neuron);
2. the gradient of the task loss (the model's own head) with respect to the masks, one
   gradient per calibration batch; the diagonal Fisher information of a mask is the sum of its
   squared gradients (``prune/fisher.py``);
3. the search: heads and neurons ranked globally by Fisher information; for every head count
   the neurons that fit the rest of the FLOPs budget are the most important ones, and the
   split with the largest total Fisher information wins (``prune/search.py`` ``search_mac``);
4. rearrangement within each layer from the block-diagonal Fisher (the per-batch gradient
   vectors): greedily swap a kept mask for a pruned one when that lowers the squared norm of
   the summed gradients of the pruned set (``prune/rearrange.py``).

FLOPs are counted as the paper's ``efficiency/mac.py``, per example of ``seq_len`` tokens,
``d`` = hidden size, ``d_h`` = head size, and FLOPs = 2 x multiply-accumulates:

- per head: ``2 * (4 * seq_len * d * d_h + 2 * seq_len**2 * d_h)`` (Q, K, V and output
  projections; scores and context);
- per neuron: ``2 * (2 * seq_len * d)`` (a row of the FFN input and a column of its output);
- embeddings, LayerNorms, biases and the task head are left out, as in the paper.

The kept fraction is the ratio of the kept heads' and neurons' FLOPs to the dense model's, so
the factor 2 cancels; ``seq_len`` is the mean token count of the calibration examples (the
paper uses each task's mean training length, ``dataset/glue.py`` ``avg_seq_length``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pruning.shrink import encoder_layers  # masks search what shrink_model removes

__all__ = [
    "StructuredShape",
    "encoder_layers",
    "flops_fraction_of",
    "flops_per_head",
    "flops_per_neuron",
    "mask_gradients",
    "mask_hooks",
    "mean_tokens",
    "rearrange_layer",
    "rearrange_masks",
    "search_flops",
    "teacher_fraction",
]


@dataclass(frozen=True)
class StructuredShape:
    """The dimensions the FLOPs count and the masks need."""

    layers: int
    heads: int
    head_size: int
    hidden: int
    intermediate: int

    @classmethod
    def of(cls, config: object) -> StructuredShape:
        heads = int(config.num_attention_heads)
        hidden = int(config.hidden_size)
        return cls(
            int(config.num_hidden_layers), heads, hidden // heads, hidden,
            int(config.intermediate_size),
        )  # fmt: skip


def flops_per_head(seq_len: float, hidden: int, head_size: int) -> float:
    """FLOPs of one attention head on one ``seq_len``-token example (see the module doc)."""
    return 2.0 * (4 * seq_len * hidden * head_size + 2 * seq_len**2 * head_size)


def flops_per_neuron(seq_len: float, hidden: int) -> float:
    """FLOPs of one FFN neuron on one ``seq_len``-token example."""
    return 2.0 * (2 * seq_len * hidden)


def flops_fraction_of(
    head_mask: Tensor, neuron_mask: Tensor, shape: StructuredShape, seq_len: float
) -> float:
    """The kept FLOPs over the dense model's for masks ``[layers, heads]`` and ``[layers,
    intermediate]`` (nonzero entries are kept)."""
    per_head = flops_per_head(seq_len, shape.hidden, shape.head_size)
    per_neuron = flops_per_neuron(seq_len, shape.hidden)
    kept = int((head_mask != 0).sum()) * per_head + int((neuron_mask != 0).sum()) * per_neuron
    dense = shape.layers * (shape.heads * per_head + shape.intermediate * per_neuron)
    return kept / dense


@contextlib.contextmanager
def mask_hooks(model: nn.Module, head_mask: Tensor, neuron_mask: Tensor) -> Iterator[None]:
    """Multiply, in every layer ``i``, the attention output projection's input by
    ``head_mask[i]`` (each head's ``d_h`` context columns by its value) and the FFN output
    projection's input by ``neuron_mask[i]``: the same function as scaling the attention
    probabilities (Hugging Face's ``head_mask``), and the paper's ``utils/arch.py``
    ``apply_neuron_mask``. Gradients flow to the masks."""
    handles = []
    for index, layer in enumerate(encoder_layers(model)):
        heads = head_mask[index]

        def scale_heads(_module: nn.Module, args: tuple, heads: Tensor = heads) -> tuple:
            context = args[0]
            columns = heads.repeat_interleave(context.shape[-1] // heads.numel())
            return (context * columns.to(context.dtype), *args[1:])

        def scale_neurons(_module: nn.Module, args: tuple, index: int = index) -> tuple:
            return (args[0] * neuron_mask[index].to(args[0].dtype), *args[1:])

        handles.append(layer.attention.output.register_forward_pre_hook(scale_heads))
        handles.append(layer.output.register_forward_pre_hook(scale_neurons))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def mask_gradients(
    model: nn.Module, batches: Sequence[dict[str, Tensor]], shape: StructuredShape
) -> tuple[Tensor, Tensor]:
    """Gradients of the task loss with respect to all-ones masks, one per batch (the batches
    carry labels): ``([batches, layers, heads], [batches, layers, intermediate])``, float64.
    The model's own parameters get no gradients (``prune/fisher.py`` ``collect_mask_grads``)."""
    head_mask = torch.ones(shape.layers, shape.heads, requires_grad=True)
    neuron_mask = torch.ones(shape.layers, shape.intermediate, requires_grad=True)
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    head_grads, neuron_grads = [], []
    try:
        with mask_hooks(model, head_mask, neuron_mask):
            for batch in batches:
                if "labels" not in batch:
                    raise ValueError("Fisher calibration batches need labels (the task loss)")
                loss = model(**batch).loss
                head, neuron = torch.autograd.grad(loss, (head_mask, neuron_mask))
                head_grads.append(head.detach().to(torch.float64))
                neuron_grads.append(neuron.detach().to(torch.float64))
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
        model.train(was_training)
    return torch.stack(head_grads), torch.stack(neuron_grads)


def mean_tokens(model: nn.Module, batches: Sequence[dict[str, Tensor]]) -> float:
    """Mean kept (non-padding) tokens per encoded sequence of ``batches``."""
    from pruning.heads import encoder_attention_mask

    tokens = rows = 0
    for batch in batches:
        mask = encoder_attention_mask(model, batch)
        if mask is None:
            mask = torch.ones_like(batch["input_ids"])
        tokens += int(mask.sum())
        rows += int(mask.shape[0])
    if rows == 0:
        raise ValueError("no calibration sequences")
    return tokens / rows


def search_flops(
    head_fisher: Tensor,
    neuron_fisher: Tensor,
    shape: StructuredShape,
    seq_len: float,
    fraction: float,
) -> tuple[Tensor, Tensor]:
    """0/1 masks keeping at most ``fraction`` of the FLOPs with the largest summed Fisher
    information (``prune/search.py`` ``search_mac``): heads and neurons ranked globally; for
    ``h`` = 0 .. all heads, the top ``h`` heads and as many top neurons as the remaining
    budget holds (rounded down). The paper's loop starts at one head and clamps a negative
    neuron budget to zero, which can overshoot the budget by heads alone; here a head count
    that does not fit ends the loop, so the kept FLOPs never exceed the budget. A fraction
    of 1 keeps everything."""
    if not (isinstance(fraction, float | int) and 0 < fraction <= 1):
        raise ValueError(f"FLOPs fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1:
        return torch.ones(shape.layers, shape.heads), torch.ones(shape.layers, shape.intermediate)
    per_head = flops_per_head(seq_len, shape.hidden, shape.head_size)
    per_neuron = flops_per_neuron(seq_len, shape.hidden)
    budget = fraction * shape.layers * (shape.heads * per_head + shape.intermediate * per_neuron)
    head_values, head_order = head_fisher.flatten().sort(descending=True, stable=True)
    neuron_values, neuron_order = neuron_fisher.flatten().sort(descending=True, stable=True)
    head_cumulative = torch.cat([head_values.new_zeros(1), head_values.cumsum(0)])
    neuron_cumulative = torch.cat([neuron_values.new_zeros(1), neuron_values.cumsum(0)])
    best, kept_heads, kept_neurons = -math.inf, 0, 0
    for heads in range(head_values.numel() + 1):
        room = budget - heads * per_head
        if room < 0:
            break
        neurons = min(int(room // per_neuron), neuron_values.numel())
        total = float(head_cumulative[heads] + neuron_cumulative[neurons])
        if total > best:
            best, kept_heads, kept_neurons = total, heads, neurons
    head_mask = torch.zeros(head_values.numel())
    head_mask[head_order[:kept_heads]] = 1.0
    neuron_mask = torch.zeros(neuron_values.numel())
    neuron_mask[neuron_order[:kept_neurons]] = 1.0
    return (
        head_mask.reshape(shape.layers, shape.heads),
        neuron_mask.reshape(shape.layers, shape.intermediate),
    )


def teacher_fraction(fraction: float) -> float:
    """The FLOPs fraction of the masks the tuning reconstructs: ``sqrt(fraction)``, the first
    step of the paper code's two-step schedule (``main.py``: ``get_pruning_schedule(target,
    num_iter=2)[0]``, ``utils/schedule.py``)."""
    return math.sqrt(fraction)


def rearrange_layer(mask: Tensor, grads: Tensor) -> Tensor:
    """One layer's mask ``[n]`` rearranged from its per-batch gradients ``grads`` ``[batches,
    n]`` (``prune/rearrange.py`` ``greedy_rearrange``): start from the lowest-Fisher entries
    as the pruned set; for each of the others in rising Fisher order, add it and drop the
    entry whose removal leaves the smallest squared norm of the set's summed gradients. The
    kept count is unchanged."""
    kept = int((mask != 0).sum())
    pruned = mask.numel() - kept
    if kept == 0 or pruned == 0:
        return (mask != 0).to(torch.float32)
    vectors = grads.T.to(torch.float64)  # [n, batches]
    order = vectors.pow(2).sum(dim=1).sort(stable=True).indices.tolist()
    chosen = order[:pruned]
    for index in order[pruned:]:
        chosen.append(index)
        group = vectors[chosen]
        leftover = (group.sum(dim=0) - group).pow(2).sum(dim=1)
        del chosen[int(leftover.argmin())]
    new = torch.ones(mask.numel())
    new[chosen] = 0.0
    return new


def rearrange_masks(mask: Tensor, grads: Tensor) -> Tensor:
    """:func:`rearrange_layer` on every layer of ``mask`` ``[layers, n]`` with ``grads``
    ``[batches, layers, n]`` (``prune/rearrange.py`` ``rearrange_mask``)."""
    return torch.stack([rearrange_layer(mask[i], grads[:, i]) for i in range(mask.shape[0])])
