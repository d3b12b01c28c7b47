"""``head:H`` over a model: each head scored jointly over its Q/K/V rows and attention-output
columns (pruning.head_groups), and all four pieces pruned together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruning.masks import compute_masks
from pruning.oneshot import magnitude_prune
from pruning.patterns import Head, PatternError, check_fits
from pruning.targets import prunable_weights
from tests.tiny_bert import tiny_model

HEADS, SIZE = 4, 16  # tiny model: hidden 64
MEMBERS = {
    "query": "attention.self.query.weight",
    "key": "attention.self.key.weight",
    "value": "attention.self.value.weight",
    "output": "attention.output.dense.weight",
}


def _name(layer: int, member: str) -> str:
    return f"bert.encoder.layer.{layer}.{MEMBERS[member]}"


def _kept_heads(mask: torch.Tensor, member: str) -> list[bool]:
    """Per head, whether its piece is kept; each piece must be all kept or all pruned."""
    piece = mask.numpy()
    kept = []
    for head in range(HEADS):
        cut = slice(head * SIZE, (head + 1) * SIZE)
        block = piece[:, cut] if member == "output" else piece[cut, :]
        assert block.all() or not block.any(), f"{member} head {head} partly pruned"
        kept.append(bool(block.all()))
    return kept


def _naive_scores(weights, layer: int) -> list[float]:
    """Each head's L2 norm over its four pieces, entry by entry."""
    scores = []
    for head in range(HEADS):
        cut = slice(head * SIZE, (head + 1) * SIZE)
        total = 0.0
        for member in MEMBERS:
            w = weights[_name(layer, member)].detach().double()
            piece = w[:, cut] if member == "output" else w[cut, :]
            total += float((piece**2).sum())
        scores.append(total**0.5)
    return scores


def test_four_masks_agree_per_head_and_follow_the_joint_norm():
    model = tiny_model()
    weights = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    masks = magnitude_prune(model, "head:4", 0.5)
    for layer in range(2):
        per_member = [_kept_heads(masks[_name(layer, m)], m) for m in MEMBERS]
        assert all(kept == per_member[0] for kept in per_member)  # Q, K, V, output agree
        scores = _naive_scores(weights, layer)
        expected = sorted(np.argsort(scores, kind="stable")[2:].tolist())
        assert [h for h, k in enumerate(per_member[0]) if k] == expected


def test_output_columns_count_in_the_score():
    """A head with tiny Q/K/V rows but large output columns survives: a Q-only ranking would
    prune it first."""
    model = tiny_model()
    weights = prunable_weights(model)
    with torch.no_grad():
        for member in ("query", "key", "value"):
            weights[_name(0, member)][0:SIZE] *= 1e-3
        weights[_name(0, "output")][:, 0:SIZE] *= 100.0
    masks = compute_masks(weights, "head:4", 0.5)
    assert _kept_heads(masks[_name(0, "query")], "query")[0]
    q_only = Head(4).compute_mask(weights[_name(0, "query")], 0.5)
    assert not _kept_heads(q_only, "query")[0]


def test_global_scope_ranks_heads_across_layers():
    model = tiny_model()
    weights = prunable_weights(model)
    with torch.no_grad():
        for member in MEMBERS:
            weights[_name(1, member)] *= 1e-3  # layer 1's heads are the weakest
    masks = compute_masks(weights, "head:4", 0.5, scope="global")
    assert _kept_heads(masks[_name(0, "value")], "value") == [True] * HEADS
    assert _kept_heads(masks[_name(1, "output")], "output") == [False] * HEADS


def test_within_keeps_pruned_heads_pruned():
    weights = prunable_weights(tiny_model())
    first = compute_masks(weights, "head:4", 0.25)
    second = compute_masks(weights, "head:4", 0.5, within=first)
    for layer in range(2):
        before = _kept_heads(first[_name(layer, "key")], "key")
        after = _kept_heads(second[_name(layer, "key")], "key")
        assert sum(before) == 3 and sum(after) == 2
        assert all(b or not a for b, a in zip(before, after, strict=True))  # nested


def test_ffn_weights_keep_their_row_groups():
    weights = prunable_weights(tiny_model())
    masks = compute_masks(weights, "head:4", 0.5)
    name = "bert.encoder.layer.0.intermediate.dense.weight"
    assert torch.equal(masks[name], Head(4).compute_mask(weights[name], 0.5))


def test_attention_output_heads_must_divide_its_columns():
    name = _name(0, "output")
    check_fits(Head(4), {name: (60, 64)})  # 4 heads of 16 columns; rows are not heads
    with pytest.raises(PatternError, match="expected 3 heads to divide in_features=64"):
        check_fits(Head(3), {name: (63, 64)})
