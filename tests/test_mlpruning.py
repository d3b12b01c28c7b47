"""MLPruning (Yao et al. 2021): learnable top-k reaches ceil(k n), straight-through gradients
reach scores and theta, the adaptive regulariser pulls the kept fraction to its target, the
step-1 model shrinks and its artifact reloads with equal logits, the CLI end to end and bad
options (tiny BERT)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from pruning.artifact import load_artifact, save_artifact
from pruning.job import PruneJobError, prune_job
from pruning.learnable_topk import (
    adaptive_lambda,
    keep_count,
    learnable_top_k,
    remaining_fraction,
)
from pruning.mlpruning import MLPruningMasks
from pruning.models import load_model
from pruning.shrink import StructuredKeep, shrink_model, structured_keep_of
from studies.cli import app
from tests.tiny_bert import needs_glue, tiny_model

torch.set_num_threads(1)
runner = CliRunner()
HEAD_SIZE = 16  # tiny model: hidden 64, 4 heads; FFN 128


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 100, (8, 12), generator=generator)
    attention = torch.ones_like(ids)
    attention[2, 8:] = 0
    labels = torch.randint(0, 2, (8,), generator=generator)
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def _score_steps(model, hook: MLPruningMasks, steps: int) -> list[float]:
    """``steps`` updates of the masks only (weights fixed); the expected remaining fraction
    after each."""
    batch, seen = _batch(), []
    for step in range(1, steps + 1):
        loss = model(**batch).loss
        term = hook.loss_term(model, step)
        if term is not None:
            loss = loss + term
        model.zero_grad(set_to_none=True)
        loss.backward()
        hook.after_optimizer_step(model, step)
        seen.append(float(hook.expected_remaining().detach()))
    return seen


# ----------------------------------------------------------------------------- top-k


@pytest.mark.parametrize("n", [7, 12, 100])
@pytest.mark.parametrize("theta", [-3.0, -0.5, 0.0, 0.7, 2.0, 10.0])
def test_top_k_keeps_ceil_of_ratio_times_n(n: int, theta: float) -> None:
    scores = torch.randn(n, generator=torch.Generator().manual_seed(n))
    mask = learnable_top_k(scores, torch.tensor(theta))
    expected = max(1, math.ceil(1 / (1 + math.exp(-theta)) * n))
    assert abs(int(mask.sum()) - expected) <= 1
    assert int(mask.sum()) == keep_count(torch.tensor(theta), n)
    kept, dropped = scores[mask.bool()], scores[~mask.bool()]
    assert dropped.numel() == 0 or kept.min() >= dropped.max()


def test_straight_through_gradients_to_scores_and_theta() -> None:
    scores = torch.randn(10, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    theta = torch.tensor(0.3, requires_grad=True)
    upstream = torch.arange(10, dtype=torch.float32) - 4.0
    mask = learnable_top_k(scores, theta)
    (mask * upstream).sum().backward()
    torch.testing.assert_close(scores.grad, upstream)  # dS = grad
    torch.testing.assert_close(theta.grad, (upstream * mask.detach()).sum())  # sum(grad * M)


def test_gradients_reach_every_group_of_tiny_bert() -> None:
    model = tiny_model().train()
    for levels in (("heads", "rows"), ("blocks",)):
        hook = MLPruningMasks(model, levels, 0.5, block=(16, 16))
        hook.on_train_begin(model, 10)
        batch = _batch()
        (model(**batch).loss + hook.loss_term(model, 1)).backward()
        for group in hook.groups:
            assert group.scores.grad is not None and group.scores.grad.abs().sum() > 0
            assert group.theta.grad is not None and group.theta.grad != 0
        hook.on_train_end(model)


def test_head_and_row_masks_cover_their_matrices_jointly() -> None:
    model = tiny_model()
    hook = MLPruningMasks(model, ("heads", "rows"), 0.5)
    with torch.no_grad():
        for group in hook.groups:
            group.theta.fill_(0.0)  # keep ratio 0.5
            group.scores.copy_(torch.arange(group.scores.numel(), dtype=torch.float32))
    masks = hook.keep_masks()
    prefix = "bert.encoder.layer.0"
    kept = slice(2 * HEAD_SIZE, 4 * HEAD_SIZE)  # heads 2 and 3 score highest
    for name in ("query", "key", "value"):
        mask = masks[f"{prefix}.attention.self.{name}.weight"]
        assert mask[kept].all() and not mask[: 2 * HEAD_SIZE].any()
    output = masks[f"{prefix}.attention.output.dense.weight"]
    assert output[:, kept].all() and not output[:, : 2 * HEAD_SIZE].any()
    assert masks[f"{prefix}.intermediate.dense.weight"][64:].all()
    assert not masks[f"{prefix}.output.dense.weight"][:, :64].any()
    assert hook.kept_indices("heads") == ((2, 3), (2, 3))
    assert hook.kept_indices("rows") == (tuple(range(64, 128)),) * 2
    assert hook.remaining() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- regulariser


def test_remaining_fraction_is_the_papers_count_on_bert_base() -> None:
    """P / 144 with o = f2 = 1: (3h + h + 4 f1 + 4 f1) per layer over 12 units a layer."""
    theta_h, theta_f = torch.tensor(0.4), torch.tensor(-1.0)
    unit = 768 * 768
    fraction = remaining_fraction(
        [theta_h, theta_f] * 12, [4 * unit, 2 * 768 * 3072] * 12, [1 / 12, 1 / 3072] * 12,
        12 * 12 * unit,
    )  # fmt: skip
    h, f = torch.sigmoid(theta_h), torch.sigmoid(theta_f)
    torch.testing.assert_close(fraction, (12 * (3 * h + h + 4 * f + 4 * f)) / 144)


def test_adaptive_lambda_follows_the_paper() -> None:
    assert adaptive_lambda(0.01, 0.5, 20000.0) == pytest.approx(20000 * 0.01 / 0.25)
    assert adaptive_lambda(1e-3, 0.5, 1.0) == 50.0  # floor
    assert adaptive_lambda(1e-4, 0.5, 20000.0) == 10.0  # near the target
    assert adaptive_lambda(0.2, 1.0, 20000.0) == 0.0  # target 1: nothing to prune


@pytest.mark.parametrize("levels", [("heads", "rows"), ("blocks",)])
def test_regulariser_pulls_the_kept_fraction_to_the_target(levels) -> None:
    model = tiny_model().train()
    hook = MLPruningMasks(model, levels, 0.5, block=(16, 16), mask_lr=0.05, theta_init=2.0)
    hook.on_train_begin(model, 120)
    start = hook.remaining()
    seen = _score_steps(model, hook, 120)
    assert start > 0.85 and seen[0] > 0.8
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(seen))  # only down
    # Close to the target: the adaptive weight falls with R while Adam's second moment still
    # remembers the early, large gradients, so the last few hundredths come slowly.
    assert min(seen) <= 0.5 + 0.06
    assert seen[-1] > 0.25  # and not far past it
    assert hook.remaining() < 0.75
    hook.on_train_end(model)
    assert hook.masks is not None and hook.masks.density() == pytest.approx(hook.remaining())


# ----------------------------------------------------------------------------- shrink


def test_step_one_shrinks_and_the_artifact_reloads_with_equal_logits(tmp_path: Path) -> None:
    model = tiny_model()
    hook = MLPruningMasks(model, ("heads", "rows"), 0.5)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for group in hook.groups:
            group.theta.fill_(0.0)
            group.scores.copy_(torch.randn(group.scores.shape, generator=generator))
    hook.on_train_begin(model, 1)
    inputs = {k: v for k, v in _batch().items() if k != "labels"}
    with torch.no_grad():
        masked = model(**inputs).logits
    hook.on_train_end(model)
    keep = StructuredKeep(hook.kept_indices("heads"), hook.kept_indices("rows"))
    shrink_model(model, keep)
    layer = model.bert.encoder.layer[0]
    assert layer.attention.self.query.weight.shape == (2 * HEAD_SIZE, 64)
    assert layer.intermediate.dense.weight.shape == (64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, masked)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()
             if n.endswith(".weight") and ".encoder." in n and p.dim() == 2}  # fmt: skip
    out = save_artifact(
        model, masks, tmp_path / "art", source_model="tiny-bert", pattern="block:16x16",
        method="mlpruning", sparsity=0.0,
    )  # fmt: skip
    loaded = load_model(out, num_labels=2).model
    assert structured_keep_of(loaded.config) == keep
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, masked)


# ----------------------------------------------------------------------------- CLI


def _args(tiny_dir: Path, out: Path, teacher: Path | None = None) -> list[str]:
    args = ["prune", "--model", str(tiny_dir), "--method", "mlpruning", "--task", "mrpc"]
    args += ["--max-train-examples", "64", "--max-eval-examples", "16", "--max-seq-len", "24"]
    args += ["--batch-size", "8", "--epochs", "2", "--no-progress"]
    args += ["--dense-epochs", "1"] if teacher is None else ["--teacher", str(teacher)]
    return [*args, "--pattern", "block:16x16", "--out", str(out)]


@needs_glue
def test_cli_mlpruning_shrinks_and_records_the_kept_units(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "art"
    args = [*_args(tiny_dir, out), "--theta-init", "0.5", "--score-lr", "0.2"]
    args += ["--head-row-target", "0.5", "--block-target", "0.5", "--lr-schedule", "constant"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = load_artifact(out).manifest
    schedule = manifest["schedule"]
    assert manifest["method"] == "mlpruning"
    assert schedule["job"]["mlpruning"]["head_row_target"] == 0.5
    kept_heads = schedule["step1"]["kept_heads"]
    weights = load_file(out / "model.safetensors")
    for index, heads in enumerate(kept_heads):
        query = weights[f"bert.encoder.layer.{index}.attention.self.query.weight"]
        assert query.shape == (len(heads) * HEAD_SIZE, 64)
    assert sum(len(h) for h in kept_heads) < 8  # something was removed
    counts = schedule["encoder_weights"]
    assert counts["after_step2"] <= counts["after_step1"] < counts["dense"]
    loaded = load_model(out, num_labels=2).model
    assert structured_keep_of(loaded.config).heads == tuple(tuple(h) for h in kept_heads)
    assert manifest["structure"]["heads_per_layer"] == [len(h) for h in kept_heads]
    summary = tmp_path / "sim.json"
    simulated = runner.invoke(
        app, ["simulate", "--artifact", str(out), "--seq-len", "16", "--json", str(summary)]
    )
    assert simulated.exit_code == 0, simulated.output
    structure = json.loads(summary.read_text())["structure"]
    assert structure["shrunk_dense"]["macs"] < structure["unshrunk_dense"]["macs"]
    assert structure["speedup_shrinking"] > 1.0


@needs_glue
def test_cli_mlpruning_from_a_teacher_checkpoint(tiny_dir: Path, tmp_path: Path) -> None:
    """--teacher DIR instead of --dense-epochs: the student and the artifact's source are
    the teacher checkpoint."""
    out = tmp_path / "art"
    args = _args(tiny_dir, out, teacher=tiny_dir)
    result = runner.invoke(app, [*args, "--block-target", "0.9"])
    assert result.exit_code == 0, result.output
    manifest = load_artifact(out).manifest
    assert manifest["source_model"] == str(tiny_dir)
    assert manifest["schedule"]["teacher"] == str(tiny_dir)
    assert "teacher" in manifest["training"]["metrics"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"head_row_target": 0.0}, "head_row_target"),
        ({"head_row_target": 1.5}, "head_row_target"),
        ({"block_target": -0.1}, "block_target"),
        ({"theta_init": float("nan")}, "theta_init"),
        ({"pattern": "unstructured"}, "block:RxC"),
        ({"pattern": "head:4"}, "block:RxC"),
        ({"sparsity": 0.5}, "drop sparsity"),
        ({"dense_epochs": 0.0}, "needs a teacher"),
        ({"include": ("encoder", "classifier")}, "encoder only"),
        ({"retrain_epochs": 1.0}, "block_epochs"),
    ],
)
def test_bad_mlpruning_options_name_the_field(fields: dict, message: str) -> None:
    given = {"method": "mlpruning", "pattern": "block:16x16", "task": "SST-2"}
    given["dense_epochs"] = 1.0
    with pytest.raises(PruneJobError, match=message):
        prune_job(**{**given, **fields})


def test_mlpruning_options_refused_for_other_methods() -> None:
    with pytest.raises(PruneJobError, match="block_target applies only to method 'mlpruning'"):
        prune_job(pattern="block:4x4", sparsity=0.5, block_target=0.3)


def test_cli_bad_block_shape_is_one_clear_error(tmp_path: Path) -> None:
    args = ["prune", "--method", "mlpruning", "--task", "SST-2", "--dense-epochs", "1"]
    result = runner.invoke(app, [*args, "--pattern", "block:16", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "pattern" in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app, [*args, "--pattern", "block:16x16", "--head-row-target", "2", "--out",
              str(tmp_path / "x")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "head_row_target" in result.output and "Traceback" not in result.output
