"""Measured input-activation density of a model's linear layers, for datapaths that skip zero
activations (``workloads.attach_activations``, ``--activations measured``).

Each linear layer's input is recorded with a forward pre-hook while the model runs real
inputs; only the tokens the attention mask keeps count (padding is not part of the workload
the simulator builds). The density is the nonzero fraction of those inputs. In GELU BERT
every linear input comes out of LayerNorm or GELU, whose outputs are almost never exactly
zero, so the measured densities are near 1.0: skipping zero activations buys nothing there,
unlike the ReLU networks EIE was measured on. That is why ``dense`` is the default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from pruning.targets import prunable_weights

__all__ = ["count_inputs", "measure_input_density"]

# Linear layers whose weights a workload names (encoder, pooler, classifier).
_SIMULATED = ("encoder", "pooler", "classifier")
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def measure_input_density(
    model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]
) -> dict[str, float]:
    """Weight name -> nonzero fraction of that linear layer's inputs over ``batches``
    (dicts of ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``).

    Raises ValueError when ``batches`` holds no token at all."""
    nonzero, total = count_inputs(model, batches)
    if not any(total.values()):
        raise ValueError("no tokens to measure: the batches were empty")
    return {name: nonzero[name] / total[name] for name in total if total[name]}


def count_inputs(
    model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]
) -> tuple[dict[str, int], dict[str, int]]:
    """(nonzero input values, input values) of each simulated linear layer, by weight name,
    over the tokens the attention masks keep."""
    weights = prunable_weights(model, include=_SIMULATED)
    modules = {f"{name}.weight": module for name, module in model.named_modules()
               if isinstance(module, nn.Linear)}  # fmt: skip
    nonzero = dict.fromkeys(weights, 0)
    total = dict.fromkeys(weights, 0)
    keep: list[torch.Tensor] = []  # the current batch's kept-token mask, [batch, seq]

    def recorder(name: str):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0]
            if x.dim() == 3:  # [batch, seq, features]: real tokens only
                x = x[keep[0][:, : x.shape[1]]]
            nonzero[name] += int(torch.count_nonzero(x))
            total[name] += x.numel()

        return hook

    handles = [modules[name].register_forward_pre_hook(recorder(name)) for name in weights]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for batch in batches:
                inputs = {key: batch[key] for key in _MODEL_INPUTS if key in batch}
                keep[:] = [inputs["attention_mask"].bool()]
                model(**inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return nonzero, total
