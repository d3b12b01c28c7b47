"""A shrunk model's artifact: masks at the shrunk shapes, a manifest ``structure`` block the
loader checks, a checkpoint that reloads at its new shapes, and a smaller workload."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from pruning.artifact import MANIFEST_FILE, ArtifactError, load_artifact, save_artifact
from pruning.models import load_model
from pruning.oneshot import magnitude_prune
from pruning.shrink import ShrinkError, StructuredKeep, shrink_model
from pruning.shrink_manifest import check_structure
from tests.tiny_bert import tiny_model
from workloads import artifact_workload
from workloads.ops import GemmRole

KEEP = StructuredKeep(heads=((1, 3), ()), neurons=(tuple(range(0, 100, 2)), ()))
PREFIX = "bert.encoder.layer.0."


@pytest.fixture(scope="module")
def shrunk_artifact(tmp_path_factory):
    model = tiny_model()
    shrink_model(model, KEEP)
    masks = magnitude_prune(model, "block:2x2", 0.5)
    out = tmp_path_factory.mktemp("shrunk") / "artifact"
    save_artifact(
        model, masks, out, source_model="tiny-bert", pattern="block:2x2", method="magnitude",
        sparsity=0.5,
    )  # fmt: skip
    return model, out


def test_manifest_records_the_structure(shrunk_artifact):
    _, path = shrunk_artifact
    artifact = load_artifact(path)
    assert artifact.manifest["structure"] == {
        "kept_heads": [[1, 3], []],
        "kept_neurons": [list(range(0, 100, 2)), []],
        "heads_per_layer": [2, 0],
        "intermediate_per_layer": [50, 0],
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "hidden_size": 64,
    }
    shapes = {name: mask.shape for name, mask in artifact.masks.items()}
    assert shapes[PREFIX + "attention.self.query.weight"] == (32, 64)
    assert shapes[PREFIX + "attention.output.dense.weight"] == (64, 32)
    assert shapes[PREFIX + "intermediate.dense.weight"] == (50, 64)
    assert shapes[PREFIX + "output.dense.weight"] == (64, 50)
    assert not any(".layer.1." in name for name in shapes)  # layer 1 kept no weights


def test_shrunk_artifact_reloads_with_identical_logits(shrunk_artifact):
    model, path = shrunk_artifact
    loaded = load_model(path, num_labels=2).model
    ids = torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_artifact_workload_is_the_shrunk_one(shrunk_artifact):
    _, path = shrunk_artifact
    workload = artifact_workload(load_artifact(path), 1, 8)
    shapes = {op.role: (op.k, op.n, op.count) for op in workload.gemms if op.layer == 0}
    assert shapes[GemmRole.QUERY] == (64, 32, 1)
    assert shapes[GemmRole.ATTENTION_SCORES] == (16, 8, 2)
    assert shapes[GemmRole.FFN_OUT] == (50, 64, 1)
    assert not [op for op in workload.gemms if op.layer == 1]
    masked = [op for op in workload.gemms if op.mask is not None]
    assert len(masked) == 6 and all(op.mask.shape == (op.n, op.k) for op in masked)


def _edited(source, tmp_path, edit):
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    edit(manifest)
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("structure"), "config.json records a shrunk model"),
        (
            lambda m: m["structure"].update(kept_heads=[[1, 4], []]),
            r"kept_heads\[0\] holds index 4",
        ),
        (lambda m: m["structure"].update(heads_per_layer=[2, 1]), r"structure\.heads_per_layer"),
        (lambda m: m["structure"].update(kept_heads=[[1, 2], []]), "disagree with config.json"),
        (lambda m: m["structure"].pop("hidden_size"), "structure lacks field"),
        (lambda m: m.update(structure=[1]), "field structure must be an object"),
    ],
)
def test_bad_structure_names_the_field(shrunk_artifact, tmp_path, edit, message):
    with pytest.raises(ArtifactError, match=message):
        load_artifact(_edited(shrunk_artifact[1], tmp_path, edit))


def test_masks_must_fit_the_structure(shrunk_artifact):
    artifact = load_artifact(shrunk_artifact[1])
    block = artifact.manifest["structure"]
    wide = {PREFIX + "intermediate.dense.weight": np.ones((128, 64), dtype=bool)}
    with pytest.raises(ShrinkError, match=r"has shape \[128, 64\] but structure gives \[50, 64\]"):
        check_structure("manifest.json", block, wide, None)
    removed = {"bert.encoder.layer.1.attention.self.query.weight": np.ones((16, 64), dtype=bool)}
    with pytest.raises(ShrinkError, match="names a matrix the shrink removed"):
        check_structure("manifest.json", block, removed, None)


def test_simulate_reports_the_unshrunk_dense_model(shrunk_artifact, tmp_path):
    from typer.testing import CliRunner

    from studies.cli import app

    out = tmp_path / "sim.json"
    args = ["simulate", "--artifact", str(shrunk_artifact[1]), "--hw", "systolic-32x32-ws"]
    result = CliRunner().invoke(app, [*args, "--seq-len", "8", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "shrunk model: heads per layer [2, 0], FFN width per layer [50, 0]" in " ".join(
        result.stdout.split()
    )
    block = json.loads(out.read_text())["structure"]
    assert block["unshrunk_dense"]["macs"] > block["shrunk_dense"]["macs"]
    # dense hardware gains from the smaller GEMMs alone (the masks change nothing on it)
    assert block["shrunk_dense"]["latency_s"] < block["unshrunk_dense"]["latency_s"]
    assert block["speedup_shrinking"] == pytest.approx(
        block["unshrunk_dense"]["latency_s"] / block["shrunk_dense"]["latency_s"]
    )
