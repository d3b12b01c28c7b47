"""Externally pruned checkpoints (pruned weights are exact zeros, no masks, no manifest):
``--masks-from-zeros`` reads the masks from the zeros; without it a mostly-zero checkpoint
gets a warning instead of silently running dense."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from typer.testing import CliRunner

from pruning.oneshot import magnitude_prune
from pruning.zeros import CheckpointWeightsError, masks_from_zeros, zero_fraction
from studies.cli import app
from tests.tiny_bert import tiny_model
from workloads import ENCODER_LINEAR_ROLES, build_workload

runner = CliRunner()
SPARSITY = 0.8
SPARSE_HW = "systolic-32x32-ws-skip"


def pruned_checkpoint(path: Path, *, sparsity: float = SPARSITY, safetensors: bool = True):
    """A tiny BERT whose encoder weights were magnitude-pruned and the masks folded in (what
    torch.ao.pruning's squash_mask or prune.remove leave), saved without any mask file."""
    model = tiny_model()
    masks = magnitude_prune(model, "unstructured", sparsity) if sparsity else {}
    with torch.no_grad():
        for name, mask in masks.items():
            model.get_parameter(name).mul_(mask)
    if safetensors:
        model.save_pretrained(path)
    else:  # transformers 5 writes safetensors only: the older pickled layout by hand
        model.config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return model, {name: mask.numpy() for name, mask in masks.items()}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("pruned") / "tiny-pruned"
    _, masks = pruned_checkpoint(path)
    return path, masks


def test_masks_are_the_exact_zeros(checkpoint) -> None:
    path, expected = checkpoint
    workload = build_workload(path, seq_len=8)
    masks = masks_from_zeros(workload, path)
    assert set(masks) == set(expected)
    for name, mask in expected.items():
        assert np.array_equal(masks[name], mask)
    roles = ENCODER_LINEAR_ROLES
    assert zero_fraction(workload, path, roles) == pytest.approx(SPARSITY, abs=0.01)


@pytest.mark.parametrize("layout", ["pickle", "base-model"])
def test_other_checkpoint_layouts(tmp_path: Path, layout: str) -> None:
    """pytorch_model.bin (read with weights_only) and a base model's unprefixed names."""
    path = tmp_path / layout
    if layout == "pickle":
        _, expected = pruned_checkpoint(path, safetensors=False)
        assert (path / "pytorch_model.bin").is_file()
    else:
        model, expected = pruned_checkpoint(tmp_path / "full")
        model.bert.save_pretrained(path)  # BertModel: "encoder.layer.0..." names
    workload = build_workload(tmp_path / "full" if layout == "base-model" else path, seq_len=8)
    masks = masks_from_zeros(workload, path)
    for name, mask in expected.items():
        assert np.array_equal(masks[name], mask)


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "other")
    workload = build_workload(tiny_model().config, seq_len=8)
    with pytest.raises(CheckpointWeightsError, match="has shape"):
        masks_from_zeros(workload, tmp_path / "other")


def _simulate(*args: str, out: Path) -> tuple[dict, object]:
    result = runner.invoke(app, ["simulate", "--seq-len", "8", "--hw", SPARSE_HW, *args,
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result


def test_simulate_with_masks_from_zeros_runs_the_zeros_as_pruned(checkpoint, tmp_path) -> None:
    path, _ = checkpoint
    with_masks, result = _simulate("--model", str(path), "--masks-from-zeros",
                                   out=tmp_path / "zeros.json")
    assert with_masks["masks"]["source"] == "zeros"
    assert with_masks["masks"]["encoder_weight_density"] == pytest.approx(1 - SPARSITY, abs=0.01)
    assert with_masks["total"]["speedup"] > 1.0
    assert "masks from the exact zeros" in " ".join(result.stdout.split())
    assert "warning" not in result.stderr


def test_without_the_flag_a_mostly_zero_checkpoint_warns(checkpoint, tmp_path) -> None:
    path, _ = checkpoint
    dense, result = _simulate("--model", str(path), out=tmp_path / "dense.json")
    assert "masks" not in dense and dense["total"]["speedup"] == pytest.approx(1.0)  # dense
    message = " ".join(result.stderr.split())
    assert "warning:" in message and "80.0 % of the model's linear weights are exact zeros" in (
        message
    )
    assert "--masks-from-zeros" in message


def test_a_dense_checkpoint_does_not_warn(tmp_path: Path) -> None:
    pruned_checkpoint(tmp_path / "dense", sparsity=0.0)
    _, result = _simulate("--model", str(tmp_path / "dense"), out=tmp_path / "d.json")
    assert "warning" not in result.stderr


def test_masks_from_zeros_needs_a_checkpoint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--model", "bert-tiny", "--masks-from-zeros"])
    assert result.exit_code == 2
    assert "not a checkpoint with weights" in " ".join(result.stderr.split())


def test_a_study_simulates_checkpoints_with_their_zero_masks(checkpoint, tmp_path) -> None:
    path, _ = checkpoint
    spec = tmp_path / "ckpt.yaml"
    spec.write_text(
        f"name: ckpt\nseq_lens: [8]\nhardware: [{SPARSE_HW}]\ncheckpoints: [{path}]\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "results.parquet")
    assert list(table["mask_source"]) == ["zeros"]
    assert table["weight_density"].iloc[0] < 0.5
    assert table["speedup"].iloc[0] > 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: bad\nseq_lens: [8]\ncheckpoints: [{tmp_path}]\n")
    refused = runner.invoke(app, ["study", "run", str(bad), "--out", str(tmp_path / "o")])
    assert refused.exit_code == 2 and "checkpoints[0]" in refused.stderr
