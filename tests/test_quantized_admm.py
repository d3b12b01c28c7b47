"""Quantization-aware crossbar ADMM (issue 20 part 3): levels, ADMM with both projections,
straight-through retraining, device variation, the manifest and the crossbar chip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pruning.admm import AdmmPruning, nonzero_groups, project
from pruning.artifact import load_artifact
from pruning.job import PruneJobError, prune_job
from pruning.masking import MaskSet
from pruning.patterns import Crossbar
from pruning.quantize import (
    Quantization,
    QuantizedMasks,
    cell_digits,
    level_scales,
    max_level,
    quantize,
    ste_quantize,
)
from pruning.targets import prunable_weights
from pruning.train import TrainConfig, train
from pruning.variation import DeviceVariation, apply_variation, sigma_sweep, varied_weights
from tests.synthetic_task import synthetic_task
from tests.tiny_bert import needs_glue, tiny_model

torch.set_num_threads(1)


def config(epochs: float, lr: float) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=16, lr=lr, progress=False)


def on_levels(weight: torch.Tensor, scale: float, bits: int) -> bool:
    k = weight.double() / scale
    return bool(
        torch.allclose(k, torch.round(k), atol=1e-4) and k.abs().max() <= max_level(bits) + 1e-4
    )


# ----------------------------------------------------------------------------- levels


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_projected_weights_lie_on_the_levels_and_projection_is_idempotent(bits: int) -> None:
    torch.manual_seed(0)
    w = torch.randn(32, 48)
    scale = level_scales({"w": w}, bits)["w"]
    q = quantize(w, scale, bits)
    assert on_levels(q, scale, bits)
    assert torch.equal(quantize(q, scale, bits), q)  # idempotent
    assert len(torch.unique(q)) <= 2 * max_level(bits) + 1
    assert float((q - w).abs().max()) <= scale / 2 + 1e-6  # nearest level: within half a step
    # values beyond the device range clip to the outermost level
    big = quantize(10 * w, scale, bits)
    assert float(big.abs().max()) == pytest.approx(max_level(bits) * scale)
    assert torch.equal(quantize(torch.zeros(3), scale, bits), torch.zeros(3))  # 0 stays 0


def test_cells_hold_the_offset_code_in_c_bit_digits() -> None:
    levels = torch.tensor([-127, -1, 0, 1, 127])
    digits = cell_digits(levels, 8, 2)  # 4 cells of 2 bits
    assert digits.shape == (5, 4) and int(digits.max()) <= 3 and int(digits.min()) >= 0
    place = torch.tensor([1, 4, 16, 64])
    assert torch.equal((digits * place).sum(-1) - 128, levels)
    odd = cell_digits(torch.tensor([-15, 15]), 5, 2)  # ceil(5 / 2) = 3 cells
    assert odd.shape == (2, 3)


def test_ste_gradient_is_the_identity() -> None:
    w = torch.randn(6, 5, requires_grad=True)
    scale = level_scales({"w": w}, 3)["w"]
    out = ste_quantize(w, scale, 3)
    assert on_levels(out.detach(), scale, 3)
    weights = torch.randn(6, 5)
    (out * weights).sum().backward()
    assert torch.equal(w.grad, weights)  # d(sum(Q(W) * A))/dW = A straight through


# ----------------------------------------------------------------------------- ADMM, retraining


def test_admm_with_both_projections_then_quantized_masked_retraining() -> None:
    tile, sparsity, bits = Crossbar(16, 16), 0.5, 4
    model = tiny_model()
    weights = prunable_weights(model)
    quant = Quantization(bits, 2)
    admm = AdmmPruning(weights, tile, sparsity, update_every=4, quantization=quant)
    train(model, synthetic_task(n=32), config(epochs=2, lr=3e-3), [admm])
    for name, z in admm.z.items():  # Z = Q(Proj_S(W + U)): sparse and on the levels
        assert on_levels(z, quant.scales[name], bits), name
        groups = (z.shape[0] // 16) * (z.shape[1] // 16)
        assert nonzero_groups(z, 16, 16) <= groups - int(sparsity * groups), name
    masks = MaskSet(model, project(weights, tile, sparsity))
    masks.apply()
    before = {n: w.detach().clone() for n, w in weights.items()}
    hook = QuantizedMasks(masks, weights, quant)
    train(model, synthetic_task(n=32), config(epochs=1, lr=3e-3), [hook])
    moved = 0.0
    for name, w in weights.items():
        assert on_levels(w.detach(), quant.scales[name], bits), name
        assert not torch.any(w.detach()[~masks.masks[name]])  # pruned stay zero
        # STE: the float latent weights moved by the optimizer's steps
        moved += float((hook.latent[name] - before[name]).abs().sum())
    assert moved > 0


# ----------------------------------------------------------------------------- variation


def quantized_tiny() -> tuple[torch.nn.Module, dict, Quantization]:
    model = tiny_model()
    weights = prunable_weights(model)
    masks = project(weights, Crossbar(16, 16), 0.5)
    quant = Quantization(6, 2).fit(weights)
    with torch.no_grad():
        for name, w in weights.items():
            w.copy_(quantize(w * masks[name], quant.scales[name], 6))
    return model, masks, quant


def test_variation_at_sigma_zero_is_exactly_the_identity() -> None:
    model, masks, quant = quantized_tiny()
    same = apply_variation(model, masks, quant, DeviceVariation(0.0), seed=3)
    for (name, a), (_, b) in zip(model.named_parameters(), same.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_variation_is_seeded_keeps_pruned_zeros_and_grows_with_sigma() -> None:
    model, masks, quant = quantized_tiny()
    name = next(iter(quant.scales))
    w = dict(model.named_parameters())[name].detach()
    errors = []
    for sigma in (0.02, 0.2):
        a = apply_variation(model, masks, quant, DeviceVariation(sigma), seed=1)
        b = apply_variation(model, masks, quant, DeviceVariation(sigma), seed=1)
        wa = dict(a.named_parameters())[name].detach()
        assert torch.equal(wa, dict(b.named_parameters())[name].detach())  # seeded
        assert not torch.any(wa[~masks[name]])  # pruned weights have no cells
        errors.append(float((wa - w).abs().mean()))
    assert 0 < errors[0] < errors[1]


def test_stuck_cells_read_the_device_extremes() -> None:
    quant = Quantization(4, 2, on_off_ratio=10.0, scales={"w": 1.0})
    w = torch.tensor([[0.0, 3.0, -7.0]])
    gen = torch.Generator().manual_seed(0)
    on = varied_weights(w, None, 1.0, quant, DeviceVariation(stuck_on=1.0), gen)
    off = varied_weights(w, None, 1.0, quant, DeviceVariation(stuck_off=1.0), gen)
    # every digit at its top (code 15 -> k = 7) or at zero (code 0 -> k = -8)
    assert torch.allclose(on, torch.full_like(w, 7.0), atol=1e-6)
    assert torch.allclose(off, torch.full_like(w, -8.0), atol=1e-6)
    with pytest.raises(ValueError, match="not on its 4-bit levels"):
        varied_weights(w + 0.3, None, 1.0, quant, DeviceVariation(0.1), gen)


def test_sigma_sweep_table_has_mean_and_se_per_sigma() -> None:
    model, masks, quant = quantized_tiny()
    x = torch.randint(0, 100, (4, 8))

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return {"logit_mean": float(m(input_ids=x).logits.mean())}

    table = sigma_sweep(model, masks, quant, evaluate, [0.0, 0.1], seeds=(0, 1, 2))
    assert list(table["sigma"]) == [0.0, 0.1]
    assert list(table["seeds"]) == [1, 3]
    assert table["se"].iloc[0] == 0 and table["se"].iloc[1] > 0


# ----------------------------------------------------------------------------- job and CLI


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "gradual", "weight_bits": 8}, "applies only to method 'admm'"),
        ({"method": "admm", "cell_bits": 2}, "give weight_bits too"),
        ({"method": "admm", "weight_bits": 2, "cell_bits": 4}, "must not exceed"),
        ({"method": "admm", "weight_bits": 8, "on_off_ratio": 1.0}, "on_off_ratio"),
        ({"method": "admm", "weight_bits": 1}, "weight_bits"),
    ],
)
def test_bad_quantization_jobs_are_one_clear_error(fields: dict, message: str) -> None:
    with pytest.raises(PruneJobError) as error:
        prune_job(pattern="crossbar:16x16", sparsity=0.5, task="MRPC", **fields)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_job_record_keeps_other_methods_unchanged() -> None:
    plain = prune_job(pattern="crossbar:16x16", sparsity=0.5, task="MRPC", method="admm")
    assert "weight_bits" not in plain.record() and "quantization" not in plain.record()
    quantized = prune_job(
        pattern="crossbar:16x16", sparsity=0.5, task="MRPC", method="admm", weight_bits=8
    )
    assert quantized.record()["quantization"] == {
        "weight_bits": 8,
        "cell_bits": 2,
        "on_off_ratio": 17.0,
    }


@needs_glue
def test_cosim_prune_quantized_admm_writes_levels_and_manifest(
    tiny_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from studies.cli import app

    out = tmp_path / "q"
    result = CliRunner().invoke(
        app,
        [
            "prune", "--model", str(tiny_dir), "--task", "MRPC", "--pattern", "crossbar:16x16",
            "--sparsity", "0.5", "--method", "admm", "--weight-bits", "4", "--cell-bits", "2",
            "--on-off-ratio", "10", "--max-train-examples", "32", "--max-eval-examples", "16",
            "--max-seq-len", "16", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3",
            "--no-progress", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = load_artifact(out).manifest
    q = manifest["quantization"]
    assert (q["weight_bits"], q["cell_bits"], q["on_off_ratio"]) == (4, 2, 10.0)
    assert q["cells_per_weight"] == 2
    assert manifest["schedule"]["kind"] == "quantized admm"
    assert manifest["density"] == pytest.approx(0.5, abs=0.01)
    from safetensors.torch import load_file

    state = load_file(out / "model.safetensors")
    for name, scale in q["scales"].items():
        assert on_levels(state[name], scale, 4), name
    json.dumps(manifest, allow_nan=False)


# ----------------------------------------------------------------------------- crossbar chip


def test_halving_weight_bits_halves_crossbars_and_adc_energy() -> None:
    import numpy as np

    from accel_sim import simulate
    from accel_sim.datapaths.crossbar.quantized import reduction_vs_dense, with_weight_quantization
    from accel_sim.spec import load_hardware
    from workloads import build_workload

    chip = load_hardware("isaac-crossbar")
    assert chip.encoding.weight_bits == 16 and chip.crossbar.bits_per_cell == 2
    workload = build_workload("bert-mini", batch=1, seq_len=16)
    runs = {}
    for bits in (16, 8, 4):
        derived = with_weight_quantization(chip, {"weight_bits": bits, "cell_bits": 2})
        assert derived.weight_slices == bits // 2  # ceil(B / c) slice crossbars per block
        runs[bits] = simulate(workload, derived, baseline=False)
    for bits in (8, 4):
        full, half = runs[bits * 2], runs[bits]
        # the model: crossbars = mapped blocks x ceil(B / c) x encoding; every conversion is
        # per slice crossbar, so ADC energy scales with the slices too
        assert half.crossbars_unreplicated * 2 == full.crossbars_unreplicated
        assert half.adc_conversions * 2 == full.adc_conversions
        adc_half, adc_full = half.energy_breakdown_j["adc"], full.energy_breakdown_j["adc"]
        assert adc_half == pytest.approx(adc_full / 2, rel=1e-12)
        assert half.energy_j < full.energy_j
    table = reduction_vs_dense(runs[4], runs[16])
    assert table["crossbars"]["ratio"] == pytest.approx(0.25)
    assert 0 < table["power_w"]["reduction"] < 1 and 0 < table["area_mm2"]["reduction"] < 1
    assert np.isfinite(table["energy_j"]["reduction"])


def test_simulate_quantized_artifact_reports_against_dense_16_bit(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pruning.artifact import save_artifact
    from studies.cli import app

    model, masks, quant = quantized_tiny()
    out = save_artifact(
        model, masks, tmp_path / "q", source_model="tiny-bert", pattern="crossbar:16x16",
        method="admm", sparsity=0.5, quantization=quant.record(),
    )  # fmt: skip
    assert load_artifact(out).manifest["quantization"]["weight_bits"] == 6
    json_path = tmp_path / "sim.json"
    args = ["simulate", "--artifact", str(out), "--hw", "isaac-crossbar", "--seq-len", "16"]
    result = CliRunner().invoke(app, [*args, "--json", str(json_path)])
    assert result.exit_code == 0, result.output
    assert "dense 16-bit" in result.output and "reduction" in result.output
    document = json.loads(json_path.read_text())
    assert document["hardware_config"]["encoding"]["weight_bits"] == 6
    block = document["quantization"]["vs_dense_full_precision"]
    # 6-bit weights in 2-bit cells: 3 slices against 8, and half the blocks of most matrices
    assert block["crossbars"]["ratio"] <= 3 / 8 + 1e-9
    assert block["adc_conversions"]["reduction"] > 0.5
    assert block["area_mm2"]["reduction"] >= 0 and block["power_w"]["dense"] > 0
