"""Which heads and FFN neurons a shrunk BERT keeps: the record in its config, as plain data.

:func:`pruning.shrink.shrink_model` removes pruned heads and FFN neurons and writes the kept
original indices of every encoder layer into the config (``cosim_kept_heads``,
``cosim_kept_neurons``; the config's own ``num_attention_heads`` and ``intermediate_size``
stay the original ones, so the head size is unchanged). This module reads and checks that
record without torch, so :func:`workloads.build_workload` can build the smaller layers and
the artifact loader can check a manifest against it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from safeio.limits import BoundedError

__all__ = [
    "KEPT_HEADS_KEY",
    "KEPT_NEURONS_KEY",
    "SHRINKABLE_MODEL_TYPES",
    "ShrinkError",
    "StructuredKeep",
    "check_family",
    "check_keep",
    "full_keep",
    "structured_keep_of",
    "unshrunk_config",
]

KEPT_HEADS_KEY = "cosim_kept_heads"
KEPT_NEURONS_KEY = "cosim_kept_neurons"
SHRINKABLE_MODEL_TYPES = ("bert", "roberta")


class ShrinkError(BoundedError):  # a ValueError, message bounded
    """A keep set or model that cannot be shrunk; the message names the field."""


@dataclass(frozen=True)
class StructuredKeep:
    """Original indices kept in each encoder layer (sorted; a tuple may be empty)."""

    heads: tuple[tuple[int, ...], ...]  # per layer: kept attention-head indices
    # per layer: kept FFN intermediate indices (rows of intermediate.dense, columns of
    # output.dense)
    neurons: tuple[tuple[int, ...], ...]

    def head_counts(self) -> tuple[int, ...]:
        return tuple(len(kept) for kept in self.heads)

    def intermediate_sizes(self) -> tuple[int, ...]:
        return tuple(len(kept) for kept in self.neurons)


def _get(config: Any, key: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(key)
    return getattr(config, key, None)


def _model_type(config: Any) -> str:
    return str(_get(config, "model_type") or "")


def check_family(config: Any) -> None:
    """ShrinkError unless ``config`` is a model family whose layers can be shrunk."""
    model_type = _model_type(config)
    if model_type == "distilbert":
        raise ShrinkError(
            "model_type 'distilbert' cannot be shrunk: its attention (q_lin/k_lin/v_lin/out_lin) "
            f"is not supported; expected one of {', '.join(SHRINKABLE_MODEL_TYPES)}"
        )
    if model_type not in SHRINKABLE_MODEL_TYPES:
        raise ShrinkError(
            f"model_type {model_type!r} cannot be shrunk: expected one of "
            f"{', '.join(SHRINKABLE_MODEL_TYPES)}"
        )


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_lists(
    field: str, per_layer: Any, layers: int, limit: int
) -> tuple[tuple[int, ...], ...]:
    """``per_layer`` as a tuple of sorted index tuples, each index in ``[0, limit)``."""
    if isinstance(per_layer, str | bytes) or not isinstance(per_layer, Sequence):
        raise ShrinkError(f"{field} must be a list of {layers} index lists, one per layer")
    if len(per_layer) != layers:
        raise ShrinkError(
            f"{field} has {len(per_layer)} layer(s): expected {layers} (num_hidden_layers)"
        )
    out = []
    for layer, kept in enumerate(per_layer):
        where = f"{field}[{layer}]"
        if isinstance(kept, str | bytes) or not isinstance(kept, Sequence):
            raise ShrinkError(f"{where} must be a list of indices in [0, {limit})")
        if not all(_is_index(i) for i in kept):
            raise ShrinkError(f"{where} holds a non-integer index: expected ints in [0, {limit})")
        bad = [i for i in kept if not 0 <= i < limit]
        if bad:
            raise ShrinkError(f"{where} holds index {bad[0]} out of range: expected [0, {limit})")
        if any(b <= a for a, b in itertools.pairwise(kept)):
            raise ShrinkError(f"{where} must be strictly increasing (sorted, no duplicates)")
        out.append(tuple(int(i) for i in kept))
    return tuple(out)


def _dims(config: Any) -> tuple[int, int, int]:
    layers = _get(config, "num_hidden_layers")
    heads = _get(config, "num_attention_heads")
    inter = _get(config, "intermediate_size")
    for name, value in (
        ("num_hidden_layers", layers),
        ("num_attention_heads", heads),
        ("intermediate_size", inter),
    ):
        if not _is_index(value) or value < 1:
            raise ShrinkError(f"config field {name} {value!r} is not a positive integer")
    return layers, heads, inter


def check_keep(keep: Any, config: Any) -> StructuredKeep:
    """``keep`` checked against ``config``'s original shapes (layer count, head count,
    intermediate size); a :class:`StructuredKeep` of plain int tuples, or ShrinkError naming
    the field (``heads[1]``, ``neurons``...)."""
    if not isinstance(keep, StructuredKeep):
        raise ShrinkError(f"keep must be a StructuredKeep, got {type(keep).__name__}")
    check_family(config)
    layers, heads, inter = _dims(config)
    return StructuredKeep(
        heads=_check_lists("heads", keep.heads, layers, heads),
        neurons=_check_lists("neurons", keep.neurons, layers, inter),
    )


def full_keep(config: Any) -> StructuredKeep:
    """Every head and neuron of ``config``'s original shapes."""
    layers, heads, inter = _dims(config)
    return StructuredKeep(
        heads=tuple(tuple(range(heads)) for _ in range(layers)),
        neurons=tuple(tuple(range(inter)) for _ in range(layers)),
    )


def structured_keep_of(config: Any) -> StructuredKeep | None:
    """The kept indices a shrunk model's config records (None for an unshrunk model).

    ``config`` is a transformers config or its ``config.json`` dict; a record that does not
    fit the config's shapes raises ShrinkError naming the field."""
    heads, neurons = _get(config, KEPT_HEADS_KEY), _get(config, KEPT_NEURONS_KEY)
    if heads is None and neurons is None:
        return None
    if heads is None or neurons is None:
        missing = KEPT_HEADS_KEY if heads is None else KEPT_NEURONS_KEY
        raise ShrinkError(f"config records a shrunk model but lacks field {missing}")
    check_family(config)
    layers, n_heads, inter = _dims(config)
    return StructuredKeep(
        heads=_check_lists(KEPT_HEADS_KEY, heads, layers, n_heads),
        neurons=_check_lists(KEPT_NEURONS_KEY, neurons, layers, inter),
    )


def unshrunk_config(config: Any) -> Any:
    """A copy of the transformers ``config`` without the shrink record: the full model."""
    import copy

    plain = copy.deepcopy(config)
    for key in (KEPT_HEADS_KEY, KEPT_NEURONS_KEY):
        if hasattr(plain, key):
            delattr(plain, key)
    return plain
