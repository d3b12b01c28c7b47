"""Gradual magnitude, reweighted group lasso and ADMM on a tiny BERT (seconds each)."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning.admm import AdmmPruning, constraint_pattern, nonzero_groups, project
from pruning.gradual import GradualMagnitude, nm_at_sparsity
from pruning.group_lasso import GroupLassoPenalty, group_norms
from pruning.masking import FixedMasks, MaskSet
from pruning.masks import compute_masks, density
from pruning.patterns import NM, Block, Crossbar, Unstructured, parse_pattern
from pruning.schedule import SparsitySchedule
from pruning.targets import prunable_weights
from pruning.train import TrainConfig, TrainHook, evaluate, predict, train
from tests.synthetic_task import synthetic_task
from tests.tiny_bert import tiny_model

torch.set_num_threads(1)


def config(epochs: float = 2.0, lr: float = 1e-3, batch_size: int = 16) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, progress=False)


class MaskRecorder(TrainHook):
    """Snapshots the gradual hook's masks after every step."""

    def __init__(self, gradual: GradualMagnitude) -> None:
        self.gradual = gradual
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def after_optimizer_step(self, model, step: int) -> None:
        assert self.gradual.masks is not None
        self.snapshots.append(self.gradual.masks.as_dict())


# ----------------------------------------------------------------------------- schedule


def test_cubic_schedule_values_and_update_steps() -> None:
    schedule = SparsitySchedule(0.9, 0.0, start_step=10, update_every=5, n_updates=4)
    assert schedule.sparsity_at(0) == 0.0
    assert schedule.sparsity_at(10) == 0.0
    # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 at t = 20: 0.9 - 0.9 * 0.5^3
    assert schedule.sparsity_at(20) == pytest.approx(0.9 - 0.9 * 0.125)
    assert schedule.sparsity_at(30) == 0.9
    assert schedule.sparsity_at(1000) == 0.9
    assert schedule.update_steps() == [10, 15, 20, 25, 30]
    assert [t for t in range(40) if schedule.is_update_step(t)] == schedule.update_steps()


@given(
    total=st.integers(1, 500),
    final=st.floats(0.0, 0.99),
    ramp=st.floats(0.05, 1.0),
)
@settings(max_examples=100, deadline=None)
def test_fitted_schedule_fits_and_rises(total: int, final: float, ramp: float) -> None:
    schedule = SparsitySchedule.fit(total, final, ramp_fraction=ramp)
    assert schedule.end_step <= total
    values = [schedule.sparsity_at(t) for t in range(total + 1)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(final)


def test_geometric_schedule_prunes_the_same_share_of_survivors_each_update() -> None:
    schedule = SparsitySchedule.fit(400, 0.8, ramp_fraction=0.5, shape="geometric")
    assert schedule.n_updates == 20 and schedule.update_every == 10
    kept = [1 - schedule.sparsity_at(t) for t in schedule.update_steps()]
    ratios = [b / a for a, b in itertools.pairwise(kept)]
    assert ratios == pytest.approx([0.2 ** (1 / 20)] * 20)
    assert schedule.sparsity_at(schedule.end_step) == 0.8
    cubic = SparsitySchedule.fit(400, 0.8, ramp_fraction=0.5)
    # the geometric ramp is gentler early: cubic's first update removes 11.4 % of the
    # weights, geometric's 7.7 %; cubic passes 58 % after 7 of 20 updates, geometric after 11
    first = [s.sparsity_at(s.update_steps()[1]) for s in (cubic, schedule)]
    assert first == pytest.approx([0.8 * (1 - 0.95**3), 1 - 0.2 ** (1 / 20)])
    passes = [next(j for j, t in enumerate(s.update_steps()) if s.sparsity_at(t) >= 0.58)
              for s in (cubic, schedule)]  # fmt: skip
    assert passes == [7, 11]
    assert schedule.to_dict()["kind"] == "geometric"


def test_schedule_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="initial_sparsity"):
        SparsitySchedule(0.5, 0.6)
    with pytest.raises(ValueError, match="update_every"):
        SparsitySchedule(0.5, update_every=0)
    with pytest.raises(ValueError, match="training has only 5 steps"):
        SparsitySchedule(0.5, update_every=3, n_updates=2).check_fits(5)


# ----------------------------------------------------------------------------- gradual


@pytest.mark.parametrize(
    ("pattern", "sparsity"),
    [("unstructured", 0.8), ("block:4x4", 0.75), ("crossbar:16x16", 0.5), ("nm:2:4", 0.5)],
)
def test_gradual_masks_nested_reach_target_and_fold_in(pattern: str, sparsity: float) -> None:
    model = tiny_model()
    weights = prunable_weights(model)
    gradual = GradualMagnitude(weights, parse_pattern(pattern), sparsity, update_every=2)
    recorder = MaskRecorder(gradual)
    train(model, synthetic_task(), config(epochs=4), [gradual, recorder])

    snapshots = recorder.snapshots
    for before, after in itertools.pairwise(snapshots):
        for name in after:
            assert not (after[name] & ~before[name]).any(), f"{name} regrew a weight"
    targets = [u["target_sparsity"] for u in gradual.history]
    assert targets == sorted(targets) and targets[-1] == pytest.approx(sparsity)
    final = gradual.masks.as_dict()
    kept = sum(int(m.sum()) for m in final.values())
    total = sum(m.numel() for m in final.values())
    assert 1 - kept / total == pytest.approx(sparsity, abs=0.02)
    for name, mask in final.items():
        weight = weights[name].detach()
        assert torch.equal(weight * mask, weight)  # W * M == W after training
    if pattern == "nm:2:4":
        for mask in final.values():
            assert (mask.reshape(mask.shape[0], -1, 4).sum(-1) == 2).all()


def test_nm_ramp_goes_through_denser_nm_patterns() -> None:
    target = NM(2, 8)
    assert nm_at_sparsity(target, 0.0) == NM(8, 8)
    assert nm_at_sparsity(target, 0.3) == NM(6, 8)  # floor(0.3 * 8) = 2 pruned
    assert nm_at_sparsity(target, 0.75) == NM(2, 8)
    assert nm_at_sparsity(target, 0.9) == NM(2, 8)  # never sparser than the target


def test_gradual_with_regrow_keeps_a_dense_copy_and_reaches_target() -> None:
    model = tiny_model()
    weights = prunable_weights(model)
    gradual = GradualMagnitude(weights, Unstructured(), 0.7, update_every=2, regrow=True)
    recorder = MaskRecorder(gradual)
    train(model, synthetic_task(), config(epochs=4, lr=5e-3), [gradual, recorder])
    regrown = sum(
        int((after[n] & ~before[n]).sum())
        for before, after in itertools.pairwise(recorder.snapshots)
        for n in after
    )
    assert regrown > 0  # straight-through updates let some pruned weights back in
    final = gradual.masks.as_dict()
    assert 1 - sum(int(m.sum()) for m in final.values()) / sum(
        m.numel() for m in final.values()
    ) == pytest.approx(0.7, abs=0.01)
    for name, mask in final.items():
        assert torch.equal(weights[name].detach() * mask, weights[name].detach())


def test_training_learns_the_synthetic_task_and_is_seeded() -> None:
    data = synthetic_task(n=96)
    runs = []
    for _ in range(2):
        model = tiny_model()
        log = train(model, data, config(epochs=6, lr=2e-3))
        runs.append((log.losses, predict(model, data)))
    assert runs[0][0] == runs[1][0]  # same seed, same losses
    losses = runs[0][0]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_fixed_masks_keep_pruned_weights_at_zero_through_training() -> None:
    model = tiny_model()
    weights = prunable_weights(model)
    masks = MaskSet(model, compute_masks(weights, Block(4, 4), 0.5))
    train(model, synthetic_task(), config(epochs=2), [FixedMasks(masks)])
    for name, mask in masks.masks.items():
        assert not weights[name].detach()[~mask].any()
        assert density(mask) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- group lasso


def test_group_norms_are_differentiable_block_norms() -> None:
    weight = torch.arange(1.0, 13.0).reshape(3, 4).requires_grad_()
    norms = group_norms(weight, 2, 2)  # 2x2 grid, bottom row of blocks is a partial block
    assert norms.shape == (2, 2)
    assert norms[0, 0].item() == pytest.approx((1 + 4 + 25 + 36) ** 0.5)
    assert norms[1, 1].item() == pytest.approx((11**2 + 12**2) ** 0.5)
    norms.sum().backward()
    assert torch.isfinite(weight.grad).all()


def test_group_lasso_drives_the_groups_it_will_prune_towards_zero() -> None:
    pattern, sparsity = Block(8, 8), 0.5
    data = synthetic_task()

    def trained(penalised: bool) -> tuple[dict, dict]:
        model = tiny_model()
        weights = prunable_weights(model)
        before = {n: group_norms(w.detach(), 8, 8) for n, w in weights.items()}
        hooks = [GroupLassoPenalty(weights, pattern, lam=2e-3)] if penalised else []
        train(model, data, config(epochs=8, lr=2e-3), hooks)
        return before, {n: group_norms(w.detach(), 8, 8) for n, w in weights.items()}

    before, after = trained(penalised=True)
    _, plain = trained(penalised=False)
    pruned_ratio, kept_ratio, plain_ratio = [], [], []
    for name in after:
        grid = after[name]
        threshold = grid.flatten().sort().values[int(sparsity * grid.numel()) - 1]
        pruned = grid <= threshold  # the groups the hard prune removes
        pruned_ratio.append((after[name][pruned] / before[name][pruned]).mean())
        kept_ratio.append((after[name][~pruned] / before[name][~pruned]).mean())
        plain_ratio.append((plain[name][pruned] / before[name][pruned]).mean())
    pruned_mean = torch.stack(pruned_ratio).mean().item()
    kept_mean = torch.stack(kept_ratio).mean().item()
    plain_mean = torch.stack(plain_ratio).mean().item()
    # The pruned groups shrank relative to the kept ones, and far more than without the term.
    assert pruned_mean < 0.6 * kept_mean, (pruned_mean, kept_mean)
    assert pruned_mean < 0.6 * plain_mean, (pruned_mean, plain_mean)


def test_group_lasso_reweights_on_schedule() -> None:
    model = tiny_model()
    lasso = GroupLassoPenalty(prunable_weights(model), Block(4, 4), reweight_every=3)
    train(model, synthetic_task(n=32), config(epochs=3), [lasso])  # 6 steps
    assert lasso.refreshes == 1 + 2  # at the start, after steps 3 and 6
    with pytest.raises(ValueError, match="lambda"):
        GroupLassoPenalty({}, Block(4, 4), lam=0)


# ----------------------------------------------------------------------------- ADMM


@pytest.mark.parametrize("granularity", ["tile", "tile-row", "tile-column"])
def test_admm_meets_the_crossbar_constraint_exactly(granularity: str) -> None:
    tile, sparsity = Crossbar(16, 16), 0.75
    constraint = constraint_pattern(tile, granularity)
    model = tiny_model()
    weights = prunable_weights(model)
    admm = AdmmPruning(weights, constraint, sparsity, update_every=8)  # default rho schedule
    train(model, synthetic_task(), config(epochs=12, lr=3e-3), [admm])
    gaps = [u["primal_gap"] for u in admm.history]
    assert gaps[-1] < gaps[0]  # W is pulled towards the constraint set
    masks = MaskSet(model, project(weights, constraint, sparsity))
    masks.apply()
    train(model, synthetic_task(), config(epochs=1), [FixedMasks(masks)])
    r, c = constraint.group_shape((64, 64)) if granularity != "tile" else (16, 16)
    for name, weight in weights.items():
        out, inp = weight.shape
        groups = -(-out // r) * -(-inp // c)
        allowed = groups - int(sparsity * groups)
        assert nonzero_groups(weight, r, c) <= allowed, name


def test_admm_granularity_needs_a_block_pattern() -> None:
    with pytest.raises(ValueError, match="block or crossbar"):
        constraint_pattern(Unstructured(), "tile-row")
    assert constraint_pattern(Crossbar(8, 4), "tile-row") == Block(1, 4)
    assert constraint_pattern(Crossbar(8, 4), "tile-column") == Block(8, 1)


def test_evaluate_reports_task_metrics() -> None:
    from pruning.glue import get_task

    model = tiny_model()
    data = synthetic_task(n=40)
    scores = evaluate(model, data, get_task("MRPC"))
    assert set(scores) == {"accuracy", "f1"}
    assert 0.0 <= scores["accuracy"] <= 1.0
