"""Structured shrinking (pruning.shrink): removing heads and FFN neurons changes nothing the
masked model computes, survives a save/reload, and bad keep sets fail naming the field."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers

from pruning.models import ModelLoadError, load_model
from pruning.shrink import (
    KEPT_HEADS_KEY,
    KEPT_NEURONS_KEY,
    ShrinkError,
    StructuredKeep,
    shrink_model,
    structured_keep_of,
)
from tests.tiny_bert import tiny_model

HEAD_SIZE = 16  # tiny model: hidden 64, 4 heads

# Layer 0 keeps heads 1 and 3 and 50 of 128 neurons; layer 1 keeps no heads and no neurons.
KEEP = StructuredKeep(
    heads=((1, 3), ()),
    neurons=(tuple(range(0, 100, 2)), ()),
)


def _inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 100, (3, 9), generator=generator)
    attention = torch.ones_like(ids)
    attention[1, 6:] = 0  # padding must behave the same after shrinking
    return {"input_ids": ids, "attention_mask": attention}


def _masked(model: transformers.PreTrainedModel, keep: StructuredKeep):
    """The unshrunk model with every removed head's and neuron's contribution zeroed:
    attention-output columns of dropped heads and FFN-output columns of dropped neurons."""
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for layer, heads, neurons in zip(
            masked.base_model.encoder.layer, keep.heads, keep.neurons, strict=True
        ):
            for head in set(range(4)) - set(heads):
                layer.attention.output.dense.weight[
                    :, head * HEAD_SIZE : (head + 1) * HEAD_SIZE
                ] = 0
            dropped = sorted(set(range(128)) - set(neurons))
            layer.output.dense.weight[:, dropped] = 0
    return masked


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def test_shrunk_model_equals_masked_model():
    model = tiny_model()
    expected = _logits(_masked(model, KEEP), _inputs())
    shrink_model(model, KEEP)
    torch.testing.assert_close(_logits(model, _inputs()), expected, atol=1e-5, rtol=0)


def test_shrink_slices_the_linear_modules():
    model = tiny_model()
    shrink_model(model, KEEP)
    first, second = model.bert.encoder.layer
    assert first.attention.self.query.weight.shape == (2 * HEAD_SIZE, 64)
    assert first.attention.self.value.bias.shape == (2 * HEAD_SIZE,)
    assert first.attention.output.dense.weight.shape == (64, 2 * HEAD_SIZE)
    assert first.intermediate.dense.weight.shape == (50, 64)
    assert first.output.dense.weight.shape == (64, 50)
    assert first.attention.self.num_attention_heads == 2
    names = {name for name, _ in second.named_parameters()}
    assert "attention.self.query.weight" not in names
    assert "intermediate.dense.weight" not in names
    assert {"attention.output.dense.bias", "output.dense.bias"} <= names
    assert structured_keep_of(model.config) == KEEP
    assert getattr(model.config, KEPT_HEADS_KEY) == [[1, 3], []]


def test_shrinking_twice_composes_original_indices():
    model = tiny_model()
    expected = _logits(_masked(model, KEEP), _inputs())
    first = StructuredKeep(heads=((0, 1, 3), (2,)), neurons=(tuple(range(100)), (5, 7)))
    shrink_model(model, first)
    shrink_model(model, KEEP)
    torch.testing.assert_close(_logits(model, _inputs()), expected, atol=1e-5, rtol=0)
    with pytest.raises(ShrinkError, match=r"heads\[0\] keeps index 2, already removed"):
        shrink_model(model, StructuredKeep(heads=((2,), ()), neurons=((0,), ())))


def test_save_and_reload_give_identical_logits(tmp_path):
    model = tiny_model()
    shrink_model(model, KEEP)
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path, num_labels=2).model
    assert loaded.bert.encoder.layer[0].intermediate.dense.weight.shape == (50, 64)
    assert structured_keep_of(loaded.config) == KEEP
    torch.testing.assert_close(_logits(loaded, _inputs()), _logits(model, _inputs()))


def test_reload_refuses_weights_at_other_shapes(tmp_path):
    model = tiny_model()
    shrink_model(model, KEEP)
    model.save_pretrained(tmp_path)
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    setattr(config, KEPT_NEURONS_KEY, [list(range(60)), []])  # the weights hold 50
    config.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match=r"intermediate\.dense\.weight has shape \[50, 64\]"):
        load_model(tmp_path, num_labels=2)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (StructuredKeep(heads=((0, 4), ()), neurons=((), ())), r"heads\[0\] holds index 4"),
        (StructuredKeep(heads=((1, 0), ()), neurons=((), ())), r"heads\[0\] must be strictly"),
        (StructuredKeep(heads=((1, 1), ()), neurons=((), ())), r"heads\[0\] must be strictly"),
        (StructuredKeep(heads=((),), neurons=((), ())), r"heads has 1 layer\(s\): expected 2"),
        (StructuredKeep(heads=((), ()), neurons=((), (128,))), r"neurons\[1\] holds index 128"),
        (StructuredKeep(heads=((), ()), neurons=((0.5,), ())), r"neurons\[0\] holds a non-int"),
        (StructuredKeep(heads="01", neurons=((), ())), r"heads must be a list"),
    ],
)
def test_bad_keep_names_the_field(keep, message):
    model = tiny_model()
    with pytest.raises(ShrinkError, match=message):
        shrink_model(model, keep)
    assert structured_keep_of(model.config) is None  # nothing changed


def test_distilbert_is_refused():
    config = transformers.DistilBertConfig(
        vocab_size=100, dim=64, n_layers=2, n_heads=4, hidden_dim=128
    )
    model = transformers.DistilBertForSequenceClassification(config)
    with pytest.raises(ShrinkError, match="model_type 'distilbert' cannot be shrunk"):
        shrink_model(model, StructuredKeep(heads=((), ()), neurons=((), ())))


def test_config_record_is_checked():
    config = tiny_model().config.to_dict()
    assert structured_keep_of(config) is None
    config[KEPT_HEADS_KEY] = [[0], [9]]
    config[KEPT_NEURONS_KEY] = [[0], [0]]
    with pytest.raises(ShrinkError, match=r"cosim_kept_heads\[1\] holds index 9"):
        structured_keep_of(config)
    del config[KEPT_NEURONS_KEY]
    with pytest.raises(ShrinkError, match="lacks field cosim_kept_neurons"):
        structured_keep_of(config)


def test_attention_distillation_refuses_a_shrunk_student():
    from pruning.distill import DistillationLoss, DistillConfig

    teacher, student = tiny_model(), tiny_model()
    shrink_model(student, KEEP)
    with pytest.raises(ValueError, match="the student is shrunk"):
        DistillationLoss(teacher, student, DistillConfig())
    DistillationLoss(teacher, student, DistillConfig(attention_weight=0.0))  # hidden + logits


def test_roberta_shrinks_like_bert():
    torch.manual_seed(0)
    config = transformers.RobertaConfig(
        vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=40,
    )  # fmt: skip
    model = transformers.RobertaForSequenceClassification(config).eval()
    masked = _masked(model, KEEP)
    expected = _logits(masked, _inputs())
    shrink_model(model, KEEP)
    torch.testing.assert_close(_logits(model, _inputs()), expected, atol=1e-5, rtol=0)
