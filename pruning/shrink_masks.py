"""Shrink a masked model: remove every head and FFN neuron its masks leave without effect.

A pruned head or FFN neuron is only dead weight until it is removed (:mod:`pruning.shrink`).
:func:`shrink_from_masks` finds them from the keep-masks, exactly:

- a head whose attention-output columns are all pruned contributes nothing;
- a head whose value rows are all pruned outputs its value bias at every position (the
  softmax weights sum to 1), a constant folded into the attention-output bias;
- an FFN neuron whose output-projection column is all pruned contributes nothing;
- an FFN neuron whose intermediate row is all pruned outputs ``act(bias)`` at every
  position, a constant folded into the output-projection bias.

So the shrunk model computes what the masked model computes (to float rounding), whatever
pattern produced the masks: ``head:H`` (:mod:`pruning.head_groups`) removes heads, ``row`` on
the FFN removes neurons, and unstructured masks remove whatever they happen to empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pruning.shrink import (
    ShrinkError,
    StructuredKeep,
    check_family,
    encoder_layers,
    full_keep,
    shrink_model,
    structured_keep_of,
)
from pruning.shrunk_modules import NoHeadsSelfAttention, NoUnits

__all__ = ["shrink_from_masks"]

_Q, _K, _V = "attention.self.query", "attention.self.key", "attention.self.value"
_O, _IN, _OUT = "attention.output.dense", "intermediate.dense", "output.dense"


def _bool(name: str, mask: Any) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ShrinkError(f"mask {name!r} must be 2-D [out, in], got shape {list(array.shape)}")
    return array != 0


def _fold_masks(model: nn.Module, masks: Mapping[str, np.ndarray]) -> None:
    """``W <- W * M`` for every mask (the removals below assume pruned weights are zero)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            if name not in params:
                raise ShrinkError(f"mask {name!r} names no parameter of the model")
            weight = params[name]
            if tuple(weight.shape) != mask.shape:
                raise ShrinkError(
                    f"mask {name!r} has shape {list(mask.shape)}, weight has {list(weight.shape)}"
                )
            weight.mul_(torch.from_numpy(mask).to(device=weight.device, dtype=weight.dtype))


def _dead_heads(layer: nn.Module, masks: Mapping[str, np.ndarray], prefix: str, size: int):
    """Positions of the layer's current heads to remove, folding value biases as it goes."""
    attention = layer.attention
    if isinstance(attention.self, NoHeadsSelfAttention):
        return set()
    count = attention.self.num_attention_heads
    out_mask = masks.get(f"{prefix}{_O}.weight")
    value_mask = masks.get(f"{prefix}{_V}.weight")
    dead = set()
    for head in range(count):
        cut = slice(head * size, (head + 1) * size)
        if out_mask is not None and not out_mask[:, cut].any():
            dead.add(head)
        elif value_mask is not None and not value_mask[cut, :].any():
            with torch.no_grad():
                dense, value = attention.output.dense, attention.self.value
                dense.bias += dense.weight[:, cut] @ value.bias[cut]
            dead.add(head)
    return dead


def _dead_neurons(layer: nn.Module, masks: Mapping[str, np.ndarray], prefix: str):
    """Positions of the layer's current FFN neurons to remove, folding constant ones."""
    if isinstance(layer.intermediate.dense, NoUnits):
        return set()
    out_mask = masks.get(f"{prefix}{_OUT}.weight")
    in_mask = masks.get(f"{prefix}{_IN}.weight")
    dead = set()
    if out_mask is not None:
        dead |= set(np.flatnonzero(~out_mask.any(axis=0)).tolist())
    if in_mask is not None:
        constant = sorted(set(np.flatnonzero(~in_mask.any(axis=1)).tolist()) - dead)
        if constant:
            index = torch.tensor(constant, dtype=torch.long)
            with torch.no_grad():
                dense = layer.output.dense
                act = layer.intermediate.intermediate_act_fn(layer.intermediate.dense.bias[index])
                dense.bias += dense.weight[:, index] @ act
            dead |= set(constant)
    return dead


def _sliced(mask: np.ndarray, positions: list[int], axis: int, size: int = 1) -> np.ndarray:
    index = [p * size + d for p in positions for d in range(size)]
    return np.take(mask, index, axis=axis)


def shrink_from_masks(
    model: nn.Module, masks: Mapping[str, Tensor | np.ndarray]
) -> tuple[StructuredKeep, dict[str, Tensor]]:
    """Fold ``masks`` into ``model``, remove every head and FFN neuron they leave without
    effect (see the module docstring), and return what was kept (original indices) and the
    masks at the new shapes (masks of matrices removed whole are dropped)."""
    config = model.config
    check_family(config)
    arrays = {name: _bool(name, mask) for name, mask in masks.items()}
    _fold_masks(model, arrays)
    current = structured_keep_of(config) or full_keep(config)
    layers = encoder_layers(model)
    prefix_of = f"{model.base_model_prefix}.encoder.layer.{{}}."
    size = config.hidden_size // config.num_attention_heads
    heads, neurons, positions = [], [], []
    for i, layer in enumerate(layers):
        prefix = prefix_of.format(i)
        dead_heads = _dead_heads(layer, arrays, prefix, size)
        dead_neurons = _dead_neurons(layer, arrays, prefix)
        head_pos = [p for p in range(len(current.heads[i])) if p not in dead_heads]
        neuron_pos = [p for p in range(len(current.neurons[i])) if p not in dead_neurons]
        heads.append(tuple(current.heads[i][p] for p in head_pos))
        neurons.append(tuple(current.neurons[i][p] for p in neuron_pos))
        positions.append((head_pos, neuron_pos))
    keep = StructuredKeep(heads=tuple(heads), neurons=tuple(neurons))
    shrink_model(model, keep)
    out: dict[str, Tensor] = {}
    for name, mask in arrays.items():
        sliced = mask
        for i, (head_pos, neuron_pos) in enumerate(positions):
            prefix = prefix_of.format(i)
            if name in {f"{prefix}{m}.weight" for m in (_Q, _K, _V)}:
                sliced = _sliced(mask, head_pos, 0, size)
            elif name == f"{prefix}{_O}.weight":
                sliced = _sliced(mask, head_pos, 1, size)
            elif name == f"{prefix}{_IN}.weight":
                sliced = _sliced(mask, neuron_pos, 0)
            elif name == f"{prefix}{_OUT}.weight":
                sliced = _sliced(mask, neuron_pos, 1)
        if sliced.size:
            out[name] = torch.from_numpy(np.ascontiguousarray(sliced))
    return keep, out
