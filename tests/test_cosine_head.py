"""The cosine start of a new bi-encoder classifier (:mod:`pruning.cosine_head`): the fitted
rule, the classifier it writes, and which loads get it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

from pruning.cosine_head import cosines, fit_cosine_rule, init_from_cosine
from pruning.heads import PAIR_FEATURES_KEY, BertBiEncoder, mean_pool
from pruning.models import load_model
from tests.tiny_bert import save_tiny_config

torch.set_num_threads(1)


def _config(num_labels: int, **extra: object) -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=32, num_labels=num_labels, **extra,
    )  # fmt: skip


def _pairs(n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` random sentence pairs of 3-8 tokens each, padded to 8, with 0/1 labels."""
    generator = torch.Generator().manual_seed(seed)
    data = {}
    for suffix in ("", "_b"):
        lengths = torch.randint(3, 9, (n,), generator=generator)
        ids = torch.randint(5, 100, (n, 8), generator=generator)
        mask = (torch.arange(8) < lengths[:, None]).long()
        data["input_ids" + suffix] = ids * mask
        data["attention_mask" + suffix] = mask
    data["labels"] = torch.randint(0, 2, (n,), generator=generator)
    return data


def test_fit_recovers_a_known_threshold() -> None:
    """Labels drawn with P(1) = sigmoid(8 (cosine - 0.3)): the maximum-likelihood fit finds
    the scale 8 and the boundary 0.3."""
    rng = np.random.default_rng(0)
    cosine = rng.uniform(-1, 1, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-8 * (cosine - 0.3)))).astype(int)
    weight, bias = fit_cosine_rule(cosine, labels, 2)
    assert weight[0] == 0 and bias[0] == 0
    assert float(weight[1]) == pytest.approx(8, rel=0.1)
    assert -float(bias[1]) / float(weight[1]) == pytest.approx(0.3, abs=0.02)


def test_fit_orders_three_classes_along_the_cosine() -> None:
    cosine = np.linspace(-1, 1, 3000)
    labels = np.digitize(cosine, [-0.2, 0.4])  # 0 below -0.2, 1 between, 2 above 0.4
    weight, bias = fit_cosine_rule(cosine, labels, 3)
    predicted = (cosine[:, None] * weight.numpy() + bias.numpy()).argmax(axis=1)
    assert (predicted == labels).mean() > 0.98


def test_the_written_classifier_computes_the_rule_on_separately_encoded_sentences() -> None:
    torch.manual_seed(0)
    model = BertBiEncoder(_config(2, **{PAIR_FEATURES_KEY: "normalized"})).eval()
    data = _pairs(40, seed=1)
    record = init_from_cosine(model, data)
    weight, bias = torch.tensor(record["weight"]), torch.tensor(record["bias"])
    with torch.no_grad():  # the naive twin: each sentence on its own, mean-pooled
        hidden_a = model.bert(input_ids=data["input_ids"], attention_mask=data["attention_mask"])
        hidden_b = model.bert(
            input_ids=data["input_ids_b"], attention_mask=data["attention_mask_b"]
        )
        u = mean_pool(hidden_a.last_hidden_state, data["attention_mask"])
        v = mean_pool(hidden_b.last_hidden_state, data["attention_mask_b"])
        cosine = F.cosine_similarity(u, v, dim=-1)
        logits = model(**data).logits
    expected = cosine[:, None] * weight + bias
    assert torch.allclose(logits, expected.float(), atol=1e-4)
    assert np.allclose(cosines(model, data), cosine.numpy(), atol=1e-5)
    assert record["examples"] == 40
    predicted = expected.argmax(1).numpy()
    assert record["train_accuracy"] == pytest.approx((predicted == data["labels"].numpy()).mean())


def test_the_cosine_start_refuses_raw_features() -> None:
    model = BertBiEncoder(_config(2)).eval()  # a checkpoint saved before the key: raw u, v
    with pytest.raises(ValueError, match="normalises u and v"):
        init_from_cosine(model, _pairs(4, seed=0))


def test_which_loads_build_a_new_normalised_pair_classifier(tmp_path: Path) -> None:
    tiny = save_tiny_config(tmp_path / "tiny")
    new = load_model(tiny, 2, head="bi-encoder")
    assert new.new_pair_classifier and new.model.normalized
    regression = load_model(tiny, 1, head="bi-encoder", score_scale=5.0)
    assert not regression.new_pair_classifier and not regression.model.normalized
    new.model.save_pretrained(tmp_path / "saved")
    again = load_model(tmp_path / "saved", 2)  # its own classifier: kept, still normalised
    assert again.head == "bi-encoder" and not again.new_pair_classifier
    assert again.model.normalized
    three = load_model(tmp_path / "saved", 3)  # a classifier of another size is new
    assert three.new_pair_classifier and three.model.normalized
    old = BertBiEncoder(_config(2, cosim_head="bi-encoder"))  # saved without the key
    old.save_pretrained(tmp_path / "old")
    kept = load_model(tmp_path / "old", 2)
    assert not kept.new_pair_classifier and not kept.model.normalized
