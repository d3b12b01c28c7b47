"""A learnable synthetic classification task for training-loop tests (no files, no tokenizer).

The label is whether token 5 occurs in the sequence, so a tiny BERT can learn it in a few
dozen steps and losses visibly fall.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pruning.train import TrainHook


def synthetic_task(n: int = 64, seq_len: int = 12, vocab: int = 100, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(6, vocab, (n, seq_len), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    positions = torch.randint(1, seq_len, (n,), generator=generator)
    input_ids[labels == 1, positions[labels == 1]] = 5
    input_ids[:, 0] = 2  # [CLS]
    data: dict[str, Tensor] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "token_type_ids": torch.zeros_like(input_ids),
        "labels": labels,
    }
    return data


class Killed(Exception):
    """Stands in for a kill in resume tests: raised right after a chosen optimizer step."""


class KillAt(TrainHook):
    """Raise :class:`Killed` after optimizer step ``step`` (0: never)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_optimizer_step(self, model, step: int) -> None:
        if step == self.step:
            raise Killed
