"""A tiny random BERT (2 layers, hidden 64) and a pruned artifact of it, shared by tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from pruning.artifact import save_artifact
from pruning.glue import default_data_dir
from pruning.oneshot import magnitude_prune

torch.set_num_threads(1)


def tiny_model() -> transformers.BertForSequenceClassification:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=32,
    )
    return transformers.BertForSequenceClassification(config).eval()


def save_pruned_artifact(out: Path, pattern: str = "block:4x4", sparsity: float = 0.75):
    """Prune a fresh tiny model by magnitude and save it at ``out``: (model, masks, out)."""
    model = tiny_model()
    masks = magnitude_prune(model, pattern, sparsity)
    save_artifact(
        model,
        masks,
        out,
        source_model="tiny-bert",
        pattern=pattern,
        method="magnitude",
        sparsity=sparsity,
    )
    return model, masks, out


needs_glue = pytest.mark.skipif(
    default_data_dir() is None or not (default_data_dir() / "MRPC").is_dir(),
    reason="GLUE TSVs not found (../shared/data/glue or $COSIM_GLUE_DIR)",
)


def save_tiny_config(path: Path) -> Path:
    """A 2-layer, hidden-64 BERT config directory (random weights, hashing tokenizer)."""
    transformers.BertConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    ).save_pretrained(path)
    return path
