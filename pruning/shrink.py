"""Structured shrinking: physically remove pruned attention heads and FFN neurons.

Masks make nothing smaller; MLPruning's head and row levels (Yao et al., 2021,
arXiv:2105.14636, section 3) do, because a pruned head drops its Q, K and V rows and its
attention-output columns, and a pruned FFN row drops the matching output-projection column.
:func:`shrink_model` slices those ``nn.Linear`` modules in place and records the kept
original indices in the config (``cosim_kept_heads``, ``cosim_kept_neurons``), so a saved
model can be rebuilt at its new shapes (:func:`rebuild_shrunk`).

transformers 5 removed ``prune_heads`` and ``config.pruned_heads``, so the slicing is done
here; the per-layer head count is the only attribute ``BertSelfAttention.forward`` reads
besides ``attention_head_size`` (it reshapes with ``-1`` heads). A layer with no heads (or no
neurons) keeps running: its sublayer adds only the output projection's bias before the
residual LayerNorm, which is what the masked unshrunk model computes.

BERT and RoBERTa (and MiniLM, a BERT) share these modules; DistilBERT is refused. The
record itself (:class:`StructuredKeep`, its checks, :func:`structured_keep_of`) is plain data
in :mod:`workloads.structure`, torch-free for the simulator, and re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workloads.structure import (
    KEPT_HEADS_KEY,
    KEPT_NEURONS_KEY,
    SHRINKABLE_MODEL_TYPES,
    ShrinkError,
    StructuredKeep,
    check_family,
    check_keep,
    full_keep,
    structured_keep_of,
    unshrunk_config,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "KEPT_HEADS_KEY",
    "KEPT_NEURONS_KEY",
    "SHRINKABLE_MODEL_TYPES",
    "ShrinkError",
    "StructuredKeep",
    "check_family",
    "check_keep",
    "encoder_layers",
    "full_keep",
    "load_shrunk_weights",
    "rebuild_shrunk",
    "shrink_model",
    "structured_keep_of",
    "unshrunk_config",
]


# ----------------------------------------------------------------------------- model side


def encoder_layers(model: nn.Module) -> Sequence[nn.Module]:
    """The encoder's layers (``<base>.encoder.layer``) of a model family that can shrink, or
    :class:`ShrinkError` naming what it is instead."""
    check_family(getattr(model, "config", None))
    base = getattr(model, "base_model", model)
    try:
        return base.encoder.layer
    except AttributeError:
        raise ShrinkError(
            f"{type(model).__name__} has no encoder.layer list: expected a BERT or RoBERTa model"
        ) from None


def _slice_linear(linear: nn.Module, index: torch.Tensor, dim: int) -> nn.Module:
    """A new ``nn.Linear`` keeping ``index`` along ``dim`` of its weight (0 rows, 1 columns)."""
    import torch
    from torch import nn

    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = linear.bias.detach().clone() if linear.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias.index_select(0, index).clone()
    out_f, in_f = weight.shape
    new = nn.Linear(in_f, out_f, bias=bias is not None, device=weight.device, dtype=weight.dtype)
    new.weight.requires_grad_(linear.weight.requires_grad)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def _positions(
    field: str, layer: int, kept: tuple[int, ...], current: tuple[int, ...]
) -> list[int]:
    """Where each original index of ``kept`` sits among the ``current`` ones."""
    where = {index: pos for pos, index in enumerate(current)}
    gone = [i for i in kept if i not in where]
    if gone:
        raise ShrinkError(f"{field}[{layer}] keeps index {gone[0]}, already removed from the model")
    return [where[i] for i in kept]


def _shrink_attention(attention: nn.Module, positions: list[int], head_size: int) -> None:
    import torch

    from pruning.shrunk_modules import BiasOnly, NoHeadsSelfAttention

    self_attention, output = attention.self, attention.output
    if len(positions) == 0:
        attention.self = NoHeadsSelfAttention()
        output.dense = BiasOnly(output.dense.bias)
        return
    rows = torch.tensor(
        [p * head_size + d for p in positions for d in range(head_size)], dtype=torch.long
    )
    for name in ("query", "key", "value"):
        setattr(self_attention, name, _slice_linear(getattr(self_attention, name), rows, 0))
    output.dense = _slice_linear(output.dense, rows, 1)
    self_attention.num_attention_heads = len(positions)
    self_attention.all_head_size = len(positions) * head_size


def _shrink_ffn(layer: nn.Module, positions: list[int]) -> None:
    import torch

    from pruning.shrunk_modules import BiasOnly, NoUnits

    if len(positions) == 0:
        layer.intermediate.dense = NoUnits()
        layer.output.dense = BiasOnly(layer.output.dense.bias)
        return
    index = torch.tensor(positions, dtype=torch.long)
    layer.intermediate.dense = _slice_linear(layer.intermediate.dense, index, 0)
    layer.output.dense = _slice_linear(layer.output.dense, index, 1)


def shrink_model(model: nn.Module, keep: StructuredKeep) -> None:
    """Physically remove pruned heads (their Q/K/V rows and biases, attention-output columns)
    and FFN neurons (intermediate rows and bias, output columns) in place; record the kept
    indices in model.config so a saved model reloads at its new shapes.

    Indices are the original model's. A model shrunk before is shrunk further: ``keep`` must
    then be a subset of what it still holds (ShrinkError naming the index otherwise)."""
    config = model.config
    keep = check_keep(keep, config)
    current = structured_keep_of(config) or full_keep(config)
    layers = encoder_layers(model)
    if len(layers) != len(keep.heads):
        raise ShrinkError(
            f"heads has {len(keep.heads)} layer(s) but the model has {len(layers)} encoder layers"
        )
    head_size = config.hidden_size // config.num_attention_heads
    plans = [
        (
            _positions("heads", i, keep.heads[i], current.heads[i]),
            _positions("neurons", i, keep.neurons[i], current.neurons[i]),
        )
        for i in range(len(layers))
    ]
    for i, (layer, (head_pos, neuron_pos)) in enumerate(zip(layers, plans, strict=True)):
        if head_pos != list(range(len(current.heads[i]))):  # else every head stays
            _shrink_attention(layer.attention, head_pos, head_size)
        if neuron_pos != list(range(len(current.neurons[i]))):
            _shrink_ffn(layer, neuron_pos)
    setattr(config, KEPT_HEADS_KEY, [list(h) for h in keep.heads])
    setattr(config, KEPT_NEURONS_KEY, [list(n) for n in keep.neurons])


def rebuild_shrunk(config: Any, build: Any) -> nn.Module:
    """The model ``build(config)`` makes, shrunk to the shapes ``config`` records.

    Plain ``from_pretrained`` cannot load a shrunk checkpoint: a BERT config has one head
    count and one intermediate size for every layer, and transformers 5 dropped
    ``pruned_heads``, so the model is built full and then shrunk; its weights are random until
    the checkpoint's are loaded (:func:`load_shrunk_weights`)."""
    keep = structured_keep_of(config)
    if keep is None:
        raise ShrinkError("config records no shrink (cosim_kept_heads/cosim_kept_neurons)")
    model = build(unshrunk_config(config))
    shrink_model(model, keep)
    return model


def load_shrunk_weights(model: nn.Module, weights_file: Any) -> None:
    """Load a shrunk checkpoint's ``model.safetensors`` into ``model`` (built by
    :func:`rebuild_shrunk`): every encoder and embedding tensor must be there at the model's
    shape (ShrinkError naming the tensor otherwise); head tensors (pooler, classifier) load
    when their shape matches and otherwise keep their fresh initialisation, as
    ``from_pretrained(..., ignore_mismatched_sizes=True)`` does for a new task head."""
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(weights_file))
    own = model.state_dict()
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    in_base = [name for name in own if name.startswith(prefix)]
    for name in in_base:
        if name not in saved:
            raise ShrinkError(f"{weights_file}: tensor {name} is missing from the checkpoint")
        if tuple(saved[name].shape) != tuple(own[name].shape):
            raise ShrinkError(
                f"{weights_file}: tensor {name} has shape {list(saved[name].shape)} but the "
                f"shrunk model holds {list(own[name].shape)}"
            )
    extra = [n for n in saved if n.startswith(prefix) and n not in own]
    if extra:
        raise ShrinkError(
            f"{weights_file}: tensor {extra[0]} is not in the shrunk model (shapes recorded in "
            "config.json disagree with the weights)"
        )
    chosen = {
        name: tensor
        for name, tensor in saved.items()
        if name in own and tuple(tensor.shape) == tuple(own[name].shape)
    }
    with torch.no_grad():
        model.load_state_dict(chosen, strict=False)
