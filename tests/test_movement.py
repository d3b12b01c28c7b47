"""Movement pruning (Sanh et al. 2020): straight-through scores, hard TopK, blocks, soft
threshold and its regulariser, checkpoints, the CLI end to end, bad options (tiny BERT)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import parametrize
from typer.testing import CliRunner

from pruning.artifact import load_artifact
from pruning.checkpoint import CheckpointConfig, latest_checkpoint
from pruning.job import PruneJobError, prune_job
from pruning.movement import MovementPruning
from pruning.patterns import parse_pattern
from pruning.targets import prunable_weights
from pruning.train import TrainConfig, train
from studies.cli import app
from tests.synthetic_task import KillAt, Killed, synthetic_task
from tests.tiny_bert import needs_glue, tiny_model

torch.set_num_threads(1)
runner = CliRunner()


def _steps(model: nn.Module, hook: MovementPruning, steps: int, check=None) -> None:
    """``steps`` updates of the scores only (the weights stay), on one fixed random batch."""
    generator = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(0, 100, (8, 12), generator=generator),
        "labels": torch.randint(0, 2, (8,), generator=generator),
    }
    for step in range(1, steps + 1):
        loss = model(**batch).loss
        term = hook.loss_term(model, step)
        if term is not None:
            loss = loss + term
        model.zero_grad(set_to_none=True)
        loss.backward()
        hook.after_optimizer_step(model, step)
        if check is not None:
            check(step)


# ----------------------------------------------------------------------------- gradient


def test_straight_through_gradient_is_grad_times_weight() -> None:
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    hook = MovementPruning(
        {"0.weight": model[0].weight}, parse_pattern("unstructured"), 0.5,
        warmup=0.0, ramp_fraction=0.1,
    )  # fmt: skip
    hook.on_train_begin(model, 10)
    hook._step = 10  # past the ramp: keep 2 of 4
    with torch.no_grad():
        hook.scores["0.weight"].copy_(torch.tensor([[4.0, 3.0], [2.0, 1.0]]))
    x, c = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 2.0]])
    (model(x) * c).sum().backward()  # dL/dW' = c^T x = [[1, 1], [2, 2]]
    assert torch.equal(hook.scores["0.weight"].grad, torch.tensor([[1.0, 2.0], [6.0, 8.0]]))
    # the mask is applied in the forward and the weight's own gradient is masked by it
    original = model[0].parametrizations.weight.original
    assert torch.equal(original.grad, torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert torch.equal(model[0].weight, torch.tensor([[1.0, 2.0], [0.0, 0.0]]))


# ----------------------------------------------------------------------------- hard TopK


def test_hard_top_k_hits_the_scheduled_sparsity_per_matrix_at_every_step() -> None:
    model = tiny_model().train()
    weights = prunable_weights(model)
    hook = MovementPruning(weights, parse_pattern("unstructured"), 0.8, warmup=0.2)
    hook.on_train_begin(model, 10)  # dense 2 steps, cubic ramp to step 7, cool-down
    modules = dict(model.named_modules())
    seen = []

    def check(step: int) -> None:
        target = hook.schedule.sparsity_at(step)
        seen.append(target)
        for name, mask in hook.keep_masks().items():
            n = mask.numel()
            assert n - int(mask.sum()) == math.floor(target * n), (step, name)
            module = modules[name.rpartition(".")[0]]
            assert torch.equal(module.weight, module.parametrizations.weight.original * mask)

    _steps(model, hook, 10, check)
    assert seen[0] == 0.0 and seen[-1] == 0.8 and 0 < seen[4] < 0.8
    assert seen == sorted(seen)
    hook.on_train_end(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    for name, weight in prunable_weights(model).items():
        assert weight is weights[name]  # the model's own parameters, folded in place
        assert torch.equal(weight != 0, hook.masks.masks[name])
    assert abs(1 - hook.masks.density() - 0.8) < 1e-3


def test_block_scores_give_whole_block_masks() -> None:
    model = tiny_model().train()
    hook = MovementPruning(prunable_weights(model), parse_pattern("block:4x8"), 0.5, warmup=0.0)
    hook.on_train_begin(model, 6)
    _steps(model, hook, 6)
    for name, scores in hook.scores.items():
        out, inn = hook.weights[name].shape
        assert scores.shape == (out // 4, inn // 8)
        assert scores.grad is None and not torch.all(scores == 0)  # scores moved
    for name, mask in hook.keep_masks().items():
        out, inn = mask.shape
        blocks = mask.reshape(out // 4, 4, inn // 8, 8)
        assert torch.all(blocks.all(dim=(1, 3)) == blocks.any(dim=(1, 3))), name
        kept = int(blocks.any(dim=(1, 3)).sum())
        n_blocks = out // 4 * (inn // 8)
        assert n_blocks - kept == math.floor(0.5 * n_blocks)


# ----------------------------------------------------------------------------- soft


def _soft_density(lam: float) -> tuple[float, MovementPruning]:
    model = tiny_model().train()
    hook = MovementPruning(
        prunable_weights(model), parse_pattern("unstructured"), None, variant="soft",
        score_lr=0.1, threshold=0.4, lam=lam, warmup=0.0, ramp_fraction=0.5,
    )  # fmt: skip
    hook.on_train_begin(model, 16)
    _steps(model, hook, 16)
    for name, mask in hook.keep_masks().items():
        scores = hook.scores[name]
        assert torch.equal(mask, torch.sigmoid(scores) > hook.tau)
        assert torch.equal(mask, scores > math.log(hook.tau / (1 - hook.tau)))
    hook.on_train_end(model)
    return hook.masks.density(), hook


def test_soft_mask_is_the_threshold_and_lambda_pushes_density_down() -> None:
    free, _ = _soft_density(0.0)
    regularised, hook = _soft_density(50.0)
    assert hook.tau == 0.4
    assert regularised < free - 0.2, (free, regularised)
    record = hook.describe()
    assert record["variant"] == "soft" and record["lambda"] == 50.0
    assert record["threshold_schedule"]["final_sparsity"] == 0.4


# ----------------------------------------------------------------------------- checkpoints


def _train_run(ckpt: CheckpointConfig | None, kill_at: int = 0):
    model = tiny_model()
    hook = MovementPruning(prunable_weights(model), parse_pattern("block:4x4"), 0.5)
    config = TrainConfig(epochs=2, batch_size=16, lr=1e-3, progress=False)  # 8 steps
    log = train(model, synthetic_task(), config, [hook, KillAt(kill_at)], checkpoint=ckpt)
    return model, hook, log


def test_scores_and_their_optimizer_survive_a_kill(tmp_path: Path) -> None:
    reference, ref_hook, ref_log = _train_run(None)
    ckpt = CheckpointConfig(tmp_path / "ckpt", every=3)
    with pytest.raises(Killed):
        _train_run(ckpt, kill_at=5)
    assert latest_checkpoint(ckpt.directory).name == "step-00000003"
    resumed, hook, log = _train_run(CheckpointConfig(ckpt.directory, 3, resume=True))
    assert log.resumed_from == 3 and log.losses == ref_log.losses
    for (name, a), (_, b) in zip(
        reference.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert all(torch.equal(hook.scores[n], ref_hook.scores[n]) for n in ref_hook.scores)
    assert hook.describe() == ref_hook.describe()


# ----------------------------------------------------------------------------- jobs and CLI


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"score_lr": 0.0}, "score_lr"),
        ({"score_lr": -1.0}, "score_lr"),
        ({"movement_variant": "medium"}, "movement_variant"),
        ({"method": "gradual", "movement_variant": "hard"}, "only to method 'movement'"),
        ({"method": "gradual", "score_lr": 0.1}, "only to method 'movement'"),
        ({"pattern": "nm:2:4", "sparsity": None}, "unstructured or block:RxC"),
        ({"movement_variant": "soft"}, "drop sparsity"),
        ({"movement_lambda": 2.0}, "only to movement_variant soft"),
        ({"scope": "global"}, "per matrix"),
        ({"update_every": 5}, "does not apply to method 'movement'"),
        ({"movement_warmup": 0.8}, "must end before the ramp"),
    ],
)
def test_bad_movement_options_are_one_clear_error(fields: dict, message: str) -> None:
    settings = {"method": "movement", "pattern": "unstructured", "sparsity": 0.5, "task": "RTE"}
    with pytest.raises(PruneJobError) as error:
        prune_job(**(settings | fields))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_movement_record_holds_its_settings_and_other_methods_none() -> None:
    job = prune_job(method="movement", pattern="block:4x4", sparsity=0.5, task="RTE")
    assert job.record()["movement"] == {
        "variant": "hard", "score_lr": 0.01, "lam": 1.0, "threshold": 0.1, "warmup": 0.1
    }  # fmt: skip
    other = prune_job(method="gradual", pattern="block:4x4", sparsity=0.5, task="RTE").record()
    assert not any("movement" in key or key == "score_lr" for key in other)
    assert job.retraining_epochs == 0.0


def _args(tiny_dir: Path, out: Path) -> list[str]:
    args = ["prune", "--model", str(tiny_dir), "--method", "movement", "--task", "mrpc"]
    args += ["--max-train-examples", "32", "--max-eval-examples", "16", "--max-seq-len", "24"]
    return [*args, "--batch-size", "8", "--epochs", "1", "--no-progress", "--out", str(out)]


@needs_glue
def test_cli_movement_prune_then_simulate(tiny_dir: Path, tmp_path: Path) -> None:
    out, summary = tmp_path / "art", tmp_path / "summary.json"
    args = [*_args(tiny_dir, out), "--pattern", "block:4x4", "--sparsity", "0.5"]
    args += ["--checkpoint-every", "2"]
    result = runner.invoke(app, [*args, "--json", str(summary)])
    assert result.exit_code == 0, result.output
    weights = load_file(out / "model.safetensors")
    again = runner.invoke(app, [*args, "--resume"])  # finished: the last checkpoint restores
    assert again.exit_code == 0, again.output
    resumed = load_file(out / "model.safetensors")
    assert weights.keys() == resumed.keys()
    assert all(torch.equal(weights[k], resumed[k]) for k in weights)
    assert json.loads(summary.read_text())["density"] == 0.5
    manifest = load_artifact(out).manifest
    schedule = manifest["schedule"]
    assert manifest["method"] == "movement"
    assert schedule["variant"] == "hard" and schedule["score_lr"] == 0.01
    assert schedule["schedule"]["kind"] == "cubic" and schedule["job"]["movement"]["lam"] == 1.0
    simulated = runner.invoke(app, ["simulate", "--artifact", str(out), "--seq-len", "16"])
    assert simulated.exit_code == 0, simulated.output
    assert "weight density 50.0 %" in simulated.output


@needs_glue
def test_cli_soft_movement_records_the_sparsity_it_reached(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "soft"
    args = [*_args(tiny_dir, out), "--pattern", "unstructured", "--movement-variant", "soft"]
    args += ["--movement-lambda", "20", "--movement-threshold", "0.45", "--score-lr", "0.1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = load_artifact(out).manifest
    assert manifest["schedule"]["threshold"] == 0.45
    assert abs(manifest["sparsity"] - (1 - manifest["density"])) < 1e-9
    assert manifest["density"] < 1.0


def test_cli_bad_movement_option_is_one_line(tiny_dir: Path, tmp_path: Path) -> None:
    args = ["prune", "--model", str(tiny_dir), "--pattern", "row", "--sparsity", "0.5"]
    args += ["--method", "gradual", "--task", "RTE", "--movement-variant", "soft"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--no-progress"])
    assert result.exit_code == 2
    assert "movement_variant applies only to method 'movement'" in result.output
    assert "Traceback" not in result.output
