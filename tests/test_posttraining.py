"""Post-training pruning (:mod:`pruning.posttraining`): Wanda and SparseGPT on the tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pruning.job import MAX_CALIBRATION_EXAMPLES, PruneJobError, prune_job
from pruning.masks import compute_masks
from pruning.patterns import parse_pattern
from pruning.posttraining import (
    calibration_batches,
    post_training_prune,
    sparsegpt_prune_weight,
    wanda_mask,
)
from pruning.targets import prunable_weights
from studies.cli import app
from tests.tiny_bert import needs_glue, tiny_model

torch.set_num_threads(1)
runner = CliRunner()

QUERY_1 = "bert.encoder.layer.1.attention.self.query.weight"
FFN_IN_0 = "bert.encoder.layer.0.intermediate.dense.weight"


def batches(n: int = 24, seq: int = 20, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Random token batches whose second half carries padding (mask 0 past 12 tokens)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, seq), generator=generator)
    mask = torch.ones(n, seq, dtype=torch.long)
    mask[n // 2 :, 12:] = 0
    return [
        {"input_ids": ids[i : i + 8], "attention_mask": mask[i : i + 8]} for i in range(0, n, 8)
    ]


def layer_inputs(model: torch.nn.Module, weight_name: str, data: list[dict]) -> torch.Tensor:
    """``X`` ``[in, tokens]`` (float64, kept tokens only) that ``weight_name``'s layer reads."""
    module = model.get_submodule(weight_name.removesuffix(".weight"))
    seen: list[torch.Tensor] = []
    current: dict[str, torch.Tensor] = {}

    def hook(_module, args):
        seen.append(args[0][current["mask"].bool()].to(torch.float64))

    handle = module.register_forward_pre_hook(hook)
    with torch.no_grad():
        for batch in data:
            current["mask"] = batch["attention_mask"]
            model(**batch)
    handle.remove()
    return torch.cat(seen).T


# ----------------------------------------------------------------------------- SparseGPT


@pytest.mark.parametrize(
    ("pattern", "sparsity"), [("unstructured", 0.5), ("nm:2:4", None), ("block:4x4", 0.5)]
)
def test_sparsegpt_reconstructs_better_than_magnitude(pattern: str, sparsity: float | None):
    model = tiny_model()
    weight = dict(model.named_parameters())[FFN_IN_0].detach().to(torch.float64)
    x = layer_inputs(model, FFN_IN_0, batches())
    hessian = x @ x.T / x.shape[1]
    parsed = parse_pattern(pattern)
    pruned, keep = sparsegpt_prune_weight(weight, hessian, parsed, sparsity)
    magnitude = weight * compute_masks({"w": weight}, parsed, sparsity)["w"]

    assert torch.equal(pruned != 0, keep & (weight != 0))
    assert keep.float().mean().item() == pytest.approx(0.5)
    error_sparsegpt = torch.linalg.norm(weight @ x - pruned @ x)
    error_magnitude = torch.linalg.norm(weight @ x - magnitude @ x)
    assert error_sparsegpt < 0.9 * error_magnitude


def test_sparsegpt_blocks_are_whole_and_damping_is_used() -> None:
    torch.manual_seed(0)
    weight = torch.randn(16, 32, dtype=torch.float64)
    x = torch.randn(32, 200, dtype=torch.float64)
    hessian = x @ x.T
    _, keep = sparsegpt_prune_weight(weight, hessian, parse_pattern("block:4x8"), 0.5, blocksize=20)
    tiles = keep.reshape(4, 4, 4, 8).permute(0, 2, 1, 3).reshape(16, 32)
    assert set(tiles.sum(dim=1).tolist()) <= {0, 32}  # each tile all kept or all pruned
    a, _ = sparsegpt_prune_weight(weight, hessian, parse_pattern("unstructured"), 0.5, 0.01)
    b, _ = sparsegpt_prune_weight(weight, hessian, parse_pattern("unstructured"), 0.5, 0.5)
    assert not torch.equal(a, b)


# ----------------------------------------------------------------------------- Wanda


@pytest.mark.parametrize("sparsity", [0.5, 0.3])
def test_wanda_per_row_sparsity_is_exact(sparsity: float) -> None:
    model = tiny_model()
    masks, record = post_training_prune(
        model, prunable_weights(model), batches(), "wanda", parse_pattern("unstructured"), sparsity
    )
    for name, mask in masks.items():
        pruned_per_row = (~mask).sum(dim=1)
        assert set(pruned_per_row.tolist()) == {int(sparsity * mask.shape[1])}, name
    assert record["calibration_tokens_per_layer"] == 12 * 20 + 12 * 12


def test_wanda_score_weighs_weights_by_input_norms() -> None:
    weight = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    norms = torch.tensor([100.0, 1.0, 1.0, 0.01])  # squared norms: 10, 1, 1, 0.1
    mask = wanda_mask(weight, norms, parse_pattern("unstructured"), 0.5)
    assert mask.tolist() == [[True, False, True, False]]  # scores 10, 2, 3, 0.4


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_nm_output_is_exactly_nm(method: str) -> None:
    model = tiny_model()
    weights = prunable_weights(model)
    masks, _ = post_training_prune(model, weights, batches(), method, parse_pattern("nm:2:4"), None)
    for name, mask in masks.items():
        groups = mask.reshape(mask.shape[0], -1, 4).sum(dim=2)
        assert set(groups.flatten().tolist()) == {2}, name
        assert torch.all(weights[name][~mask] == 0), name


# ----------------------------------------------------------------------------- sequential


def test_calibration_uses_the_pruned_earlier_layers() -> None:
    """Layer 1's Wanda mask is the one from layer 1's inputs in the model whose layer 0 is
    pruned, and not the one from the dense model's (which differs here)."""
    data = batches()
    pattern = parse_pattern("unstructured")
    dense = tiny_model()
    model = tiny_model()
    masks, _ = post_training_prune(model, prunable_weights(model), data, "wanda", pattern, 0.5)
    weight = dict(dense.named_parameters())[QUERY_1].detach()

    def mask_from(inputs_model: torch.nn.Module) -> torch.Tensor:
        x = layer_inputs(inputs_model, QUERY_1, data)
        return wanda_mask(weight, (x * x).sum(dim=1), pattern, 0.5)

    assert torch.equal(masks[QUERY_1], mask_from(model))  # later layers do not feed layer 1
    assert not torch.equal(masks[QUERY_1], mask_from(dense))


def test_query_key_value_share_one_calibration_pass() -> None:
    model = tiny_model()
    _, record = post_training_prune(
        model, prunable_weights(model), batches(), "wanda", parse_pattern("nm:2:4"), None
    )
    groups = record["layer_groups"]
    assert len(groups) == 8 and [len(g) for g in groups[:4]] == [3, 1, 1, 1]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "wanda", "pattern": "block:4x4", "sparsity": 0.5}, "supports patterns"),
        ({"method": "sparsegpt", "pattern": "row", "sparsity": 0.5}, "supports patterns"),
        ({"method": "wanda", "calibration_examples": 0}, "calibration_examples: Input should"),
        (
            {"method": "sparsegpt", "calibration_examples": MAX_CALIBRATION_EXAMPLES + 1},
            "calibration_examples: Input should be less",
        ),
        ({"method": "wanda", "damping": 0.1}, "damping applies only to method 'sparsegpt'"),
        ({"method": "sparsegpt", "damping": 0.0}, "damping: Input should be greater"),
        ({"method": "sparsegpt", "blocksize": 0}, "blocksize: Input should be greater"),
        ({"method": "wanda", "scope": "global"}, "prunes per matrix"),
        ({"method": "magnitude", "calibration_examples": 16}, "applies only to methods wanda"),
        ({"method": "sparsegpt", "task": None}, "calibrates on examples"),
    ],
)
def test_bad_options_give_one_clear_error(fields: dict, message: str) -> None:
    settings = {"pattern": "unstructured", "sparsity": 0.5, "task": "MRPC"} | fields
    with pytest.raises(PruneJobError) as error:
        prune_job(**settings)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_calibration_count_is_checked_and_capped_by_the_split() -> None:
    model = tiny_model()
    data = {
        "input_ids": torch.randint(1, 100, (5, 8)),
        "attention_mask": torch.ones(5, 8, dtype=torch.long),
        "token_type_ids": torch.zeros(5, 8, dtype=torch.long),
        "labels": torch.zeros(5, dtype=torch.long),
    }
    with pytest.raises(ValueError, match="positive integer"):
        calibration_batches(data, 0, model)
    chunks, chosen = calibration_batches(data, 128, model, batch_size=2)
    assert chosen == [0, 1, 2, 3, 4] and len(chunks) == 3


def test_cli_bad_calibration_count_is_one_line(tiny_dir: Path, tmp_path: Path) -> None:
    args = ["prune", "--model", str(tiny_dir), "--pattern", "nm:2:4", "--task", "MRPC"]
    args += ["--method", "wanda", "--calibration-examples", "0", "--out", str(tmp_path / "x")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "calibration_examples" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- end to end


@needs_glue
def test_cli_sparsegpt_prune_then_simulate(tiny_dir: Path, tmp_path: Path) -> None:
    out, summary = tmp_path / "art", tmp_path / "summary.json"
    args = ["prune", "--model", str(tiny_dir), "--pattern", "nm:2:4", "--task", "mrpc"]
    args += ["--method", "sparsegpt", "--calibration-examples", "16", "--damping", "0.02"]
    args += ["--max-train-examples", "32", "--max-eval-examples", "16", "--max-seq-len", "24"]
    args += ["--no-progress", "--out", str(out), "--json", str(summary)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(summary.read_text())["density"] == 0.5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "sparsegpt"
    schedule = manifest["schedule"]
    assert schedule["damping"] == 0.02 and schedule["blocksize"] == 128
    assert schedule["calibration"]["examples"] == 16
    assert schedule["method_seconds"] >= 0 and schedule["job"]["retraining_epochs"] == 0
    assert set(manifest["training"]["metrics"]) == {"before", "after-prune"}

    simulated = runner.invoke(app, ["simulate", "--artifact", str(out), "--seq-len", "16"])
    assert simulated.exit_code == 0, simulated.output
    assert "weight density 50.0 %" in simulated.output
