"""workloads.bert: op lists checked against real forward passes of tiny random models.

The reference is torch's FlopCounterMode on ``AutoModelForSequenceClassification`` with
eager attention. With the default SDPA attention on CPU the counter does not see the
attention products (the CPU flash kernel has no flop formula registered), so SDPA cannot
serve as a reference for attention MACs; eager attention runs plain matmuls it does count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DistilBertConfig,
    GPT2Config,
    PretrainedConfig,
    RobertaConfig,
)

from workloads import (
    PRESETS,
    GemmOp,
    GemmRole,
    VectorKind,
    VectorOp,
    WorkloadError,
    build_workload,
    load_config,
    preset_config,
)

torch.set_num_threads(1)

FAMILIES = ("bert", "roberta", "distilbert")
TINY_HIDDEN, TINY_LAYERS, TINY_HEADS, TINY_INTERMEDIATE, TINY_LABELS = 64, 2, 4, 128, 3
SHAPES = [(1, 8), (2, 16)]  # (batch, seq_len)


def tiny_config(family: str) -> PretrainedConfig:
    """2 layers, hidden 64, 4 heads: big enough to have every op, small enough to run fast."""
    if family == "distilbert":
        return DistilBertConfig(
            vocab_size=100,
            dim=TINY_HIDDEN,
            n_layers=TINY_LAYERS,
            n_heads=TINY_HEADS,
            hidden_dim=TINY_INTERMEDIATE,
            num_labels=TINY_LABELS,
        )
    config_class = BertConfig if family == "bert" else RobertaConfig
    return config_class(
        vocab_size=100,
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        intermediate_size=TINY_INTERMEDIATE,
        num_labels=TINY_LABELS,
    )


@cache
def tiny_model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(
        tiny_config(family), attn_implementation="eager"
    )
    return model.eval()


@cache
def measured_macs(family: str, batch: int, seq_len: int) -> dict[str, int]:
    """MACs per module path (without the class-name prefix) and under "total"."""
    model = tiny_model(family)
    # Token ids from 3 up avoid RoBERTa's padding id, which would shift position ids.
    input_ids = torch.randint(3, 100, (batch, seq_len), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=input_ids)
    prefix = type(model).__name__ + "."
    macs = {
        module.removeprefix(prefix): sum(counts.values()) // 2
        for module, counts in counter.get_flop_counts().items()
    }
    macs["total"] = counter.get_total_flops() // 2
    return macs


# --- agreement with the real model ------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("batch", "seq_len"), SHAPES)
def test_total_macs_match_flop_counter(family: str, batch: int, seq_len: int) -> None:
    workload = build_workload(tiny_config(family), batch=batch, seq_len=seq_len)
    assert workload.total_macs == measured_macs(family, batch, seq_len)["total"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("batch", "seq_len"), SHAPES)
def test_every_linear_gemm_matches_its_module(family: str, batch: int, seq_len: int) -> None:
    """Each weight GEMM's MACs equal what the counter attributes to that nn.Linear."""
    measured = measured_macs(family, batch, seq_len)
    workload = build_workload(tiny_config(family), batch=batch, seq_len=seq_len)
    for op in workload.gemms:
        if op.weight_name is not None:
            assert op.macs == measured[op.weight_name.removesuffix(".weight")], op.name


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("batch", "seq_len"), SHAPES)
def test_per_layer_macs_match_encoder_layer(family: str, batch: int, seq_len: int) -> None:
    """Linear plus attention GEMMs of layer i equal the counter's total for encoder layer i."""
    measured = measured_macs(family, batch, seq_len)
    workload = build_workload(tiny_config(family), batch=batch, seq_len=seq_len)
    for layer in range(TINY_LAYERS):
        ops = [op for op in workload.gemms if op.layer == layer]
        query = next(op for op in ops if op.role is GemmRole.QUERY)
        layer_module = query.weight_name.split(".attention.")[0]
        assert sum(op.macs for op in ops) == measured[layer_module]


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_names_exist_with_shape_n_by_k(family: str) -> None:
    state = tiny_model(family).state_dict()
    workload = build_workload(tiny_config(family), batch=2, seq_len=8)
    named = [op for op in workload.gemms if op.weight_name is not None]
    assert len(named) == 6 * TINY_LAYERS + 2
    for op in named:
        assert op.weight_name in state, op.weight_name
        assert tuple(state[op.weight_name].shape) == (op.n, op.k), op.weight_name


# --- structure ----------------------------------------------------------------------------

LAYER_SEQUENCE = [
    GemmRole.QUERY,
    GemmRole.KEY,
    GemmRole.VALUE,
    GemmRole.ATTENTION_SCORES,
    VectorKind.SOFTMAX,
    GemmRole.ATTENTION_CONTEXT,
    GemmRole.ATTENTION_OUTPUT,
    VectorKind.RESIDUAL_ADD,
    VectorKind.LAYERNORM,
    GemmRole.FFN_IN,
    VectorKind.GELU,
    GemmRole.FFN_OUT,
    VectorKind.RESIDUAL_ADD,
    VectorKind.LAYERNORM,
]
EMBEDDING_SEQUENCE = [VectorKind.EMBEDDING_GATHER, VectorKind.RESIDUAL_ADD, VectorKind.LAYERNORM]
HEAD_SEQUENCE = {
    "bert": [GemmRole.POOLER, VectorKind.TANH, GemmRole.CLASSIFIER],
    "roberta": [GemmRole.POOLER, VectorKind.TANH, GemmRole.CLASSIFIER],
    "distilbert": [GemmRole.POOLER, VectorKind.RELU, GemmRole.CLASSIFIER],
}


def op_tag(op: GemmOp | VectorOp) -> GemmRole | VectorKind:
    return op.role if isinstance(op, GemmOp) else op.kind


@pytest.mark.parametrize("family", FAMILIES)
def test_ops_follow_the_forward_pass(family: str) -> None:
    workload = build_workload(tiny_config(family), batch=2, seq_len=8)
    expected = EMBEDDING_SEQUENCE + LAYER_SEQUENCE * TINY_LAYERS + HEAD_SEQUENCE[family]
    assert [op_tag(op) for op in workload] == expected
    encoder = workload.ops[3 : 3 + len(LAYER_SEQUENCE) * TINY_LAYERS]
    assert [op.layer for op in encoder] == [i for i in range(TINY_LAYERS) for _ in LAYER_SEQUENCE]
    outside = workload.ops[:3] + workload.ops[3 + len(encoder) :]
    assert all(op.layer is None for op in outside)
    assert workload.family == family


@pytest.mark.parametrize("family", FAMILIES)
def test_op_names_are_unique_and_readable(family: str) -> None:
    names = [op.name for op in build_workload(tiny_config(family), batch=1, seq_len=4)]
    assert len(names) == len(set(names))
    for expected in ("embeddings.gather", "layer.0.query", "layer.1.attention_scores",
                     "layer.0.softmax", "pooler", "classifier"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize(("family", "tables"), [("bert", 3), ("roberta", 3), ("distilbert", 2)])
def test_vector_op_sizes(family: str, tables: int) -> None:
    batch, seq_len, h = 2, 8, TINY_HIDDEN
    ops = {op.name: op for op in build_workload(tiny_config(family), batch=batch, seq_len=seq_len)}
    tokens = batch * seq_len
    assert ops["embeddings.gather"].elements == tokens * h * tables
    assert ops["embeddings.sum"].elements == tokens * h * (tables - 1)
    assert ops["embeddings.layernorm"].elements == tokens * h
    assert ops["layer.0.softmax"].elements == batch * TINY_HEADS * seq_len * seq_len
    assert ops["layer.0.gelu"].elements == tokens * TINY_INTERMEDIATE
    assert ops["layer.1.ffn_layernorm"].elements == tokens * h


def test_attention_gemms_are_per_head() -> None:
    ops = {op.name: op for op in build_workload(tiny_config("bert"), batch=2, seq_len=8)}
    head_dim = TINY_HIDDEN // TINY_HEADS
    scores, context = ops["layer.0.attention_scores"], ops["layer.0.attention_context"]
    assert (scores.m, scores.k, scores.n, scores.count) == (8, head_dim, 8, 2 * TINY_HEADS)
    assert (context.m, context.k, context.n, context.count) == (8, 8, head_dim, 2 * TINY_HEADS)
    assert scores.weight_name is None and context.weight_name is None


@pytest.mark.parametrize("family", FAMILIES)
def test_num_labels_default_and_override(family: str) -> None:
    config = tiny_config(family)
    assert build_workload(config).ops[-1].n == TINY_LABELS
    classifier = build_workload(config, batch=4, num_labels=7).ops[-1]
    assert (classifier.m, classifier.k, classifier.n) == (4, TINY_HIDDEN, 7)


# --- presets ------------------------------------------------------------------------------


def bert_base_macs(batch: int, seq_len: int) -> int:
    """BERT-base by hand: 12 x (4 HxH + 2 HxI linears + 2 LxL attention products) + head."""
    h, inter, layers, labels = 768, 3072, 12, 2
    tokens = batch * seq_len
    linear = tokens * (4 * h * h + 2 * h * inter)
    attention = 2 * batch * seq_len * seq_len * h  # heads x head_dim == h
    return layers * (linear + attention) + batch * h * h + batch * h * labels


def test_bert_base_preset_shapes() -> None:
    workload = build_workload("bert-base-uncased", batch=2, seq_len=64)
    linears = [op for op in workload.gemms if op.weight_name is not None]
    assert len(linears) == 12 * 6 + 2
    query = next(op for op in linears if op.name == "layer.0.query")
    assert (query.m, query.k, query.n) == (2 * 64, 768, 768)
    assert query.weight_name == "bert.encoder.layer.0.attention.self.query.weight"
    ffn_in = next(op for op in linears if op.name == "layer.11.ffn_in")
    assert (ffn_in.k, ffn_in.n) == (768, 3072)
    assert workload.total_macs == bert_base_macs(2, 64)


def test_bert_base_total_macs_at_128() -> None:
    workload = build_workload("bert-base-uncased")
    assert (workload.batch, workload.seq_len) == (1, 128)
    assert workload.total_macs == bert_base_macs(1, 128) == 11_174_217_216


@pytest.mark.parametrize(
    ("name", "family", "hidden", "layers", "heads", "intermediate"),
    [
        ("bert-base-uncased", "bert", 768, 12, 12, 3072),
        ("bert-large-uncased", "bert", 1024, 24, 16, 4096),
        ("roberta-base", "roberta", 768, 12, 12, 3072),
        ("distilbert-base-uncased", "distilbert", 768, 6, 12, 3072),
        ("all-MiniLM-L6-v2", "bert", 384, 6, 12, 1536),
        ("bert-tiny", "bert", 128, 2, 2, 512),
        ("bert-mini", "bert", 256, 4, 4, 1024),
        ("bert-small", "bert", 512, 4, 8, 2048),
    ],
)
def test_presets(
    name: str, family: str, hidden: int, layers: int, heads: int, intermediate: int
) -> None:
    workload = build_workload(name, batch=1, seq_len=16)
    assert (workload.model_name, workload.family, workload.synthetic_weights) == (
        name,
        family,
        True,
    )
    roles = Counter(op.role for op in workload.gemms)
    assert roles[GemmRole.QUERY] == roles[GemmRole.ATTENTION_SCORES] == layers
    ffn_in = next(op for op in workload.gemms if op.role is GemmRole.FFN_IN)
    assert (ffn_in.k, ffn_in.n) == (hidden, intermediate)
    scores = next(op for op in workload.gemms if op.role is GemmRole.ATTENTION_SCORES)
    assert (scores.k, scores.count) == (hidden // heads, heads)


def test_preset_config_is_fresh_each_call() -> None:
    assert set(PRESETS) >= {"bert-base-uncased", "roberta-base", "bert-tiny"}
    first = preset_config("bert-tiny")
    first.num_labels = 5
    assert preset_config("bert-tiny").num_labels == 2
    assert load_config("roberta-base").max_position_embeddings == 514


def test_hub_id_resolves_to_preset_offline() -> None:
    workload = build_workload("google/bert_uncased_L-2_H-128_A-2")
    assert workload.model_name == "bert-tiny"


def test_sequence_length_limit() -> None:
    assert build_workload("roberta-base", seq_len=512).seq_len == 512
    assert build_workload("bert-base-uncased", seq_len=512).seq_len == 512
    for name in ("roberta-base", "bert-base-uncased", "distilbert-base-uncased"):
        with pytest.raises(WorkloadError, match=r"seq_len 513.*expected 1 <= seq_len <= 512"):
            build_workload(name, seq_len=513)


@pytest.mark.parametrize("field", ["batch", "seq_len", "num_labels"])
@pytest.mark.parametrize("value", [0, -1])
def test_sizes_must_be_positive(field: str, value: int) -> None:
    with pytest.raises(WorkloadError, match=f"{field} is {value}: expected a positive int"):
        build_workload("bert-tiny", **{field: value})


# --- local checkpoint directories -----------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_directory_source(tmp_path: Path, family: str) -> None:
    directory = tmp_path / f"tiny-{family}"
    tiny_config(family).save_pretrained(directory)
    from_path = build_workload(directory, batch=2, seq_len=8)
    from_str = build_workload(str(directory), batch=2, seq_len=8)
    from_config = build_workload(tiny_config(family), batch=2, seq_len=8)
    assert from_path.ops == from_str.ops == from_config.ops
    assert from_path.model_name == f"tiny-{family}"
    assert from_path.family == family
    assert from_path.synthetic_weights


def test_directory_with_weights_is_not_synthetic(tmp_path: Path) -> None:
    tiny_config("bert").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert not build_workload(tmp_path).synthetic_weights


def test_config_object_model_name_and_synthetic() -> None:
    workload = build_workload(tiny_config("roberta"))
    assert workload.model_name == "roberta"
    assert workload.synthetic_weights


# --- errors -------------------------------------------------------------------------------


def test_workload_error_is_a_value_error() -> None:
    assert issubclass(WorkloadError, ValueError)


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(WorkloadError, match="unknown model 'bert-hug'") as info:
        build_workload("bert-hug")
    assert all(name in str(info.value) for name in PRESETS)
    assert "config.json" in str(info.value)
    with pytest.raises(WorkloadError, match="unknown preset 'bert-hug': expected one of"):
        preset_config("bert-hug")


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for source in (missing, str(missing)):
        with pytest.raises(WorkloadError, match=r"nowhere.*does not exist.*config\.json"):
            build_workload(source)


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"config\.json not found"):
        build_workload(tmp_path)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_malformed_config_json(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(WorkloadError, match=r"config\.json.*expected a JSON object"):
        build_workload(tmp_path)


def test_config_json_with_bad_field(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": "x"}))
    with pytest.raises(WorkloadError, match=r"config\.json could not be loaded as a bert config"):
        build_workload(tmp_path)


def test_non_bert_family_rejected(tmp_path: Path) -> None:
    gpt2 = GPT2Config(n_layer=1, n_embd=32, n_head=2)
    with pytest.raises(WorkloadError, match=r"model_type 'gpt2'.*expected one of bert"):
        build_workload(gpt2)
    gpt2.save_pretrained(tmp_path)
    with pytest.raises(WorkloadError, match=r"config\.json: model_type 'gpt2'"):
        build_workload(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(WorkloadError, match="model_type None"):
        build_workload(tmp_path)


def test_unsupported_source_type() -> None:
    with pytest.raises(WorkloadError, match="unsupported model source of type int"):
        build_workload(42)


def test_non_gelu_activation_rejected() -> None:
    config = tiny_config("bert")
    config.hidden_act = "relu"
    with pytest.raises(WorkloadError, match="hidden_act 'relu' is not supported"):
        build_workload(config)


def test_heads_must_divide_hidden() -> None:
    config = tiny_config("bert")
    config.num_attention_heads = 5
    with pytest.raises(WorkloadError, match="not divisible by num_attention_heads 5"):
        build_workload(config)


def test_importing_workloads_does_not_import_torch() -> None:
    """The simulator imports workloads.ops and must stay torch-free."""
    code = "import sys, workloads; sys.exit('torch' in sys.modules)"
    repo_root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, check=False)
    assert result.returncode == 0


def test_micro_batch_ops_keep_their_masks_digest_and_count():
    """A micro-batch's GEMMs share the full batch's masks: the digest and the kept count carry
    over (not recomputed) and equal what a freshly built op works out."""
    import dataclasses

    import numpy as np

    from workloads import attach_masks

    workload = build_workload("bert-base-uncased", batch=4, seq_len=16)
    rng = np.random.default_rng(0)
    masks = {
        op.weight_name: rng.random((op.n, op.k)) < 0.3
        for op in workload.gemms
        if op.weight_name and op.layer == 0
    }
    full = attach_masks(workload, masks)
    for op in full.gemms:
        if op.mask is not None:
            op.weight_density  # noqa: B018 -- counts the mask once, cached on the op
    half = full.micro_batch(2)
    masked = [(a, b) for a, b in zip(full.gemms, half.gemms, strict=True) if a.mask is not None]
    assert len(masked) == len(masks)
    for whole, part in masked:
        assert part.mask is whole.mask
        assert (part.m, part.count) != (whole.m, whole.count)
        fresh = dataclasses.replace(part, mask=whole.mask.copy())
        assert part.mask_digest == fresh.mask_digest == whole.mask_digest
        assert part.weight_nnz == fresh.weight_nnz == whole.weight_nnz
        assert part == fresh


def test_micro_batch_ops_equal_ops_built_afresh_and_refuse_a_bad_extent():
    """A micro-batch's ops are copies with their extents changed (not re-validated whole):
    each equals the op ``dataclasses.replace`` builds, field for field, vector ops too; so
    does a masked op without its mask (the dense baseline's); and an extent that is not a
    positive int is refused by name."""
    import dataclasses

    import numpy as np

    from workloads import attach_masks
    from workloads.ops import GemmOp, _extents_changed

    full = build_workload("bert-base-uncased", batch=4, seq_len=16)
    quarter = full.micro_batch(1)
    assert quarter.batch == 1
    for whole, part in zip(full.ops, quarter.ops, strict=True):
        if isinstance(whole, GemmOp):
            extent = "count" if part.count != whole.count else "m"
            fresh = dataclasses.replace(whole, **{extent: getattr(part, extent)})
        else:
            fresh = dataclasses.replace(whole, elements=part.elements)
        assert part == fresh and vars(part) == vars(fresh)
        assert part is not whole and vars(whole) != vars(part)
    masked = attach_masks(full, {op.weight_name: np.ones((op.n, op.k), dtype=bool)
                                 for op in full.gemms if op.weight_name and op.layer == 0})
    for op in masked.gemms:  # the dense baseline's ops: as replace() builds them
        op.weight_nnz  # noqa: B018 -- counts the mask, cached on the op
        plain = op.unmasked()
        fresh = dataclasses.replace(op, mask=None)
        assert plain == fresh and vars(plain) == vars(fresh) and plain.mask_digest is None
    op = full.gemms[0]
    for bad in (0, -3, 2.0, "4"):
        with pytest.raises(ValueError, match="m must be a positive int"):
            _extents_changed(op, {"m": bad})
