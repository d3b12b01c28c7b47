"""Group lasso and ADMM checkpoint and resume bit-identically, in every phase (tiny BERT)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import pruning.checkpoint
import pruning.pipeline
from pruning.admm import AdmmPruning
from pruning.artifact import load_artifact
from pruning.checkpoint import CheckpointConfig, CheckpointError, latest_checkpoint
from pruning.group_lasso import GroupLassoPenalty
from pruning.job import prune_job
from pruning.patterns import parse_pattern
from pruning.pipeline import run_prune
from pruning.targets import prunable_weights
from pruning.train import TrainConfig, TrainHook, train
from tests.synthetic_task import KillAt, Killed, synthetic_task
from tests.tiny_bert import needs_glue, tiny_model

torch.set_num_threads(1)


def _hook(method: str, weights: dict[str, torch.Tensor]) -> TrainHook:
    if method == "group-lasso":
        return GroupLassoPenalty(weights, parse_pattern("block:4x4"), lam=1e-3, reweight_every=3)
    return AdmmPruning(weights, parse_pattern("block:4x4"), 0.5, update_every=3)


# ----------------------------------------------------------------------------- train loop


def _train_run(method: str, ckpt: CheckpointConfig | None, kill_at: int = 0):
    model = tiny_model()
    hook = _hook(method, prunable_weights(model))
    config = TrainConfig(epochs=4, batch_size=16, lr=1e-3, progress=False)  # 16 steps
    log = train(model, synthetic_task(), config, [hook, KillAt(kill_at)], checkpoint=ckpt)
    return model, hook, log


@pytest.mark.parametrize("method", ["group-lasso", "admm"])
def test_hook_state_survives_a_kill(tmp_path: Path, method: str) -> None:
    reference, ref_hook, ref_log = _train_run(method, None)
    ckpt = CheckpointConfig(tmp_path / "ckpt", every=5)
    with pytest.raises(Killed):
        _train_run(method, ckpt, kill_at=12)  # dies after checkpoint 10, past 3 Z/U updates
    assert latest_checkpoint(ckpt.directory).name == "step-00000010"
    resumed, hook, log = _train_run(method, CheckpointConfig(ckpt.directory, 5, resume=True))
    assert log.resumed_from == 10 and log.losses == ref_log.losses
    for (name, a), (_, b) in zip(
        reference.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert hook.describe() == ref_hook.describe()
    if method == "group-lasso":
        assert hook.alpha.keys() == ref_hook.alpha.keys()
        assert all(torch.equal(hook.alpha[n], ref_hook.alpha[n]) for n in hook.alpha)
    else:
        for state, ref in ((hook.z, ref_hook.z), (hook.u, ref_hook.u)):
            assert all(torch.equal(state[n], ref[n]) for n in ref)
        assert hook.rho == ref_hook.rho and len(hook.history) == 5


def test_hook_state_of_other_weights_is_refused() -> None:
    model = tiny_model()
    weights = prunable_weights(model)
    admm = AdmmPruning(weights, parse_pattern("block:4x4"), 0.5, update_every=3)
    admm.on_train_begin(model, 10)
    tensors, state = admm.state_dict()
    fewer = AdmmPruning(dict(list(weights.items())[:-1]), parse_pattern("block:4x4"), 0.5)
    fewer.update_every = 3
    with pytest.raises(CheckpointError, match=r"z tensors do not match: missing \[\], unexp"):
        fewer.load_state_dict(tensors, state)
    other = AdmmPruning(weights, parse_pattern("block:4x4"), 0.5, update_every=4)
    with pytest.raises(CheckpointError, match="updates every 3 steps, this run every 4"):
        other.load_state_dict(tensors, state)


def test_a_group_lasso_checkpoint_does_not_resume_admm(tmp_path: Path) -> None:
    ckpt = CheckpointConfig(tmp_path / "ckpt", every=5)
    _train_run("group-lasso", ckpt)
    with pytest.raises(CheckpointError, match="different run"):
        _train_run("admm", CheckpointConfig(ckpt.directory, resume=True))


# ----------------------------------------------------------------------------- pipeline


def _fields(tiny_dir: Path, method: str) -> dict:
    fields = {
        "model": str(tiny_dir),
        "task": "MRPC",
        "max_train_examples": 48,
        "max_eval_examples": 32,
        "max_seq_len": 32,
        "epochs": 2.0,  # 12 steps of batch 8
        "retrain_epochs": 1.0,  # 6 steps
        "batch_size": 8,
        "lr": 1e-3,
        "progress": False,
        "method": method,
    }
    if method == "group-lasso":
        return fields | {"pattern": "block:8x8", "sparsity": 0.5, "reweight_every": 3}
    return fields | {"pattern": "crossbar:16x16", "sparsity": 0.5, "admm_update_every": 3}


def _run_killed_after(monkeypatch, job, out: Path, phase: str, step: int) -> None:
    """Run ``job`` and "kill" it right after it writes checkpoint ``step`` of ``phase``."""
    real = pruning.checkpoint.save_checkpoint

    def save(directory, at, tensors, state, keep=2):
        path = real(directory, at, tensors, state, keep)
        if Path(directory).name == phase and at == step:
            raise Killed(f"{phase} {step}")
        return path

    with monkeypatch.context() as patch:
        patch.setattr(pruning.checkpoint, "save_checkpoint", save)
        patch.setattr(pruning.pipeline, "save_checkpoint", save)
        with pytest.raises(Killed):
            run_prune(job, out)


def _same_outcome(a, b) -> None:
    first, second = (
        load_file(a.artifact / "model.safetensors"),
        load_file(b.artifact / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    masks_a, masks_b = load_artifact(a.artifact).masks, load_artifact(b.artifact).masks
    assert masks_a.keys() == masks_b.keys()
    assert all(np.array_equal(masks_a[n], masks_b[n]) for n in masks_a)
    assert a.metrics == b.metrics
    assert a.manifest["training"]["metrics"] == b.manifest["training"]["metrics"]

    def steady(schedule: dict) -> dict:
        phases = [
            {k: v for k, v in p.items() if k not in {"seconds", "resumed_from_step"}}
            for p in schedule["phases"]
        ]
        return {**{k: v for k, v in schedule.items() if k != "seconds"}, "phases": phases}

    assert steady(a.manifest["schedule"]) == steady(b.manifest["schedule"])  # losses, rho, ...


@needs_glue
@pytest.mark.parametrize("method", ["group-lasso", "admm"])
def test_job_killed_in_every_phase_resumes_to_the_same_artifact(
    tiny_dir: Path, tmp_path: Path, monkeypatch, method: str
) -> None:
    fields = _fields(tiny_dir, method)
    plain = run_prune(prune_job(**fields), tmp_path / "plain")
    ckpt = tmp_path / "ckpt"
    job = prune_job(**fields, checkpoint_every=4, checkpoint_dir=ckpt)
    again = prune_job(**fields, checkpoint_every=4, checkpoint_dir=ckpt, resume=True)

    # Penalised training, the hard prune / final projection, masked retraining: one kill each.
    _run_killed_after(monkeypatch, job, tmp_path / "art", method, 4)
    assert latest_checkpoint(ckpt / method).name == "step-00000004"
    _run_killed_after(monkeypatch, again, tmp_path / "art", "hard-prune", 1)
    assert latest_checkpoint(ckpt / method).name == "step-00000012"
    _run_killed_after(monkeypatch, again, tmp_path / "art", "retrain", 4)
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        ["job.json", method, "hard-prune", "retrain"]
    )
    assert {p.suffix for p in ckpt.rglob("*") if p.is_file()} == {".safetensors", ".json"}

    resumed = run_prune(again, tmp_path / "art")
    _same_outcome(plain, resumed)
    phases = {p["phase"]: p for p in resumed.manifest["schedule"]["phases"]}
    assert phases[method]["resumed_from_step"] == 12  # finished: skipped
    assert phases["retrain"]["resumed_from_step"] == 4

    uninterrupted = run_prune(
        prune_job(**fields, checkpoint_every=4, checkpoint_dir=tmp_path / "c2"), tmp_path / "u"
    )
    _same_outcome(plain, uninterrupted)  # checkpointing itself changes nothing


@needs_glue
def test_quantized_admm_killed_in_every_phase_resumes_to_the_same_artifact(
    tiny_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Level scales (ADMM state) and the latent float weights of the straight-through
    retraining survive kills: the resumed artifact equals the uninterrupted one."""
    fields = _fields(tiny_dir, "admm") | {"weight_bits": 4, "cell_bits": 2}
    plain = run_prune(prune_job(**fields), tmp_path / "plain")
    assert plain.manifest["quantization"]["weight_bits"] == 4
    ckpt = tmp_path / "ckpt"
    job = prune_job(**fields, checkpoint_every=4, checkpoint_dir=ckpt)
    again = prune_job(**fields, checkpoint_every=4, checkpoint_dir=ckpt, resume=True)
    _run_killed_after(monkeypatch, job, tmp_path / "art", "admm", 4)
    _run_killed_after(monkeypatch, again, tmp_path / "art", "hard-prune", 1)
    _run_killed_after(monkeypatch, again, tmp_path / "art", "retrain", 4)
    resumed = run_prune(again, tmp_path / "art")
    _same_outcome(plain, resumed)
    assert resumed.manifest["quantization"] == plain.manifest["quantization"]


@needs_glue
def test_resuming_another_methods_checkpoints_is_refused(
    tiny_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    ckpt = tmp_path / "ckpt"
    lasso = prune_job(**_fields(tiny_dir, "group-lasso"), checkpoint_every=4, checkpoint_dir=ckpt)
    _run_killed_after(monkeypatch, lasso, tmp_path / "art", "retrain", 4)

    admm_fields = _fields(tiny_dir, "admm") | {"pattern": "block:8x8"}
    admm = prune_job(**admm_fields, checkpoint_dir=ckpt, resume=True)
    with pytest.raises(CheckpointError, match=r"different job \(changed: .*method"):
        run_prune(admm, tmp_path / "admm")

    # Without the job record, the hard-prune checkpoint still names its method.
    (ckpt / "job.json").unlink()
    shutil.rmtree(ckpt / "retrain")
    with pytest.raises(CheckpointError, match="not the hard prune of 'admm'"):
        run_prune(admm, tmp_path / "admm")
