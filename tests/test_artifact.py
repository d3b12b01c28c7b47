"""Pruning targets, one-shot magnitude pruning and the SparseModel artifact on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from pruning.artifact import (
    MANIFEST_FILE,
    MASKS_FILE,
    ArtifactError,
    load_artifact,
    save_artifact,
)
from pruning.oneshot import magnitude_prune
from pruning.targets import prunable_weights
from tests.tiny_bert import tiny_model
from workloads import build_workload
from workloads.ops import ENCODER_LINEAR_ROLES, GemmRole

torch.set_num_threads(1)

PATTERNS = [("unstructured", 0.5), ("block:4x4", 0.75)]


def copy_artifact(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------- targets


def test_targets_are_the_encoder_linears_named_like_the_workload() -> None:
    model = tiny_model()
    targets = prunable_weights(model)
    workload = build_workload(model.config, batch=1, seq_len=8)
    expected = [op.weight_name for op in workload.gemms if op.role in ENCODER_LINEAR_ROLES]
    assert len(targets) == 12
    assert list(targets) == expected
    params = dict(model.named_parameters())
    for name, weight in targets.items():
        assert weight is params[name]


def test_pooler_and_classifier_only_when_asked() -> None:
    model = tiny_model()
    assert not any("pooler" in n or "classifier" in n for n in prunable_weights(model))
    with_head = prunable_weights(model, include=("encoder", "pooler", "classifier"))
    assert len(with_head) == 14
    assert "bert.pooler.dense.weight" in with_head
    assert "classifier.weight" in with_head
    only_pooler = prunable_weights(model, include=("pooler",))
    assert list(only_pooler) == ["bert.pooler.dense.weight"]
    with pytest.raises(ValueError, match="unknown target group"):
        prunable_weights(model, include=("decoder",))


# ---------------------------------------------------------------------------- one-shot


@pytest.mark.parametrize(("pattern", "sparsity"), PATTERNS)
def test_magnitude_prune_folds_masks_in(pattern: str, sparsity: float) -> None:
    model = tiny_model()
    before = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    masks = magnitude_prune(model, pattern, sparsity)
    assert list(masks) == list(before)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        weight = params[name].detach()
        assert mask.dtype == torch.bool and mask.shape == weight.shape
        assert torch.all(weight[~mask] == 0)
        torch.testing.assert_close(weight[mask], before[name][mask], rtol=0, atol=0)
        # random init has no exact zeros, so the zeros are exactly the pruned entries
        assert torch.equal(weight != 0, mask)
        assert mask.float().mean().item() == pytest.approx(1 - sparsity)


# ---------------------------------------------------------------------------- round trip


def test_round_trip_masks_and_manifest(pruned) -> None:
    _model, masks, out = pruned
    artifact = load_artifact(out)
    assert list(artifact.masks) == list(masks)
    for name, mask in masks.items():
        assert artifact.masks[name].dtype == np.bool_
        np.testing.assert_array_equal(artifact.masks[name], mask.numpy())

    manifest = artifact.manifest
    assert manifest["source_model"] == "tiny-bert"
    assert manifest["pattern"] == "block:4x4"
    assert manifest["method"] == "magnitude"
    assert manifest["schedule"] is None
    nnz = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert manifest["nnz"] == nnz and manifest["total"] == total
    assert manifest["density"] == pytest.approx(0.25)
    assert manifest["compression_ratio"] == pytest.approx(4.0)
    roles = {e["name"]: e["role"] for e in manifest["matrices"]}
    assert roles["bert.encoder.layer.0.attention.self.query.weight"] == GemmRole.QUERY
    assert roles["bert.encoder.layer.1.output.dense.weight"] == GemmRole.FFN_OUT
    for entry in manifest["matrices"]:
        mask = masks[entry["name"]]
        assert entry["shape"] == list(mask.shape)
        assert entry["nnz"] == int(mask.sum())
        assert entry["density"] == pytest.approx(0.25)
        # whole 4x4 blocks are pruned, so occupied blocks == kept fraction
        assert entry["block_occupancy"] == pytest.approx(0.25)


def test_artifact_loads_in_transformers_with_masked_weights(pruned) -> None:
    model, masks, out = pruned
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(out)
    assert isinstance(loaded, transformers.BertForSequenceClassification)
    expected = model.state_dict()
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0)
    params = dict(loaded.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][~mask] == 0)


def test_unstructured_manifest_has_no_block_occupancy(tmp_path: Path) -> None:
    model = tiny_model()
    masks = magnitude_prune(model, "unstructured", 0.5)
    save_artifact(
        model,
        masks,
        tmp_path / "a",
        source_model="tiny-bert",
        pattern="unstructured",
        method="magnitude",
        sparsity=0.5,
        schedule={"steps": 1},
    )
    manifest = load_artifact(tmp_path / "a").manifest
    assert manifest["density"] == pytest.approx(0.5)
    assert manifest["compression_ratio"] == pytest.approx(2.0)
    assert manifest["schedule"] == {"steps": 1}
    assert all("block_occupancy" not in e for e in manifest["matrices"])


def test_save_refuses_unfolded_masks(tmp_path: Path) -> None:
    model = tiny_model()
    from pruning.masks import compute_masks

    masks = compute_masks(prunable_weights(model), "unstructured", 0.5)
    with pytest.raises(ValueError, match="nonzero where its mask is False"):
        save_artifact(
            model,
            masks,
            tmp_path / "a",
            source_model="m",
            pattern="unstructured",
            method="magnitude",
            sparsity=0.5,
        )
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- corruption


def _edit_manifest(path: Path, edit) -> None:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    edit(manifest)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_missing_manifest(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")
    (bad / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json not found"):
        load_artifact(bad)


def test_invalid_json(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")
    (bad / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest\.json is not valid JSON"):
        load_artifact(bad)


def test_missing_required_field(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")
    _edit_manifest(bad, lambda m: m.pop("pattern"))
    with pytest.raises(ArtifactError, match=r"manifest\.json: missing field\(s\) pattern"):
        load_artifact(bad)


def test_matrix_name_must_be_a_string(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")

    def edit(manifest: dict) -> None:
        manifest["matrices"][0]["name"] = ["not", "a", "name"]

    _edit_manifest(bad, edit)
    with pytest.raises(ArtifactError, match=r"matrices\[0\]: name .* is not a parameter name"):
        load_artifact(bad)


def test_manifest_nnz_disagrees_with_mask(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")

    def edit(manifest: dict) -> None:
        manifest["matrices"][3]["nnz"] += 1

    _edit_manifest(bad, edit)
    name = json.loads((bad / MANIFEST_FILE).read_text())["matrices"][3]["name"]
    with pytest.raises(ArtifactError, match=rf"nnz of '{name}' is \d+ but the mask"):
        load_artifact(bad)


def test_mask_shape_mismatch(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")

    def edit(manifest: dict) -> None:
        manifest["matrices"][0]["shape"] = [64, 72]

    _edit_manifest(bad, edit)
    with pytest.raises(ArtifactError, match=r"masks\.safetensors: mask .* shape \[64, 72\]"):
        load_artifact(bad)


def test_truncated_masks_file(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")
    data = (bad / MASKS_FILE).read_bytes()
    (bad / MASKS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"masks\.safetensors could not be read"):
        load_artifact(bad)


def test_mask_missing_from_masks_file(pruned, tmp_path: Path) -> None:
    bad = copy_artifact(pruned[2], tmp_path / "a")

    def edit(manifest: dict) -> None:
        manifest["matrices"][0]["name"] = "bert.nowhere.weight"

    _edit_manifest(bad, edit)
    with pytest.raises(ArtifactError, match=r"missing: \['bert\.nowhere\.weight'\]"):
        load_artifact(bad)


# ---------------------------------------------------------------------------- replacement


def test_save_over_existing_artifact_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "art"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    (out / MANIFEST_FILE).write_text("{}")
    model = tiny_model()
    masks = magnitude_prune(model, "unstructured", 0.5)
    save_artifact(
        model,
        masks,
        out,
        source_model="tiny-bert",
        pattern="unstructured",
        method="magnitude",
        sparsity=0.5,
    )
    assert not (out / "stale.txt").exists()
    assert {MANIFEST_FILE, MASKS_FILE, "config.json", "model.safetensors"} <= {
        p.name for p in out.iterdir()
    }
    assert load_artifact(out).manifest["pattern"] == "unstructured"
    # a second save over a real artifact; still only the one directory in the parent
    model2 = tiny_model()
    masks2 = magnitude_prune(model2, "block:4x4", 0.75)
    save_artifact(
        model2,
        masks2,
        out,
        source_model="tiny-bert",
        pattern="block:4x4",
        method="magnitude",
        sparsity=0.75,
    )
    assert load_artifact(out).manifest["pattern"] == "block:4x4"
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


def test_failed_save_keeps_old_artifact_and_leaves_no_temp(
    pruned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.numpy

    out = copy_artifact(pruned[2], tmp_path / "art")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    model = tiny_model()
    masks = magnitude_prune(model, "unstructured", 0.5)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(
            model,
            masks,
            out,
            source_model="m",
            pattern="unstructured",
            method="magnitude",
            sparsity=0.5,
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


def test_loading_an_artifact_does_not_import_torch() -> None:
    """The simulator reads artifacts without torch (DESIGN: masks reach it as numpy)."""
    import subprocess
    import sys

    code = "import sys, pruning.artifact; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
