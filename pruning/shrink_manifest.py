"""The ``structure`` block of a shrunk model's artifact manifest, written and checked.

A shrunk model (:mod:`pruning.shrink`) records the heads and FFN neurons it keeps in its
config; the manifest repeats that record beside the per-layer sizes it implies, so a reader
of ``manifest.json`` alone sees what the model holds:

- ``kept_heads`` / ``kept_neurons``: per encoder layer, the original indices kept;
- ``heads_per_layer`` / ``intermediate_per_layer``: how many of each;
- ``num_attention_heads`` / ``intermediate_size`` / ``hidden_size``: the original shapes
  the indices refer to.

:func:`check_structure` is what :func:`pruning.artifact.load_artifact` runs: the block's
fields, its agreement with the artifact's ``config.json`` and with every encoder mask's
shape. Torch-free (the simulator's loader uses it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from workloads.structure import (
    KEPT_HEADS_KEY,
    KEPT_NEURONS_KEY,
    ShrinkError,
    StructuredKeep,
    structured_keep_of,
)

__all__ = ["STRUCTURE_KEY", "check_structure", "structure_block"]

STRUCTURE_KEY = "structure"
_FIELDS = (
    "kept_heads",
    "kept_neurons",
    "heads_per_layer",
    "intermediate_per_layer",
    "num_attention_heads",
    "intermediate_size",
    "hidden_size",
)
# Encoder weights by their path inside a layer (BERT and RoBERTa spell them alike).
_LAYER_WEIGHT = re.compile(
    r"encoder\.layer\.(\d+)\.(attention\.self\.(?:query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)\.weight$"
)


def structure_block(config: Any) -> dict[str, Any] | None:
    """The manifest's ``structure`` block for a model with ``config`` (None: not shrunk)."""
    keep = structured_keep_of(config)
    if keep is None:
        return None
    return {
        "kept_heads": [list(h) for h in keep.heads],
        "kept_neurons": [list(n) for n in keep.neurons],
        "heads_per_layer": list(keep.head_counts()),
        "intermediate_per_layer": list(keep.intermediate_sizes()),
        "num_attention_heads": int(config.num_attention_heads),
        "intermediate_size": int(config.intermediate_size),
        "hidden_size": int(config.hidden_size),
    }


def _keep_of(where: str, block: Mapping[str, Any], model_type: str) -> StructuredKeep:
    """The block's kept indices, checked as a config record of the same shapes would be."""
    fake_config = {
        "model_type": model_type,
        "num_hidden_layers": len(block["kept_heads"]),
        "num_attention_heads": block["num_attention_heads"],
        "intermediate_size": block["intermediate_size"],
        KEPT_HEADS_KEY: block["kept_heads"],
        KEPT_NEURONS_KEY: block["kept_neurons"],
    }
    try:
        keep = structured_keep_of(fake_config)
    except ShrinkError as error:
        text = str(error).replace(KEPT_HEADS_KEY, "kept_heads")
        text = text.replace(KEPT_NEURONS_KEY, "kept_neurons").replace("config field ", "")
        raise ShrinkError(f"{where}: {STRUCTURE_KEY}.{text}") from None
    assert keep is not None
    return keep


def _expected_shapes(keep: StructuredKeep, hidden: int, head_size: int, layer: int) -> dict:
    width = len(keep.heads[layer]) * head_size
    inter = len(keep.neurons[layer])
    return {
        "attention.self.query": (width, hidden),
        "attention.self.key": (width, hidden),
        "attention.self.value": (width, hidden),
        "attention.output.dense": (hidden, width),
        "intermediate.dense": (inter, hidden),
        "output.dense": (hidden, inter),
    }


def check_structure(
    where: str,
    block: Any,
    masks: Mapping[str, np.ndarray],
    config: Mapping[str, Any] | None,
) -> StructuredKeep:
    """The manifest's ``structure`` block checked (fields, the artifact's ``config.json``
    record when ``config`` is given, every encoder mask's shape); ShrinkError naming the
    field otherwise. Returns the kept indices."""
    if not isinstance(block, Mapping):
        raise ShrinkError(f"{where}: field {STRUCTURE_KEY} must be an object")
    missing = [key for key in _FIELDS if key not in block]
    if missing:
        raise ShrinkError(f"{where}: {STRUCTURE_KEY} lacks field(s) {', '.join(missing)}")
    hidden, heads = block["hidden_size"], block["num_attention_heads"]
    for name in ("hidden_size", "num_attention_heads", "intermediate_size"):
        value = block[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ShrinkError(f"{where}: {STRUCTURE_KEY}.{name} {value!r} is not a positive int")
    if hidden % heads:
        raise ShrinkError(
            f"{where}: {STRUCTURE_KEY}.hidden_size {hidden} is not a multiple of "
            f"num_attention_heads {heads}"
        )
    if not isinstance(block["kept_heads"], list) or not block["kept_heads"]:
        raise ShrinkError(f"{where}: {STRUCTURE_KEY}.kept_heads must be a list, one per layer")
    model_type = str((config or {}).get("model_type") or "bert")
    keep = _keep_of(where, block, model_type)
    for field, counts in (
        ("heads_per_layer", keep.head_counts()),
        ("intermediate_per_layer", keep.intermediate_sizes()),
    ):
        if block[field] != list(counts):
            raise ShrinkError(
                f"{where}: {STRUCTURE_KEY}.{field} is {block[field]!r} but the kept indices "
                f"give {list(counts)}"
            )
    if config is not None:
        recorded = (config.get(KEPT_HEADS_KEY), config.get(KEPT_NEURONS_KEY))
        if recorded != (block["kept_heads"], block["kept_neurons"]):
            raise ShrinkError(
                f"{where}: {STRUCTURE_KEY} kept_heads/kept_neurons disagree with "
                f"config.json's {KEPT_HEADS_KEY}/{KEPT_NEURONS_KEY}"
            )
    head_size = hidden // heads
    for name, mask in masks.items():
        match = _LAYER_WEIGHT.search(name)
        if match is None:
            continue
        layer = int(match.group(1))
        if layer >= len(keep.heads):
            raise ShrinkError(
                f"{where}: mask {name!r} is in layer {layer} but {STRUCTURE_KEY} lists "
                f"{len(keep.heads)} layers"
            )
        expected = _expected_shapes(keep, hidden, head_size, layer)[match.group(2)]
        if 0 in expected:
            raise ShrinkError(
                f"{where}: mask {name!r} names a matrix the shrink removed "
                f"({STRUCTURE_KEY} keeps nothing of it in layer {layer})"
            )
        if tuple(mask.shape) != expected:
            raise ShrinkError(
                f"{where}: mask {name!r} has shape {list(mask.shape)} but {STRUCTURE_KEY} "
                f"gives {list(expected)}"
            )
    return keep
