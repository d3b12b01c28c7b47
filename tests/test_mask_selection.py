"""The vectorised mask selection against its slow twins in ``tests/naive/masks.py``.

``pruning.lowest`` and ``pruning.top_n`` must pick exactly what a stable sort picks (ties
to the lower index, NaN as torch.sort places it), and ``pruning.groups.group_norms`` must
equal torch's float32 group norms bit for bit, so masks stay what they were.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning import groups, lowest, top_n
from pruning.masks import compute_masks
from pruning.patterns import NM, RankedPattern, n_pruned, parse_pattern
from tests.naive.masks import naive_keep_above_lowest, naive_keep_top_n, torch_group_norms

torch.set_num_threads(1)
FAST = settings(max_examples=60, deadline=None)
SPECIAL = [0.0, -0.0, 1.0, 0.5, float("inf"), float("-inf"), float("nan")]


@st.composite
def score_arrays(draw, max_size: int = 40, dtype=np.float32, nan: bool = True):
    """Small arrays whose values repeat (ties), with +-0, infinities and optionally NaN."""
    size = draw(st.integers(0, max_size))
    pool = [v for v in SPECIAL if nan or v == v] + [float(i) for i in range(4)]
    values = draw(
        st.lists(
            st.one_of(st.sampled_from(pool), st.floats(-3, 3, width=32)),
            min_size=size,
            max_size=size,
        )
    )
    return np.array(values, dtype=dtype)


# --- lowest k ------------------------------------------------------------------------------


@FAST
@given(st.lists(score_arrays(), min_size=1, max_size=4), st.data(), st.sampled_from([4, 64]))
def test_keep_above_lowest_matches_a_stable_sort(arrays, data, sample) -> None:
    """Tiny samples make the bracket miss often, so the exact fallback is exercised too."""
    n = sum(a.size for a in arrays)
    k = data.draw(st.integers(-1, n + 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lowest, "SMALL", 2)
        patch.setattr(lowest, "SAMPLE_SIZE", sample)
        got = lowest.keep_above_lowest(arrays, k)
    expected = naive_keep_above_lowest(arrays, max(0, min(k, n)))
    assert [g.shape for g in got] == [a.shape for a in arrays]
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == bool and np.array_equal(g, e)


def test_keep_above_lowest_with_nan_at_the_brackets_upper_quantile() -> None:
    """NaN sorts last in the sample, so the bracket's upper quantile can land on one: a NaN
    ``hi`` compared false with every score, the candidates were the scores below ``lo`` and
    nothing was pruned. Here 40 scores of -1 and 88 of 0 or NaN, placed so the sample holds
    20 zeros then 44 NaN; the 60 lowest are the 40 ones of -1 and the first 20 zeros."""
    n, k = 128, 60
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lowest, "SMALL", 2)
        patch.setattr(lowest, "SAMPLE_SIZE", 64)
        picks = lowest._sample_positions(n, 64)
        rest = np.setdiff1d(np.arange(n), picks)
        scores = np.full(n, -1.0, dtype=np.float32)
        scores[rest[40:]] = 0.0
        scores[picks[:20]] = 0.0
        scores[picks[20:]] = np.nan
        lo, hi = lowest._bracket([scores], n, k, None)
        got = lowest.keep_above_lowest([scores], k)[0]
    assert lo == 0.0 and hi == np.inf
    assert np.array_equal(got, naive_keep_above_lowest([scores], k)[0])
    assert np.count_nonzero(~got) == k and not got[scores == -1.0].any()


def test_keep_above_lowest_uses_the_bracket_on_large_inputs() -> None:
    """On BERT-sized random scores the sampled bracket holds the threshold (no sort)."""
    rng = np.random.default_rng(1)
    scores = [np.abs(rng.standard_normal(n).astype(np.float32)) for n in (300_000, 100_000)]
    scores[1][:5000] = scores[1][0]  # ties across the threshold region too
    for sparsity in (0.1, 0.5, 0.75, 0.99):
        k = n_pruned(sparsity, 400_000)
        lo, hi = lowest._bracket(scores, 400_000, k, None)
        below, _, _, inside = lowest._scan(scores, lo, hi, None)
        assert 0 <= k - 1 - below < sum(values.size for values in inside)
        got = lowest.keep_above_lowest(scores, k)
        expected = lowest._exact(scores, k)
        assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))


# --- n of m --------------------------------------------------------------------------------


@FAST
@given(st.integers(1, 9), st.integers(0, 6), st.data(), st.booleans())
def test_keep_top_n_matches_a_stable_descending_sort(m, groups_, data, small_chunks) -> None:
    n = data.draw(st.integers(1, m))
    size = m * groups_
    values = data.draw(st.lists(st.sampled_from([*SPECIAL, 2.0, 3.0]), min_size=size,
                                max_size=size))  # fmt: skip
    scores = np.array(values, dtype=np.float32).reshape(groups_, m)
    with pytest.MonkeyPatch.context() as patch:
        if small_chunks:
            patch.setattr(top_n, "CHUNK", 2 * m)
        got = top_n.keep_top_n(scores, n, m)
    assert got.shape == scores.shape
    assert np.array_equal(got, naive_keep_top_n(scores, n, m))


def test_keep_top_n_rejects_ragged_groups() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        top_n.keep_top_n(np.zeros(6, dtype=np.float32), 2, 4)


def test_naive_tie_and_nan_rules_are_torchs() -> None:
    """The naive twins encode torch.sort's order: stable, NaN largest."""
    values = torch.tensor([1.0, float("nan"), 0.5, 1.0, float("nan"), -float("inf"), 0.5, 1.0])
    ascending = torch.sort(values, stable=True).indices[:5]
    keep = torch.ones(8, dtype=torch.bool)
    keep[ascending] = False
    assert np.array_equal(naive_keep_above_lowest([values.numpy()], 5)[0], keep.numpy())
    groups_ = values.reshape(2, 4)
    order = torch.sort(groups_, dim=-1, descending=True, stable=True).indices[:, :2]
    top = torch.zeros_like(groups_, dtype=torch.bool).scatter_(-1, order, True)
    assert np.array_equal(naive_keep_top_n(groups_.numpy(), 2, 4), top.numpy())


# --- group norms ---------------------------------------------------------------------------


@FAST
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    r=st.integers(1, 9),
    c=st.integers(1, 18),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_group_norms_equal_torch_bit_for_bit(rows, cols, r, c, dtype, seed) -> None:
    weight = np.random.default_rng(seed).standard_normal((rows, cols)).astype(dtype)
    got = groups.group_norms(weight, r, c)
    expected = torch_group_norms(weight, r, c)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize(("r", "c"), [(1, 2), (2, 2), (3, 5), (4, 7), (1, 4), (16, 3)])
def test_replayed_group_norms_on_a_bert_sized_matrix(r, c) -> None:
    """The replayed row order on a full FFN-sized weight (torch picks its kernels by size)."""
    weight = np.random.default_rng(r * 10 + c).standard_normal((768, 3072)).astype(np.float32)
    got = groups.group_norms(weight * 0.02, r, c)
    assert np.array_equal(got, torch_group_norms(weight * 0.02, r, c))


@FAST
@given(rows=st.integers(1, 20), cols=st.integers(1, 20), r=st.integers(1, 9), c=st.integers(1, 9),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_expand_and_any_in_groups(rows, cols, r, c, seed) -> None:
    rng = np.random.default_rng(seed)
    grid_r, grid_c = groups.grid_shape((rows, cols), r, c)
    keep = rng.random((grid_r, grid_c)) < 0.5
    full = groups.expand_groups(keep, r, c, (rows, cols))
    expected = np.kron(keep, np.ones((r, c), dtype=bool))[:rows, :cols]
    assert full.flags.c_contiguous and np.array_equal(full, expected)
    mask = rng.random((rows, cols)) < 0.1
    occupied = groups.any_in_groups(mask, r, c)
    for i in range(grid_r):
        for j in range(grid_c):
            assert occupied[i, j] == mask[i * r : (i + 1) * r, j * c : (j + 1) * c].any()


# --- whole masks ---------------------------------------------------------------------------

PATTERNS = ["unstructured", "block:2x2", "block:3x5", "block:1x4", "block:8x8", "row",
            "column", "head:2", "crossbar:4x8", "nm:2:4", "nm:1:8"]  # fmt: skip


def naive_masks(weights, pattern, sparsity, scope):
    """The masks from first principles: torch's group norms, a stable sort, np.kron."""
    parsed = parse_pattern(pattern)
    arrays = {name: w.numpy() for name, w in weights.items()}
    if isinstance(parsed, NM):
        return {name: naive_keep_top_n(np.abs(a), parsed.n, parsed.m) for name, a in arrays.items()}
    assert isinstance(parsed, RankedPattern)
    shapes = {name: parsed.group_shape(a.shape) for name, a in arrays.items()}
    grids = {name: torch_group_norms(a, *shapes[name]) for name, a in arrays.items()}
    names = list(grids)
    if scope == "global":
        keeps = naive_keep_above_lowest(
            [grids[n] for n in names], n_pruned(sparsity, sum(g.size for g in grids.values()))
        )
    else:
        keeps = [naive_keep_above_lowest([grids[n]], n_pruned(sparsity, grids[n].size))[0]
                 for n in names]  # fmt: skip
    return {
        name: np.kron(keep, np.ones(shapes[name], dtype=bool))[: arrays[name].shape[0],
                                                                : arrays[name].shape[1]]
        for name, keep in zip(names, keeps, strict=True)
    }  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.sampled_from(PATTERNS),
    scope=st.sampled_from(["per-matrix", "global"]),
    sparsity=st.floats(0, 1, exclude_max=True),
    quantum=st.sampled_from([0.0, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_compute_masks_match_the_naive_masks(pattern, scope, sparsity, quantum, seed) -> None:
    """Random weights, rounded (``quantum``) so that many scores tie."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(8, 16), (12, 8), (4, 24)]
    weights = {f"w{i}": torch.randn(s, generator=generator) for i, s in enumerate(shapes)}
    if quantum:
        weights = {n: (w / quantum).round() * quantum for n, w in weights.items()}
    level = None if pattern.startswith("nm:") else sparsity
    got = compute_masks(weights, pattern, level, scope)
    expected = naive_masks(weights, pattern, sparsity, scope)
    for name in weights:
        assert got[name].dtype == torch.bool
        assert np.array_equal(got[name].numpy(), expected[name]), name
