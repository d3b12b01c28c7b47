"""shrink_from_masks: heads and FFN neurons that masks leave without effect are removed (or
folded into a bias), the shrunk model computes what the masked model computes, and the
masks come back at the shrunk shapes, ready for the artifact."""

from __future__ import annotations

import copy

import torch

from pruning.artifact import load_artifact, save_artifact
from pruning.masks import compute_masks
from pruning.models import load_model
from pruning.oneshot import apply_masks
from pruning.shrink import StructuredKeep
from pruning.shrink_masks import shrink_from_masks
from pruning.targets import prunable_weights
from tests.tiny_bert import tiny_model

SIZE = 16
L0, L1 = "bert.encoder.layer.0.", "bert.encoder.layer.1."


def _logits(model) -> torch.Tensor:
    ids = torch.randint(0, 100, (3, 9), generator=torch.Generator().manual_seed(5))
    attention = torch.ones_like(ids)
    attention[0, 5:] = 0
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=attention).logits


def _all_kept(model) -> dict[str, torch.Tensor]:
    return {n: torch.ones_like(w, dtype=torch.bool) for n, w in prunable_weights(model).items()}


def test_every_removal_rule_keeps_the_masked_outputs():
    model = tiny_model()
    masks = _all_kept(model)
    masks[L0 + "attention.output.dense.weight"][:, 0:SIZE] = False  # head 0: output columns
    masks[L0 + "attention.self.value.weight"][2 * SIZE : 3 * SIZE] = False  # head 2: value rows
    masks[L0 + "output.dense.weight"][:, [3, 7]] = False  # neurons 3, 7: output columns
    masks[L0 + "intermediate.dense.weight"][[10, 11]] = False  # neurons 10, 11: constant
    masks[L1 + "attention.output.dense.weight"][:] = False  # layer 1: no heads at all
    masks[L1 + "attention.self.query.weight"][0:SIZE, :5] = False  # partly pruned: stays
    apply_masks(model, masks)
    expected = _logits(model)
    keep, shrunk_masks = shrink_from_masks(model, masks)
    assert keep == StructuredKeep(
        heads=((1, 3), ()),
        neurons=(tuple(j for j in range(128) if j not in {3, 7, 10, 11}), tuple(range(128))),
    )
    torch.testing.assert_close(_logits(model), expected, atol=1e-5, rtol=0)
    assert shrunk_masks[L0 + "attention.self.query.weight"].shape == (32, 64)
    assert shrunk_masks[L0 + "output.dense.weight"].shape == (64, 124)
    assert L1 + "attention.self.query.weight" not in shrunk_masks  # removed with its heads
    assert shrunk_masks[L1 + "intermediate.dense.weight"].all()


def test_head_pattern_masks_shrink_and_save(tmp_path):
    model = tiny_model()
    weights = prunable_weights(model)
    attention = {n: w for n, w in weights.items() if ".attention." in n}
    ffn_in = {n: w for n, w in weights.items() if "intermediate" in n}
    masks = {**_all_kept(model), **compute_masks(attention, "head:4", 0.5)}
    masks.update(compute_masks(ffn_in, "row", 0.25))  # 32 of 128 intermediate rows
    apply_masks(model, masks)
    reference = copy.deepcopy(model)
    keep, shrunk_masks = shrink_from_masks(model, masks)
    assert keep.head_counts() == (2, 2) and keep.intermediate_sizes() == (96, 96)
    torch.testing.assert_close(_logits(model), _logits(reference), atol=1e-5, rtol=0)
    path = save_artifact(
        model, shrunk_masks, tmp_path / "a", source_model="tiny", pattern="head:4",
        method="magnitude", sparsity=0.5,
    )  # fmt: skip
    artifact = load_artifact(path)
    assert artifact.manifest["structure"]["heads_per_layer"] == [2, 2]
    assert artifact.density == 1.0  # every weight left is kept: the pruning is the shrink


def test_cosim_prune_shrink_writes_a_smaller_artifact(tiny_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from studies.cli import app

    out = tmp_path / "shrunk"
    args = ["prune", "--model", str(tiny_dir), "--pattern", "head:4", "--sparsity", "0.5"]
    result = CliRunner().invoke(app, [*args, "--shrink", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["structure"]["heads_per_layer"] == [2, 2]
    # head:4 gives the FFN's 128 intermediate rows 4 groups: 2 pruned, folded and removed
    assert manifest["structure"]["intermediate_per_layer"] == [64, 64]
    assert manifest["schedule"]["job"]["shrink"] is True
    model = load_model(out).model
    assert model.bert.encoder.layer[0].attention.self.query.weight.shape == (32, 64)
    sim = CliRunner().invoke(
        app, ["simulate", "--artifact", str(out), "--hw", "systolic-32x32-ws", "--seq-len", "8"]
    )
    assert sim.exit_code == 0, sim.output
    assert "heads per layer [2, 2]" in " ".join(sim.stdout.split())


def test_shrink_refuses_quantized_admm():
    import pytest

    from pruning.job import PruneJobError, prune_job

    with pytest.raises(PruneJobError, match="shrink removes whole heads"):
        prune_job(pattern="crossbar:4x4", sparsity=0.5, method="admm", task="MRPC",
                  weight_bits=4, shrink=True)  # fmt: skip


def test_cosim_prune_shrink_refuses_distilbert_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from studies.cli import app

    args = ["prune", "--model", "distilbert-base-uncased", "--pattern", "head:12"]
    result = CliRunner().invoke(
        app, [*args, "--sparsity", "0.5", "--shrink", "--out", str(tmp_path / "d"), "--no-progress"]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "model_type 'distilbert' cannot be shrunk" in result.output
