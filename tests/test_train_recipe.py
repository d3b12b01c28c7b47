"""The training recipe (:mod:`pruning.train`): warm-up and LR schedules, no weight decay on
biases and LayerNorm, dynamic padding, and predicted-class counts in evaluation."""

from __future__ import annotations

import pytest
import torch

from pruning.glue import get_task, prediction_summary
from pruning.job import PruneJobError, prune_job
from pruning.train import TrainConfig, _batch, _param_groups, lr_factor, score
from tests.synthetic_task import synthetic_task
from tests.tiny_bert import tiny_model

torch.set_num_threads(1)


def test_lr_factor_warms_up_then_decays_or_stays() -> None:
    linear = lr_factor("linear", 4, 12)
    assert [linear(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert linear(8) == 0.5 and linear(12) == 0.0
    constant = lr_factor("constant", 4, 12)
    assert [constant(s) for s in (0, 3, 4, 11)] == [0.25, 1.0, 1.0, 1.0]
    assert lr_factor("constant", 0, 12)(0) == 1.0  # SparseBERT: no warm-up


def test_no_weight_decay_on_biases_and_layernorm() -> None:
    named = list(tiny_model().named_parameters())
    decay, rest = _param_groups(named, TrainConfig(weight_decay=0.01))
    by_id = {id(p): n for n, p in named}
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    no_decay = {by_id[id(p)] for p in rest["params"]}
    assert "bert.embeddings.LayerNorm.weight" in no_decay
    assert "bert.encoder.layer.0.attention.self.query.bias" in no_decay
    assert all(n.endswith("bias") or "LayerNorm" in n for n in no_decay)
    assert "bert.encoder.layer.0.attention.self.query.weight" in {
        by_id[id(p)] for p in decay["params"]
    }
    (everything,) = _param_groups(named, TrainConfig(decay_bias_and_norm=True))
    assert len(everything["params"]) == len(named)


def test_train_config_rejects_bad_schedule() -> None:
    with pytest.raises(ValueError, match="lr_schedule must be one of linear, constant"):
        TrainConfig(lr_schedule="cosine")
    with pytest.raises(ValueError, match="weight_decay must be a non-negative number"):
        TrainConfig(weight_decay=-1.0)


def test_batches_are_cut_to_their_longest_member() -> None:
    data = synthetic_task(4, seq_len=10)
    data["attention_mask"][:, 6:] = 0
    data["attention_mask"][0, 4:] = 0
    keys = {"input_ids", "attention_mask", "token_type_ids", "labels"}
    batch = _batch(data, torch.tensor([0, 1]), keys)
    assert batch["input_ids"].shape == (2, 6)
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0]
    only_short = _batch(data, torch.tensor([0]), keys, with_index=True)
    assert only_short["input_ids"].shape == (1, 4)
    assert only_short["example_index"].tolist() == [0]


def test_dynamic_padding_changes_no_prediction() -> None:
    model = tiny_model()
    data = synthetic_task(6, seq_len=8)
    data["attention_mask"][:, 5:] = 0
    padded = {k: v.clone() for k, v in data.items()}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        padded[key] = torch.cat([padded[key], torch.zeros(6, 7, dtype=torch.long)], dim=1)
    task = get_task("SST-2")
    assert score(model, data, task).metrics == score(model, padded, task).metrics


def test_prediction_summary_counts_every_label() -> None:
    summary = prediction_summary("RTE", [0, 0, 0])
    assert summary == {"predicted_counts": {"entailment": 3, "not_entailment": 0}}
    spread = prediction_summary("STS-B", [1.0, 3.0])
    assert spread == {"prediction_mean": 2.0, "prediction_std": 1.0}
    scores = score(tiny_model(), synthetic_task(10), get_task("SST-2"))
    assert sum(scores.predictions["predicted_counts"].values()) == 10


def test_job_optimizer_options_and_preset() -> None:
    base = {"pattern": "unstructured", "sparsity": 0.5}
    job = prune_job(**base)
    assert (job.warmup_ratio, job.lr_schedule, job.decay_bias_and_norm) == (0.1, "linear", False)
    sparse = prune_job(**base, optimizer_preset="sparsebert")
    assert (sparse.lr, sparse.lr_schedule, sparse.warmup_ratio) == (3e-5, "constant", 0.0)
    assert prune_job(**base, optimizer_preset="sparsebert", lr=1e-4).lr == 1e-4  # explicit wins
    with pytest.raises(PruneJobError, match="lr_schedule"):
        prune_job(**base, lr_schedule="cosine")
    with pytest.raises(PruneJobError, match="warmup_ratio"):
        prune_job(**base, warmup_ratio=1.0)
    with pytest.raises(PruneJobError, match="optimizer_preset"):
        prune_job(**base, optimizer_preset="bert")
    with pytest.raises(PruneJobError, match="mixkd_weight applies only to method 'distill'"):
        prune_job(**base, mixkd_weight=1.0)
    with pytest.raises(PruneJobError, match="head 'mean' has no pooler layer"):
        prune_job(**base, head="mean", include=("encoder", "pooler"))
    with pytest.raises(PruneJobError, match="schedule_shape applies only to methods"):
        prune_job(**base, schedule_shape="geometric")


def test_bootstrap_standard_error_matches_the_binomial_one() -> None:
    from pruning.glue import bootstrap_se

    labels = [1] * 500
    predictions = [1] * 400 + [0] * 100  # accuracy 0.8 over 500 examples
    se = bootstrap_se("SST-2", predictions, labels)["accuracy"]
    assert se == pytest.approx((0.8 * 0.2 / 500) ** 0.5, rel=0.1)
    assert bootstrap_se("SST-2", predictions, labels) == bootstrap_se("SST-2", predictions, labels)
    scores = score(tiny_model(), synthetic_task(10), get_task("SST-2"))
    assert set(scores.standard_errors) == {"accuracy"}


def test_length_grouped_order_is_an_epoch_of_similar_length_batches() -> None:
    from pruning.train import epoch_order

    lengths = torch.randint(3, 200, (1000,), generator=torch.Generator().manual_seed(0))
    order = epoch_order(lengths, 32, torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(1000))  # every example once
    batches = order.split(32)
    assert len(batches[-1]) == 1000 % 32  # the short batch stays last
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in batches) / len(batches)
    assert spread < 25  # random batches of 32 would span ~180 tokens
    again = epoch_order(lengths, 32, torch.Generator().manual_seed(1))
    assert torch.equal(order, again)
