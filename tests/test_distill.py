"""Pruning at distilling (SparseBERT), cyclic schedules and resumable checkpoints (tiny BERT)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import transformers

from pruning.checkpoint import CheckpointConfig, CheckpointError, latest_checkpoint
from pruning.distill import DistillationLoss, DistillConfig
from pruning.gradual import CyclicMagnitude, GradualMagnitude, cycle_targets, masks_from_zeros
from pruning.oneshot import magnitude_prune
from pruning.patterns import parse_pattern
from pruning.targets import prunable_weights
from pruning.train import TrainConfig, TrainHook, train
from tests.synthetic_task import KillAt, Killed, synthetic_task
from tests.tiny_bert import tiny_model

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def config(epochs: float = 4.0, lr: float = 1e-3, seed: int = 0) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=16, lr=lr, seed=seed, progress=False)


@pytest.fixture(scope="module")
def teacher() -> transformers.BertForSequenceClassification:
    """The tiny BERT fine-tuned (dense) on the synthetic task."""
    model = tiny_model()
    train(model, synthetic_task(), config(epochs=6))
    return model.eval()


def sparsity_of(masks: dict[str, torch.Tensor]) -> float:
    return 1 - sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())


# ----------------------------------------------------------------------------- the loss


def test_identical_student_has_zero_layerwise_loss(teacher) -> None:
    student = copy.deepcopy(teacher)
    loss = DistillationLoss(teacher, student, DistillConfig())
    batch = synthetic_task(8)
    student.eval()
    value = loss(student, batch).detach()
    assert loss.last_terms["attention"] == 0 and loss.last_terms["hidden"] == 0
    # soft CE of a distribution with itself is its entropy, averaged over classes
    p = torch.softmax(teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits, -1)
    assert float(value) == pytest.approx(float((-p * p.log()).mean()), rel=1e-5)
    assert list(loss.state_dict()) == []  # the teacher is not part of the loss's state


def test_attention_term_uses_pre_softmax_scores_with_padded_keys_zeroed(teacher) -> None:
    from pruning.distill import _forward

    batch = synthetic_task(4)
    batch["attention_mask"][:, -3:] = 0
    _, scores = _forward(teacher, batch, attention=True)
    assert len(scores) == 2 and scores[0].shape == (4, 4, 12, 12)
    assert (scores[0][..., -3:] == 0).all()
    assert (scores[0][..., :-3] < 0).any()  # raw scores, not probabilities


def test_narrow_student_gets_a_trained_projection(teacher) -> None:
    torch.manual_seed(1)
    narrow = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=32,
        )
    )
    loss = DistillationLoss(teacher, narrow, DistillConfig())
    assert loss.projection is not None
    before = loss.projection.weight.detach().clone()
    log = train(narrow, synthetic_task(), config(epochs=2), loss_fn=loss)
    assert not torch.equal(before, loss.projection.weight.detach())
    assert log.losses[-1] < log.losses[0]


def test_logits_mode_mixes_kd_and_hard_labels(teacher) -> None:
    student = tiny_model()
    loss = DistillationLoss(teacher, student, DistillConfig(mode="logits"))
    assert loss.config.t == 2.0
    loss(student, synthetic_task(8))
    assert set(loss.last_terms) == {"kd", "hard"}


@pytest.mark.parametrize(
    ("pattern", "sparsity"), [("unstructured", 0.8), ("block:4x4", 0.75), ("nm:2:4", 0.5)]
)
def test_pruning_at_distilling_reaches_target_and_loss_falls(teacher, pattern, sparsity) -> None:
    student = tiny_model()  # the "pre-trained", not fine-tuned, weights
    weights = prunable_weights(student)
    hook = GradualMagnitude(weights, parse_pattern(pattern), sparsity, update_every=2)
    loss = DistillationLoss(teacher, student, DistillConfig())
    log = train(student, synthetic_task(), config(epochs=8), [hook], loss_fn=loss)
    first, last = sum(log.losses[:3]) / 3, sum(log.losses[-3:]) / 3
    assert last < first
    masks = hook.masks.as_dict()
    assert sparsity_of(masks) == pytest.approx(sparsity, abs=0.02)
    for name, mask in masks.items():
        assert torch.equal(weights[name].detach() * mask, weights[name].detach())
        if pattern == "nm:2:4":
            assert (mask.reshape(mask.shape[0], -1, 4).sum(-1) == 2).all()
        if pattern == "block:4x4":
            blocks = mask.reshape(mask.shape[0] // 4, 4, mask.shape[1] // 4, 4)
            assert ((blocks.sum((1, 3)) == 0) | (blocks.sum((1, 3)) == 16)).all()


# ----------------------------------------------------------------------------- cyclic


def test_cycle_targets_are_linear() -> None:
    assert cycle_targets(0.9, 3) == pytest.approx((0.3, 0.6, 0.9))


@pytest.mark.parametrize("pattern", ["unstructured", "crossbar:16x16", "nm:2:4"])
def test_cyclic_restores_masks_from_zeros_and_ends_at_target(teacher, pattern) -> None:
    student = tiny_model()
    weights = prunable_weights(student)
    final = {"unstructured": 0.8, "crossbar:16x16": 0.75, "nm:2:4": 0.5}[pattern]
    # start from an already sparse model: the first cycle must pick up its zeros
    start = {
        "unstructured": ("unstructured", 0.3),
        "crossbar:16x16": ("crossbar:16x16", 0.25),
        "nm:2:4": ("nm:3:4", None),
    }[pattern]
    pre = magnitude_prune(student, *start)
    hook = CyclicMagnitude(weights, parse_pattern(pattern), final, cycles=2, update_every=1)

    class ZeroOneMore(TrainHook):
        """Zero one kept weight just before cycle 2 starts: the restore must drop it."""

        def __init__(self) -> None:
            self.name = next(iter(weights))

        def after_optimizer_step(self, model, step: int) -> None:
            if step == hook.starts[1] - 1:
                with torch.no_grad():
                    w = weights[self.name]
                    self.index = int(torch.nonzero(w.view(-1))[0])
                    w.view(-1)[self.index] = 0.0

    zero = ZeroOneMore()
    loss = DistillationLoss(teacher, student, DistillConfig())
    train(student, synthetic_task(), config(epochs=8), [zero, hook], loss_fn=loss)
    restores = [h for h in hook.history if "restored_sparsity" in h]
    assert [r["cycle"] for r in restores] == [0, 1]
    assert restores[0]["restored_sparsity"] == pytest.approx(sparsity_of(pre), abs=1e-3)
    ramp1 = [h["target_sparsity"] for h in hook.history if "target_sparsity" in h]
    assert ramp1 == sorted(ramp1) and ramp1[-1] == pytest.approx(final)
    masks = hook.masks.as_dict()
    assert sparsity_of(masks) == pytest.approx(final, abs=0.02)
    for name, mask in masks.items():
        assert not (mask & ~pre[name].bool()).any()  # nested in the starting zeros
    assert not masks[zero.name].view(-1)[zero.index]  # the zero made before cycle 2 stays


def test_masks_from_zeros() -> None:
    w = {"a": torch.tensor([[0.0, 1.0], [2.0, 0.0]])}
    assert masks_from_zeros(w)["a"].tolist() == [[False, True], [True, False]]


# ----------------------------------------------------------------------------- resume


def _distill_run(
    teacher, ckpt: CheckpointConfig | None, kill_at: int | None = None, *, cyclic: bool = False
):
    student = tiny_model()
    weights = prunable_weights(student)
    if cyclic:
        hook = CyclicMagnitude(weights, parse_pattern("block:4x4"), 0.75, cycles=2, update_every=2)
    else:
        hook = GradualMagnitude(weights, parse_pattern("block:4x4"), 0.75, update_every=2)
    loss = DistillationLoss(teacher, student, DistillConfig())
    hooks = [hook, KillAt(kill_at or 0)]  # the same hooks in every run (0: never kills)
    log = train(student, synthetic_task(), config(epochs=4), hooks, loss, ckpt)
    return student, hook, log


@pytest.mark.parametrize("cyclic", [False, True])
def test_resume_after_kill_equals_uninterrupted_run(teacher, tmp_path, cyclic) -> None:
    reference, ref_hook, ref_log = _distill_run(teacher, None, cyclic=cyclic)
    ckpt = CheckpointConfig(tmp_path / "ckpt", every=3)
    with pytest.raises(Killed):
        _distill_run(teacher, ckpt, kill_at=7, cyclic=cyclic)  # dies after checkpoint 6
    assert latest_checkpoint(ckpt.directory).name == "step-00000006"
    resumed, hook, log = _distill_run(
        teacher, CheckpointConfig(ckpt.directory, every=3, resume=True), cyclic=cyclic
    )
    for (name, a), (_, b) in zip(
        reference.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert log.losses == ref_log.losses
    assert hook.history == ref_hook.history
    files = {p.suffix for p in ckpt.directory.rglob("*") if p.is_file()}
    assert files <= {".safetensors", ".json"}  # nothing pickled
    assert len(list(ckpt.directory.glob("step-*"))) == 2  # keep the two newest


def test_resume_refuses_a_different_run(teacher, tmp_path) -> None:
    ckpt = CheckpointConfig(tmp_path / "ckpt", every=4)
    _distill_run(teacher, ckpt)
    student = tiny_model()
    with pytest.raises(CheckpointError, match="different run"):
        train(
            student,
            synthetic_task(),
            config(epochs=2),
            checkpoint=CheckpointConfig(ckpt.directory, resume=True),
        )


def test_finished_run_resumes_to_the_same_end(teacher, tmp_path) -> None:
    ckpt = CheckpointConfig(tmp_path / "ckpt")
    first, _, _ = _distill_run(teacher, ckpt)
    again, _, log = _distill_run(teacher, CheckpointConfig(ckpt.directory, resume=True))
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert log.steps == len(log.losses)


_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from pruning.checkpoint import CheckpointConfig
    from pruning.gradual import GradualMagnitude
    from pruning.patterns import parse_pattern
    from pruning.targets import prunable_weights
    from pruning.train import TrainConfig, TrainHook, train
    from safetensors.torch import save_file
    from tests.synthetic_task import KillAt, Killed, synthetic_task
    from tests.tiny_bert import tiny_model

    torch.set_num_threads(1)
    ckpt, kill, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Kill(TrainHook):
        def after_optimizer_step(self, model, step):
            if step == kill:
                os.kill(os.getpid(), signal.SIGKILL)

    model = tiny_model()
    hook = GradualMagnitude(prunable_weights(model), parse_pattern("unstructured"), 0.8,
                            update_every=2)
    config = TrainConfig(epochs=4, batch_size=16, lr=1e-3, progress=False)
    train(model, synthetic_task(), config, [hook, Kill()],
          checkpoint=CheckpointConfig(ckpt, every=5, resume=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    """
)


def test_sigkilled_process_resumes_bit_identically(tmp_path) -> None:
    from safetensors.torch import load_file

    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

    def run(ckpt: str, kill: int, out: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), str(tmp_path / ckpt), str(kill), str(tmp_path / out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
        )

    killed = run("a", 12, "a.safetensors")
    assert killed.returncode == -signal.SIGKILL
    assert latest_checkpoint(tmp_path / "a").name == "step-00000010"
    assert run("a", 0, "a.safetensors").returncode == 0
    assert run("b", 0, "b.safetensors").returncode == 0  # uninterrupted
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- teacher cache


def test_cached_teacher_gives_the_live_teachers_loss(teacher, tmp_path) -> None:
    from pruning.teacher_cache import (
        TeacherCacheError,
        build_cache,
        cache_fingerprint,
        load_cache,
        save_cache,
    )
    from pruning.train import _batch

    data = synthetic_task(24)
    data["attention_mask"][::2, 9:] = 0  # some padding, so real tokens differ per example
    cache = build_cache(teacher, data, hidden=True)
    assert cache.logits.shape == (24, 2) and cache.hidden[""].dtype == torch.float16
    assert cache.offsets[""][-1] == int(data["attention_mask"].sum())
    student = tiny_model().eval()
    keys = {"input_ids", "attention_mask", "token_type_ids", "labels"}
    batch = _batch(data, torch.tensor([3, 4, 7, 10]), keys, with_index=True)
    live = DistillationLoss(teacher, student, DistillConfig(mode="logits"))
    cached = DistillationLoss(teacher, student, DistillConfig(mode="logits"), cache)
    assert cached.needs_example_index and not live.needs_example_index
    expected = float(live(student, batch).detach())
    assert float(cached(student, batch).detach()) == pytest.approx(expected, rel=1e-5)
    # hidden states from the cache: float16 values at real tokens, zero at padding
    with torch.no_grad():
        states = teacher(**{k: batch[k] for k in keys - {"labels"}}, output_hidden_states=True)
    rebuilt = cache.teacher_hidden(batch["example_index"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    assert torch.allclose(rebuilt[-1][real], states.hidden_states[-1][real], atol=2e-2)
    assert (rebuilt[-1][~real] == 0).all()
    no_attention = DistillConfig(attention_weight=0.0)
    with_cache = DistillationLoss(teacher, student, no_attention, cache)(student, batch)
    assert with_cache.isfinite()

    path = save_cache(cache, tmp_path / "cache.safetensors")
    expected = cache_fingerprint(teacher, data, True, torch.float16)
    again = load_cache(path, expected)
    assert torch.equal(again.logits, cache.logits) and torch.equal(
        again.hidden[""], cache.hidden[""]
    )
    assert load_cache(tmp_path / "none.safetensors", expected) is None
    with pytest.raises(TeacherCacheError, match="caches another teacher or data set"):
        load_cache(
            path, cache_fingerprint(teacher, synthetic_task(24, seed=1), True, torch.float16)
        )


def test_hidden_cache_refuses_a_set_too_large(teacher, monkeypatch) -> None:
    import pruning.teacher_cache as teacher_cache

    monkeypatch.setattr(teacher_cache, "HIDDEN_LIMIT_BYTES", 1000)
    with pytest.raises(teacher_cache.TeacherCacheError, match=r"GiB .* cache logits only"):
        teacher_cache.build_cache(teacher, synthetic_task(8), hidden=True)


# ----------------------------------------------------------------------------- MixKD


def test_mixed_inputs_interpolate_word_embeddings(teacher) -> None:
    from pruning.distill import _mixed_inputs

    batch = synthetic_task(4)
    batch["attention_mask"][0, 8:] = 0
    perm = torch.tensor([1, 0, 3, 2])
    lam = torch.tensor([1.0, 0.25, 0.5, 0.7])
    mixed = _mixed_inputs(teacher, batch, perm, lam)
    words = teacher.get_input_embeddings()(batch["input_ids"])
    assert torch.allclose(mixed["inputs_embeds"][0], words[0])  # lam 1: itself
    assert torch.allclose(mixed["inputs_embeds"][1], 0.25 * words[1] + 0.75 * words[0])
    assert mixed["attention_mask"][0].tolist() == [1] * 12  # union with its partner's mask
    with torch.no_grad():
        plain = teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits
        same = teacher(**_mixed_inputs(teacher, batch, torch.arange(4), torch.ones(4))).logits
    assert torch.allclose(plain, same, atol=1e-5)


def test_mixkd_adds_a_term_only_in_training(teacher) -> None:
    student = tiny_model()
    loss = DistillationLoss(teacher, student, DistillConfig(mode="logits", mixkd_weight=1.0))
    batch = synthetic_task(8)
    loss.train()
    torch.manual_seed(0)
    first = loss(student, batch)
    assert loss.last_terms["mixkd"] > 0 and first.requires_grad
    torch.manual_seed(0)
    # the mix is drawn from the seeded global RNG
    assert float(loss(student, batch).detach()) == float(first.detach())
    loss.eval()
    loss(student, batch)
    assert "mixkd" not in loss.last_terms
    with pytest.raises(ValueError, match="mixkd_alpha must be a positive number"):
        DistillConfig(mixkd_alpha=0.0)


def test_bi_encoder_student_needs_a_bi_encoder_teacher(teacher) -> None:
    from pruning.heads import BertBiEncoder

    student = BertBiEncoder(
        teacher.config.__class__(**{**teacher.config.to_dict(), "cosim_head": "bi-encoder"})
    )
    with pytest.raises(ValueError, match="a bi-encoder distils from a bi-encoder teacher"):
        DistillationLoss(teacher, student, DistillConfig(mode="logits"))
