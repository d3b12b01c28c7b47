"""Stand-ins for a BERT sublayer that shrinking emptied (no heads, or no FFN neurons).

A zero-row ``nn.Linear`` cannot run a head-count ``view(..., -1, head_size)`` and saves
empty tensors, so an emptied sublayer keeps only what still affects the output: the bias of
its output projection, added before the residual LayerNorm.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BiasOnly", "NoHeadsSelfAttention", "NoUnits"]


class NoHeadsSelfAttention(nn.Module):
    """Self-attention with every head removed: a ``[..., 0]`` context, no parameters."""

    num_attention_heads = 0
    all_head_size = 0

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return hidden_states.new_zeros((*hidden_states.shape[:-1], 0)), None


class NoUnits(nn.Module):
    """A projection onto zero units: a ``[..., 0]`` output, no parameters."""

    in_features = None
    out_features = 0

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states.new_zeros((*hidden_states.shape[:-1], 0))


class BiasOnly(nn.Module):
    """A projection from zero inputs: only its bias survives (parameter name ``bias``)."""

    in_features = 0

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.out_features = int(bias.shape[0])
        self.bias = nn.Parameter(bias.detach().clone())

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(*hidden_states.shape[:-1], self.out_features)
