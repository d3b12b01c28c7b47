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

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from pruning.targets import prunable_weights
from pruning.train import TEXT_KEYS, _batch

__all__ = ["count_inputs", "measure_input_density", "measure_task_densities"]

DEFAULT_EXAMPLES = 64  # dev examples a measurement runs (seeded subset)
MAX_EXAMPLES = 4096
_BATCH = 16

# Linear layers whose weights a workload names (encoder, pooler, classifier).
_SIMULATED = ("encoder", "pooler", "classifier")


def measure_input_density(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    run: Callable[[Mapping[str, torch.Tensor]], object] | None = None,
) -> dict[str, float]:
    """Weight name -> nonzero fraction of that linear layer's inputs over ``batches``
    (dicts of ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``), each
    batch run by ``run`` (default: ``model(**batch)``).

    Raises ValueError when ``batches`` holds no token at all."""
    nonzero, total = count_inputs(model, batches, run)
    if not any(total.values()):
        raise ValueError("no tokens to measure: the batches were empty")
    return {name: nonzero[name] / total[name] for name in total if total[name]}


def count_inputs(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    run: Callable[[Mapping[str, torch.Tensor]], object] | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """(nonzero input values, input values) of each simulated linear layer, by weight name,
    over the tokens the attention masks keep; ``run`` runs one batch (default
    ``model(**batch)``)."""
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
                inputs = {key: batch[key] for key in TEXT_KEYS if key in batch}
                keep[:] = [inputs["attention_mask"].bool()]
                if run is None:
                    model(**inputs)
                else:
                    run(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return nonzero, total


def measure_task_densities(
    source: str | Path,
    task: str,
    seq_len: int,
    *,
    examples: int = DEFAULT_EXAMPLES,
    data_dir: str | Path | None = None,
    head: str | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Weight name -> input density of each simulated linear layer of ``source`` (a model
    directory, artifact or preset) on ``examples`` rows of ``task``'s dev split (a seeded
    subset), tokenized at ``seq_len`` as training does. Under a mean or bi-encoder head the
    encoder runs each sentence on its own, so the task layer is not measured (it stays
    dense)."""
    from pruning.glue import get_task, load_split
    from pruning.models import load_model
    from pruning.tokenize import encode, load_tokenizer

    if isinstance(examples, bool) or not isinstance(examples, int) or not (
        1 <= examples <= MAX_EXAMPLES
    ):
        raise ValueError(
            f"activation examples {examples!r}: expected a whole number from 1 to {MAX_EXAMPLES}"
        )
    glue = get_task(task)
    loaded = load_model(source, glue.num_labels, seed=seed, head=head,
                        score_scale=glue.max_score)  # fmt: skip
    tokenizer, _ = load_tokenizer(loaded.weights_dir, loaded.model.config.vocab_size)
    split = load_split(glue, "dev", data_dir, examples, seed)
    encoded = encode(split, tokenizer, seq_len, separate_pair=loaded.head == "bi-encoder")
    model = loaded.model
    if loaded.head == "cls":
        return measure_input_density(model, _batches(encoded, ""))
    sentences = ("", "_b") if "input_ids_b" in encoded else ("",)
    batches = (batch for suffix in sentences for batch in _batches(encoded, suffix))
    return measure_input_density(model, batches, lambda inputs: model.base_model(**inputs))


def _batches(encoded: Mapping[str, torch.Tensor], suffix: str) -> Iterator[dict]:
    """Batches of ``_BATCH`` rows of one sentence's columns (``suffix`` '' or '_b'), each cut
    to its longest row as training cuts them (``pruning.train._batch``), under the model's
    own input names."""
    keys = {key + suffix for key in TEXT_KEYS}
    rows = encoded["attention_mask" + suffix].shape[0]
    for start in range(0, rows, _BATCH):
        batch = _batch(encoded, torch.arange(start, min(rows, start + _BATCH)), keys)
        yield {name.removesuffix(suffix) if suffix else name: value
               for name, value in batch.items()}  # fmt: skip
