"""Whole attention heads for the ``head:H`` pattern: Q, K and V rows and attention-output
columns scored jointly and pruned together.

A head is removable only when all four of its pieces go: its rows of the query, key and
value projections and its columns of the attention output projection (Michel et al., 2019,
"Are Sixteen Heads Really Better than One?"; MLPruning, Yao et al., 2021, section 3.1, prunes
heads as such units). Each head's score is the L2 norm over all four pieces; the lowest
``floor(sparsity * heads)`` heads are pruned in every layer (``per-matrix`` scope, one layer's
four matrices being the unit) or among all heads of the model (``global``). Ties go to the
earlier layer, then the lower head index, as for the other ranked patterns. A head that a
previous mask (``within``) already removed from every piece is pruned first and stays pruned.

Weights are recognised by their Hugging Face names (BERT/RoBERTa ``attention.self.query``
... ``attention.output.dense``, DistilBERT ``attention.q_lin`` ... ``attention.out_lin``);
the other weights a ``head:H`` run selects keep the per-matrix row groups of
:class:`pruning.patterns.Head`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from pruning.patterns import Head, PatternError, n_pruned

__all__ = ["OUTPUT", "attention_groups", "joint_head_masks"]

OUTPUT = "output"  # the member whose columns (not rows) belong to the heads
_MEMBER = re.compile(
    r"^(?P<layer>.*)\.(?:attention\.self\.(?P<bert>query|key|value)|(?P<bert_out>attention\."
    r"output\.dense)|attention\.(?P<distil>q_lin|k_lin|v_lin)|(?P<distil_out>attention\."
    r"out_lin))\.weight$"
)
_DISTIL = {"q_lin": "query", "k_lin": "key", "v_lin": "value"}


def attention_groups(names: list[str]) -> dict[str, dict[str, str]]:
    """Layer prefix -> {``query``/``key``/``value``/``output``: weight name} for the
    attention weights among ``names`` (in order of first appearance)."""
    groups: dict[str, dict[str, str]] = {}
    for name in names:
        match = _MEMBER.match(name)
        if match is None:
            continue
        if match["bert_out"] or match["distil_out"]:
            member = OUTPUT
        else:
            member = match["bert"] or _DISTIL[match["distil"]]
        groups.setdefault(match["layer"], {})[member] = name
    return groups


def _head_sums(name: str, member: str, array: np.ndarray, heads: int) -> np.ndarray:
    """Per-head sums of ``array`` over the head's rows (Q/K/V) or columns (output)."""
    out, inn = array.shape
    size = inn if member == OUTPUT else out
    if size % heads:
        side = "in_features" if member == OUTPUT else "out_features"
        raise PatternError(
            f"pattern head:{heads} does not fit weight {name!r} of shape [{out}, {inn}]: "
            f"expected {heads} heads to divide {side}={size}"
        )
    if member == OUTPUT:
        return array.reshape(out, heads, inn // heads).sum(axis=(0, 2))
    return array.reshape(heads, out // heads, inn).sum(axis=(1, 2))


def _expand(member: str, keep: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out, inn = shape
    if member == OUTPUT:
        return np.broadcast_to(np.repeat(keep, inn // keep.size)[None, :], shape).copy()
    return np.broadcast_to(np.repeat(keep, out // keep.size)[:, None], shape).copy()


def joint_head_masks(
    weights: Mapping[str, Tensor],
    pattern: Head,
    sparsity: float,
    scope: str,
    within: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Keep-masks of the attention weights among ``weights`` (the others are left out):
    every layer's heads scored jointly over Q/K/V rows and output columns, the lowest
    pruned per layer (``per-matrix``) or over the model (``global``)."""
    within = within or {}
    groups = attention_groups(list(weights))
    heads = pattern.heads
    scores, previous_kept = [], []
    for members in groups.values():
        squares = np.zeros(heads, dtype=np.float64)
        alive = np.zeros(heads, dtype=bool)
        for member, name in members.items():
            array = weights[name].detach().to(torch.float64).cpu().numpy()
            squares += _head_sums(name, member, array * array, heads)
            previous = within.get(name)
            if previous is None:
                alive[:] = True
            else:
                alive |= _head_sums(name, member, previous.detach().cpu().numpy() != 0, heads) > 0
        score = np.sqrt(squares)
        score[~alive] = -np.inf
        scores.append(score)
        previous_kept.append(alive)
    keeps = []
    if scope == "global":
        flat = np.concatenate(scores) if scores else np.zeros(0)
        order = np.argsort(flat, kind="stable")[: n_pruned(sparsity, flat.size)]
        keep_flat = np.ones(flat.size, dtype=bool)
        keep_flat[order] = False
        keeps = np.split(keep_flat, len(scores)) if scores else []
    else:
        for score in scores:
            keep = np.ones(heads, dtype=bool)
            keep[np.argsort(score, kind="stable")[: n_pruned(sparsity, heads)]] = False
            keeps.append(keep)
    masks: dict[str, Tensor] = {}
    for members, keep in zip(groups.values(), keeps, strict=True):
        for member, name in members.items():
            weight = weights[name]
            mask = _expand(member, keep, tuple(weight.shape))
            previous = within.get(name)
            if previous is not None:
                mask &= previous.detach().cpu().numpy() != 0
            masks[name] = torch.from_numpy(mask).to(device=weight.device)
    return masks
