"""Measured input-activation densities (pruning.activations) and their use by a workload."""

from __future__ import annotations

import pytest
import torch

from pruning.activations import count_inputs, measure_input_density
from tests.tiny_bert import tiny_model
from workloads import attach_activations, build_workload

torch.set_num_threads(1)

QUERY = "bert.encoder.layer.0.attention.self.query.weight"


def batches(n: int = 3, seq: int = 12, pad: int = 0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n):
        ids = torch.randint(1, 100, (2, seq), generator=generator)
        mask = torch.ones(2, seq + pad, dtype=torch.int64)
        mask[:, seq:] = 0
        yield {"input_ids": torch.cat([ids, torch.zeros(2, pad, dtype=torch.int64)], dim=1),
               "attention_mask": mask}  # fmt: skip


def half_zero_model():
    """The tiny model with the embedding LayerNorm's scale and shift zeroed on half the
    features: layer 0's Q, K and V inputs are then exactly half zeros."""
    model = tiny_model()
    with torch.no_grad():
        model.bert.embeddings.LayerNorm.weight[:32] = 0
        model.bert.embeddings.LayerNorm.bias[:32] = 0
    return model


def test_gelu_bert_inputs_are_dense_and_exact_zeros_are_counted() -> None:
    gelu = measure_input_density(tiny_model(), batches())
    assert len(gelu) == 2 * 6 + 2  # six linear layers a layer, pooler and classifier
    assert min(gelu.values()) > 0.99  # LayerNorm and GELU outputs are never exactly zero
    zeros = measure_input_density(half_zero_model(), batches())
    assert zeros[QUERY] == zeros[QUERY.replace("query", "key")] == 0.5
    assert zeros["bert.encoder.layer.0.output.dense.weight"] > 0.99


def test_padding_is_not_measured() -> None:
    model = half_zero_model()
    _, plain = count_inputs(model, batches(pad=0))
    nonzero, padded = count_inputs(model, batches(pad=5))
    assert padded == plain
    assert padded[QUERY] == 3 * 2 * 12 * 64  # batches x rows x kept tokens x hidden
    assert padded["bert.pooler.dense.weight"] == 3 * 2 * 64  # the first token of each row
    assert nonzero[QUERY] == padded[QUERY] // 2


def test_measured_densities_attach_to_the_models_workload() -> None:
    model = half_zero_model()
    densities = measure_input_density(model, batches())
    workload = attach_activations(build_workload(model.config, batch=1, seq_len=12), densities)
    by_name = {op.weight_name: op.activation_density for op in workload.gemms if op.weight_name}
    assert by_name == pytest.approx(densities)
    assert by_name[QUERY] == 0.5
    assert all(op.activation_density == 1.0 for op in workload.gemms if op.weight_name is None)


def test_no_tokens_is_an_error() -> None:
    with pytest.raises(ValueError, match="no tokens"):
        measure_input_density(tiny_model(), [])
