"""Fisher-based mask search (pruning.fisher, pruning.mask_tuning, pruning.fisher_prune) on the
tiny BERT: whole heads and neurons go, the FLOPs budget holds, tuning never increases a
layer's reconstruction error, and the shrunk model reloads with the masked model's logits."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pruning.artifact import save_artifact
from pruning.fisher import (
    StructuredShape,
    encoder_layers,
    flops_fraction_of,
    flops_per_head,
    flops_per_neuron,
    mask_hooks,
    rearrange_layer,
    search_flops,
)
from pruning.fisher_prune import check_flops_fraction, fisher_mask_prune
from pruning.job import PruneJobError, prune_job
from pruning.mask_tuning import ffn_normal_equations, lstsq_error, solve_scales, tune_masks
from pruning.models import load_model
from pruning.shrink import StructuredKeep, shrink_model, structured_keep_of
from studies.cli import app
from tests.tiny_bert import needs_glue, tiny_model

torch.set_num_threads(1)
runner = CliRunner()
HEAD_SIZE = 16  # tiny model: hidden 64, 4 heads, intermediate 128, 2 layers


def batches(n: int = 48, seq: int = 20, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Labelled random token batches of 8; the second half carries padding past 12 tokens."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, seq), generator=generator)
    mask = torch.ones(n, seq, dtype=torch.long)
    mask[n // 2 :, 12:] = 0
    labels = torch.randint(0, 2, (n,), generator=generator)
    return [
        {
            "input_ids": ids[i : i + 8],
            "attention_mask": mask[i : i + 8],
            "labels": labels[i : i + 8],
        }
        for i in range(0, n, 8)
    ]


def logits(model: torch.nn.Module, data: list[dict]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [model(**{k: v for k, v in b.items() if k != "labels"}).logits for b in data]
        )


@pytest.fixture(scope="module")
def pruned_tiny():
    """(dense copy, pruned model, FisherMasks) at half the FLOPs."""
    model = tiny_model()
    dense = copy.deepcopy(model)
    result = fisher_mask_prune(model, batches(), 0.5, cls_head=True)
    return dense, model, result


# ----------------------------------------------------------------------------- FLOPs and search


def test_flops_per_head_and_neuron_follow_the_paper_formula() -> None:
    # efficiency/mac.py: per head 3*s*d*dh + 2*s^2*dh + s*dh*d MACs; per neuron 2*s*d MACs.
    s, d, dh = 10, 64, 16
    assert flops_per_head(s, d, dh) == 2 * (3 * s * d * dh + 2 * s * s * dh + s * dh * d)
    assert flops_per_neuron(s, d) == 2 * 2 * s * d


@pytest.mark.parametrize("fraction", [0.05, 0.4, 0.5, 0.6, 0.93])
def test_search_keeps_at_most_the_flops_budget(fraction: float) -> None:
    shape = StructuredShape(layers=3, heads=4, head_size=16, hidden=64, intermediate=128)
    generator = torch.Generator().manual_seed(3)
    head_fisher = torch.rand(3, 4, generator=generator, dtype=torch.float64)
    neuron_fisher = torch.rand(3, 128, generator=generator, dtype=torch.float64) / 20
    heads, neurons = search_flops(head_fisher, neuron_fisher, shape, 20.0, fraction)
    kept = flops_fraction_of(heads, neurons, shape, 20.0)
    assert kept <= fraction + 1e-12
    dense = 3 * (4 * flops_per_head(20.0, 64, 16) + 128 * flops_per_neuron(20.0, 64))
    neuron_share = flops_per_neuron(20.0, 64) / dense
    # the budget left over holds no further neuron (unless every neuron is kept)
    assert bool(neurons.all()) or kept > fraction - neuron_share
    assert set(heads.unique().tolist()) <= {0.0, 1.0} and set(neurons.unique().tolist()) <= {0, 1}
    # the kept neurons are the most important ones (global ranking)
    if 0 < int(neurons.sum()) < neurons.numel():
        assert neuron_fisher[neurons == 1].min() >= neuron_fisher[neurons == 0].max()


def test_search_at_one_keeps_everything() -> None:
    shape = StructuredShape(layers=2, heads=4, head_size=16, hidden=64, intermediate=128)
    heads, neurons = search_flops(torch.rand(2, 4), torch.rand(2, 128), shape, 12.0, 1.0)
    assert bool(heads.all()) and bool(neurons.all())


def test_rearrangement_keeps_the_count_and_lowers_the_pruned_gradient_norm() -> None:
    generator = torch.Generator().manual_seed(5)
    grads = torch.randn(6, 10, generator=generator, dtype=torch.float64)
    mask = torch.zeros(10)
    mask[grads.pow(2).sum(0).argsort(descending=True)[:4]] = 1.0  # the top-Fisher entries
    new = rearrange_layer(mask, grads)
    assert int(new.sum()) == 4

    def pruned_norm(m: torch.Tensor) -> float:
        return float(grads[:, m == 0].sum(dim=1).pow(2).sum())

    assert pruned_norm(new) <= pruned_norm(mask) + 1e-12


# ----------------------------------------------------------------------------- the method


def test_fisher_masks_remove_whole_heads_and_neurons(pruned_tiny) -> None:
    _, model, result = pruned_tiny
    record = result.record
    assert record["flops_fraction_kept"] <= 0.5
    assert 0 < record["kept_heads"] < 8 and 0 < record["kept_neurons"] < 256
    for index, layer in enumerate(encoder_layers(model)):
        for head in set(range(4)) - set(result.kept_heads[index]):
            columns = slice(head * HEAD_SIZE, (head + 1) * HEAD_SIZE)
            assert not layer.attention.output.dense.weight[:, columns].any()
            for name in ("query", "key", "value"):
                assert not getattr(layer.attention.self, name).weight[columns].any()
        dropped = sorted(set(range(128)) - set(result.kept_neurons[index]))
        assert not layer.output.dense.weight[:, dropped].any()
        assert not layer.intermediate.dense.weight[dropped].any()
        kept = list(result.kept_neurons[index])
        assert layer.output.dense.weight[:, kept].abs().sum(dim=0).min() > 0


def test_folded_weights_compute_what_the_hooked_masks_do(pruned_tiny) -> None:
    dense, model, result = pruned_tiny
    with mask_hooks(dense, result.head_mask, result.neuron_mask):
        hooked = logits(dense, batches(seed=1))
    torch.testing.assert_close(logits(model, batches(seed=1)), hooked, atol=1e-5, rtol=1e-5)


def test_tuning_never_increases_a_layers_reconstruction_error() -> None:
    model = tiny_model()
    data = batches()
    dense = (torch.ones(2, 4), torch.ones(2, 128))
    student = (torch.tensor([[1.0, 0, 1, 1], [0, 1, 1, 0]]), (torch.rand(2, 128) < 0.4).float())
    heads, neurons, record = tune_masks(model, data, dense, student, cls_head=False)
    assert record["stopped_at_layer"] is None
    for layer in record["layers"]:
        for part in ("heads", "neurons"):
            if part in layer:
                assert layer[part]["used"]
                assert layer[part]["error_after"] <= layer[part]["error_before"] + 1e-9
    assert not torch.equal(neurons, student[1])  # the values did change
    assert torch.equal(heads[0], student[0][0])  # layer 0's heads are left as they are

    # Independently: the last layer's pre-LayerNorm FFN output against the dense model's.
    untuned = neurons.clone()
    untuned[1] = student[1][1]

    def ffn_error(head_mask: torch.Tensor, neuron_mask: torch.Tensor) -> float:
        block = encoder_layers(model)[1].output
        seen: list[torch.Tensor] = []

        def capture(_module, args):
            seen.append(block.dense(args[0]) + args[1])

        total = 0.0
        for batch in data:
            keep = batch["attention_mask"].bool()
            outputs = []
            for masks in (dense, (head_mask, neuron_mask)):
                with torch.no_grad(), mask_hooks(model, *masks):
                    handle = block.register_forward_pre_hook(capture)  # after the mask hooks
                    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                    handle.remove()
                outputs.append(seen.pop()[keep].double())
            total += float((outputs[0] - outputs[1]).pow(2).sum())
        return total

    before, after = ffn_error(heads, untuned), ffn_error(heads, neurons)
    assert after < before
    assert after == pytest.approx(record["layers"][1]["neurons"]["error_after"], rel=1e-4)


def test_least_squares_solution_is_no_worse_than_ones() -> None:
    generator = torch.Generator().manual_seed(7)
    inner = torch.randn(50, 12, generator=generator, dtype=torch.float64)
    weight = torch.randn(8, 12, generator=generator, dtype=torch.float64)
    target = torch.randn(50, 8, generator=generator, dtype=torch.float64)
    kept = torch.tensor([0, 2, 3, 7, 11])
    ata, atb, btb = ffn_normal_equations(inner, torch.zeros(50, 8), target, weight, 0 * target[0],
                                         kept)  # fmt: skip
    scales, problem = solve_scales(ata, atb)
    assert problem is None

    def direct(s: torch.Tensor) -> float:
        return float((inner[:, kept] * s @ weight[:, kept].T - target).pow(2).sum())

    assert lstsq_error(ata, atb, btb, scales) == pytest.approx(direct(scales))
    assert direct(scales) <= direct(torch.ones(5, dtype=torch.float64))


def test_shrunk_model_reloads_with_the_masked_models_logits(pruned_tiny, tmp_path: Path) -> None:
    dense, model, result = pruned_tiny
    with mask_hooks(dense, result.head_mask, result.neuron_mask):
        masked = logits(dense, batches(seed=2))
    shrunk = copy.deepcopy(model)
    keep = StructuredKeep(result.kept_heads, result.kept_neurons)
    shrink_model(shrunk, keep)
    masks = {
        name: torch.ones_like(p, dtype=torch.bool)
        for name, p in shrunk.named_parameters()
        if name.endswith("weight") and p.dim() == 2 and ".encoder." in name
    }
    out = save_artifact(
        shrunk, masks, tmp_path / "art", source_model="tiny-bert", pattern="unstructured",
        method="fisher-mask", sparsity=0.0,
    )  # fmt: skip
    reloaded = load_model(out, num_labels=2).model
    assert structured_keep_of(reloaded.config) == keep
    torch.testing.assert_close(logits(reloaded, batches(seed=2)), masked, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"flops_fraction": 0.0}, "flops_fraction: Input should be greater than 0"),
        ({"flops_fraction": 1.5}, "flops_fraction: Input should be less than or equal to 1"),
        ({"flops_fraction": None}, "give flops_fraction, a number in (0, 1]"),
        ({"pattern": "unstructured"}, "drop pattern"),
        ({"sparsity": 0.5}, "drop sparsity"),
        ({"calibration_examples": 0}, "calibration_examples: Input should be greater"),
        ({"task": None}, "calibrates on examples"),
        ({"shrink": True}, "already removes the heads and neurons it prunes: drop shrink"),
    ],
)
def test_bad_options_give_one_clear_error(fields: dict, message: str) -> None:
    settings = {"method": "fisher-mask", "flops_fraction": 0.5, "task": "SST-2"} | fields
    with pytest.raises(PruneJobError) as error:
        prune_job(**{k: v for k, v in settings.items() if v is not None})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_other_methods_refuse_flops_fraction_and_need_a_pattern() -> None:
    with pytest.raises(PruneJobError, match="flops_fraction applies only to method"):
        prune_job(pattern="unstructured", sparsity=0.5, flops_fraction=0.5)
    with pytest.raises(PruneJobError, match="pattern is required"):
        prune_job(sparsity=0.5)


@pytest.mark.parametrize("value", [0, -0.1, 1.01, float("nan"), True, "half"])
def test_library_refuses_a_bad_fraction(value: object) -> None:
    with pytest.raises(ValueError, match="flops_fraction must be"):
        check_flops_fraction(value)


def test_cli_bad_flops_fraction_is_one_line(tiny_dir: Path, tmp_path: Path) -> None:
    args = ["prune", "--model", str(tiny_dir), "--method", "fisher-mask", "--task", "SST-2"]
    args += ["--flops-fraction", "1.5", "--out", str(tmp_path / "x")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "flops_fraction" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- end to end


@needs_glue
def test_cli_fisher_mask_prunes_shrinks_and_simulates(tiny_dir: Path, tmp_path: Path) -> None:
    out, summary = tmp_path / "art", tmp_path / "summary.json"
    args = ["prune", "--model", str(tiny_dir), "--method", "fisher-mask", "--task", "SST-2"]
    args += ["--flops-fraction", "0.5", "--calibration-examples", "32", "--batch-size", "8"]
    args += ["--max-train-examples", "32", "--max-eval-examples", "16", "--max-seq-len", "24"]
    args += ["--no-progress", "--out", str(out), "--json", str(summary)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "encoder FLOPs kept" in result.output and "kept heads / FFN neurons" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    schedule = manifest["schedule"]
    assert manifest["method"] == "fisher-mask" and manifest["density"] == 1.0
    assert schedule["flops_fraction_kept"] <= 0.5 and schedule["gradient_batches"] == 4
    assert schedule["calibration"]["examples"] == 32
    assert set(manifest["training"]["metrics"]) == {"before", "after-prune"}
    keep = structured_keep_of(load_model(out, num_labels=2).model.config)
    assert keep is not None
    assert sum(map(len, keep.heads)) == schedule["kept_heads"] < 8
    assert sum(map(len, keep.neurons)) == schedule["kept_neurons"] < 256

    simulated = runner.invoke(app, ["simulate", "--artifact", str(out), "--seq-len", "16"])
    assert simulated.exit_code == 0, simulated.output


def test_a_fit_outside_the_paper_bounds_is_rejected_with_its_reason() -> None:
    ata = torch.tensor([[1e-4]], dtype=torch.float64)
    _, problem = solve_scales(ata, torch.tensor([1.0], dtype=torch.float64))
    assert problem is not None and "outside [-10, 10]" in problem
    _, problem = solve_scales(torch.zeros(1, 1, dtype=torch.float64), torch.ones(1))
    assert problem == "the kept unit never contributes"
