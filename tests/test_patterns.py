"""pruning.patterns and pruning.masks: mask structure, sparsity counts, ordering, parsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning import (
    NM,
    Block,
    Column,
    Crossbar,
    Head,
    PatternError,
    Row,
    Unstructured,
    block_occupancy,
    compute_masks,
    density,
    parse_pattern,
)
from pruning.patterns import check_fits, n_pruned

torch.set_num_threads(1)

FAST = settings(max_examples=40, deadline=None)
sparsities = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def weight_of(shape: tuple[int, int], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen)


def naive_groups(shape: tuple[int, int], r: int, c: int) -> list[tuple[slice, slice]]:
    """Every r x c tile of the matrix (edge tiles partial), row-major."""
    rows, cols = shape
    return [
        (slice(i, min(i + r, rows)), slice(j, min(j + c, cols)))
        for i in range(0, rows, r)
        for j in range(0, cols, c)
    ]


def check_ranked_mask(
    weight: torch.Tensor, mask: torch.Tensor, r: int, c: int, sparsity: float
) -> None:
    """Structure, exact pruned-group count and magnitude ordering, from first principles."""
    assert mask.shape == weight.shape and mask.dtype == torch.bool
    groups = naive_groups(tuple(weight.shape), r, c)
    kept, pruned = [], []
    for rs, cs in groups:
        tile = mask[rs, cs]
        assert tile.all() or not tile.any(), "group partially kept"
        score = float(weight[rs, cs].double().norm())
        (kept if tile.all() else pruned).append(score)
    k = len(pruned)
    assert k / len(groups) <= sparsity < (k + 1) / len(groups)
    if kept and pruned:
        assert max(pruned) <= min(kept) + 1e-6


# --- ranked patterns -----------------------------------------------------------------------


@FAST
@given(
    rows=st.integers(1, 12),
    cols=st.integers(1, 12),
    r=st.integers(1, 6),
    c=st.integers(1, 6),
    sparsity=sparsities,
    seed=st.integers(0, 2**16),
)
def test_block_mask_structure_count_and_order(rows, cols, r, c, sparsity, seed) -> None:
    w = weight_of((rows, cols), seed)
    for pattern in (Block(r, c), Crossbar(r, c)):
        check_ranked_mask(w, pattern.compute_mask(w, sparsity), r, c, sparsity)


@FAST
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), sparsity=sparsities, seed=st.integers())
def test_unstructured_row_column_structure(rows, cols, sparsity, seed) -> None:
    w = weight_of((rows, cols), seed % 2**16)
    check_ranked_mask(w, Unstructured().compute_mask(w, sparsity), 1, 1, sparsity)
    check_ranked_mask(w, Row().compute_mask(w, sparsity), 1, cols, sparsity)
    check_ranked_mask(w, Column().compute_mask(w, sparsity), rows, 1, sparsity)


@pytest.mark.parametrize(("heads", "sparsity", "pruned"), [(4, 0.5, 2), (4, 0.6, 2), (3, 0.34, 1)])
def test_head_prunes_whole_heads(heads: int, sparsity: float, pruned: int) -> None:
    w = weight_of((12, 5), 0)
    head_dim = 12 // heads
    w[:head_dim] *= 0.01  # head 0 is the weakest
    mask = Head(heads).compute_mask(w, sparsity)
    check_ranked_mask(w, mask, head_dim, 5, sparsity)
    per_head = mask.reshape(heads, head_dim * 5).all(dim=1)
    assert int((~per_head).sum()) == pruned
    assert not per_head[0]


def test_head_count_must_divide_out() -> None:
    with pytest.raises(ValueError, match="do not divide out_features=10"):
        Head(4).compute_mask(torch.ones(10, 3), 0.5)


def test_non_dividing_block_crops_to_shape() -> None:
    w = torch.ones(5, 7)
    mask = Block(4, 4).compute_mask(w, 0.5)  # 2x2 grid of blocks, prune 2
    assert mask.shape == (5, 7)
    # Partial blocks are scored by their real entries only: norms 4, sqrt(12), 2, sqrt(3),
    # so the two bottom (one-row) blocks go.
    expected = torch.ones(5, 7, dtype=torch.bool)
    expected[4:] = False
    assert torch.equal(mask, expected)
    grid = Block(4, 4).group_scores(w)
    assert grid.shape == (2, 2)
    assert grid.flatten().tolist() == pytest.approx([4.0, 12**0.5, 2.0, 3**0.5])


def test_block_1x1_equals_unstructured() -> None:
    w = weight_of((6, 9), 3)
    assert torch.equal(Block(1, 1).compute_mask(w, 0.4), Unstructured().compute_mask(w, 0.4))


@FAST
@given(
    rows=st.integers(1, 10),
    cols=st.integers(1, 10),
    r=st.integers(1, 4),
    c=st.integers(1, 4),
    s1=sparsities,
    s2=sparsities,
    seed=st.integers(0, 2**16),
)
def test_masks_are_nested(rows, cols, r, c, s1, s2, seed) -> None:
    lo, hi = sorted((s1, s2))
    w = weight_of((rows, cols), seed).round(decimals=1)  # rounding forces ties
    for pattern in (Unstructured(), Block(r, c)):
        kept_lo, kept_hi = pattern.compute_mask(w, lo), pattern.compute_mask(w, hi)
        assert not (kept_hi & ~kept_lo).any(), f"{pattern}: not nested"


@pytest.mark.parametrize("pattern", [Unstructured(), Block(2, 2), Row(), Column(), Head(2)])
def test_ties_are_deterministic_and_prune_lowest_index_first(pattern) -> None:
    w = torch.ones(4, 6)
    first = pattern.compute_mask(w, 0.5)
    assert torch.equal(first, pattern.compute_mask(w.clone(), 0.5))
    r, c = pattern.group_shape((4, 6))
    groups = naive_groups((4, 6), r, c)
    kept = [bool(first[rs, cs].all()) for rs, cs in groups]
    k = len(groups) // 2
    assert kept == [False] * k + [True] * (len(groups) - k)


def test_sparsity_zero_keeps_everything_for_half_weights() -> None:
    w = weight_of((3, 4), 1).to(torch.float16)
    for pattern in (Unstructured(), Block(2, 3), Row(), Column()):
        mask = pattern.compute_mask(w, 0.0)
        assert mask.dtype == torch.bool and mask.all()


def test_n_pruned_is_float_safe() -> None:
    assert 0.29 * 100 < 29  # the float product that a plain floor gets wrong
    assert n_pruned(0.29, 100) == 29
    assert n_pruned(0.7, 10) == 7
    assert n_pruned(0.999, 10) == 9
    assert n_pruned(0.5, 1) == 0


# --- N:M -----------------------------------------------------------------------------------


@FAST
@given(
    rows=st.integers(1, 6),
    groups=st.integers(1, 4),
    m=st.integers(1, 8),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_nm_keeps_exactly_n_largest_per_group(rows, groups, m, data, seed) -> None:
    n = data.draw(st.integers(1, m))
    w = weight_of((rows, groups * m), seed)
    mask = NM(n, m).compute_mask(w)
    assert mask.shape == w.shape
    g_mask = mask.reshape(rows, groups, m)
    g_abs = w.abs().reshape(rows, groups, m)
    assert (g_mask.sum(dim=-1) == n).all()
    kept_min = torch.where(g_mask, g_abs, torch.inf).amin(dim=-1)
    pruned_max = torch.where(~g_mask, g_abs, -torch.inf).amax(dim=-1)
    assert (pruned_max <= kept_min).all()


def test_nm_sparsity_argument() -> None:
    w = weight_of((2, 8), 0)
    pattern = NM(2, 4)
    assert pattern.sparsity == 0.5
    expected = pattern.compute_mask(w)
    assert torch.equal(pattern.compute_mask(w, 0.5), expected)
    assert torch.equal(pattern.compute_mask(w, 0.5 + 1e-12), expected)
    with pytest.raises(ValueError, match="fixed at 1 - N/M"):
        pattern.compute_mask(w, 0.6)
    assert NM(4, 4).compute_mask(w, 0.0).all()


def test_nm_ties_and_divisibility() -> None:
    mask = NM(2, 4).compute_mask(torch.ones(1, 8))
    assert mask.tolist() == [[True, True, False, False] * 2]
    with pytest.raises(ValueError, match="M=4 does not divide in_features=6"):
        NM(2, 4).compute_mask(torch.ones(2, 6))


# --- scope ---------------------------------------------------------------------------------


@FAST
@given(
    shapes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=4),
    r=st.integers(1, 3),
    c=st.integers(1, 3),
    sparsity=sparsities,
    seed=st.integers(0, 2**16),
)
def test_global_scope_ranks_across_matrices(shapes, r, c, sparsity, seed) -> None:
    weights = {f"m{i}": weight_of(s, seed + i) * (i + 1) for i, s in enumerate(shapes)}
    masks = compute_masks(weights, Block(r, c), sparsity, scope="global")
    assert list(masks) == list(weights)
    kept, pruned = [], []
    for name, w in weights.items():
        for rs, cs in naive_groups(tuple(w.shape), r, c):
            tile = masks[name][rs, cs]
            assert tile.all() or not tile.any()
            (kept if tile.all() else pruned).append(float(w[rs, cs].double().norm()))
    total = len(kept) + len(pruned)
    assert len(pruned) == n_pruned(sparsity, total)
    if kept and pruned:
        assert max(pruned) <= min(kept) + 1e-6


def test_global_differs_from_per_matrix_and_string_pattern() -> None:
    weights = {"small": torch.full((2, 2), 0.1), "big": torch.full((2, 2), 10.0)}
    glob = compute_masks(weights, "unstructured", 0.5, scope="global")
    assert not glob["small"].any() and glob["big"].all()
    local = compute_masks(weights, "unstructured", 0.5)
    assert all(density(m) == 0.5 for m in local.values())


def test_global_ties_go_to_earlier_matrix() -> None:
    weights = {"a": torch.ones(2, 2), "b": torch.ones(2, 2)}
    masks = compute_masks(weights, Unstructured(), 0.5, scope="global")
    assert not masks["a"].any() and masks["b"].all()


def test_nm_ignores_scope_and_bad_scope_rejected() -> None:
    weights = {"a": weight_of((2, 4), 0), "b": weight_of((3, 8), 1) * 5}
    for scope in ("per-matrix", "global"):
        masks = compute_masks(weights, "nm:1:4", None, scope=scope)
        assert all(density(m) == 0.25 for m in masks.values())
    with pytest.raises(ValueError, match="scope"):
        compute_masks(weights, Unstructured(), 0.5, scope="layer")
    with pytest.raises(ValueError, match="sparsity"):
        compute_masks(weights, Unstructured(), 1.0, scope="global")
    with pytest.raises(ValueError, match="sparsity is required"):
        compute_masks(weights, Unstructured(), None, scope="global")
    assert compute_masks({}, Unstructured(), 0.5, scope="global") == {}


def test_check_fits_refuses_only_when_nothing_could_be_pruned() -> None:
    """A block covering some matrices leaves them dense but prunes the others; covering
    every matrix refuses per matrix, but globally whole matrices are groups to rank."""
    square, wide = {"q": (128, 128)}, {"q": (128, 128), "ffn": (512, 128)}
    check_fits(Crossbar(128, 128), wide)
    check_fits(Crossbar(128, 128), wide, scope="global")
    covered = {"q": (128, 128), "k": (128, 128)}
    with pytest.raises(PatternError, match="every one of the 2 weights"):
        check_fits(Block(128, 128), covered)
    check_fits(Block(128, 128), covered, scope="global")
    masks = compute_masks({n: torch.randn(s) for n, s in covered.items()}, "block:128x128", 0.5,
                          scope="global")  # fmt: skip
    assert sorted(bool(m.any()) for m in masks.values()) == [False, True]
    for scope in ("per-matrix", "global"):
        with pytest.raises(PatternError, match="the only weight"):
            check_fits(Block(128, 128), square, scope=scope)
        with pytest.raises(PatternError, match="M=3"):
            check_fits(NM(1, 3), wide, scope=scope)
        with pytest.raises(PatternError, match="heads"):
            check_fits(Head(3), wide, scope=scope)


# --- sparsity validation -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan"), True, "0.5"])
@pytest.mark.parametrize("pattern", [Unstructured(), Block(2, 2), NM(2, 4)])
def test_bad_sparsity_rejected(pattern, bad) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        pattern.compute_mask(torch.ones(4, 4), bad)


def test_ranked_pattern_needs_sparsity_and_2d_weight() -> None:
    with pytest.raises(ValueError, match="sparsity is required"):
        Unstructured().compute_mask(torch.ones(2, 2))
    with pytest.raises(ValueError, match="2-D"):
        Block(2, 2).compute_mask(torch.ones(2, 2, 2), 0.5)


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unstructured", Unstructured()),
        ("block:4x4", Block(4, 4)),
        ("block:1x4", Block(1, 4)),
        ("block:32x32", Block(32, 32)),
        ("nm:2:4", NM(2, 4)),
        ("nm:4:4", NM(4, 4)),
        ("row", Row()),
        ("column", Column()),
        ("head:12", Head(12)),
        ("crossbar:128x64", Crossbar(128, 64)),
    ],
)
def test_parse_round_trip(text: str, expected) -> None:
    pattern = parse_pattern(text)
    assert pattern == expected and type(pattern) is type(expected)
    assert str(pattern) == text
    assert parse_pattern(str(pattern)) == pattern


def test_crossbar_is_a_distinct_block() -> None:
    assert isinstance(Crossbar(4, 4), Block)
    assert Crossbar(4, 4) != Block(4, 4)
    w = weight_of((8, 8), 2)
    assert torch.equal(Crossbar(4, 4).compute_mask(w, 0.5), Block(4, 4).compute_mask(w, 0.5))


@pytest.mark.parametrize(
    "text",
    [
        "block:4",
        "block:4x",
        "blocks:4x4",
        "nm:2",
        "nm:2:4:8",
        "head",
        "head:x",
        "",
        "dense",
        "block:-1x4",
        "crossbar:4by4",
        "row:2",
    ],
)
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(PatternError) as err:
        parse_pattern(text)
    assert f"invalid pattern {text!r}: expected unstructured, block:RxC, nm:N:M, row, " in str(
        err.value
    )
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nm:4:2", "N must be <= M"),
        ("nm:0:4", "N must be a positive integer"),
        ("nm:2:0", "M must be a positive integer"),
        ("block:0x4", "block rows must be a positive integer"),
        ("crossbar:4x0", "block cols must be a positive integer"),
        ("head:0", "heads must be a positive integer"),
    ],
)
def test_parse_rejects_bad_sizes(text: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        parse_pattern(text)


def test_constructors_validate_and_patterns_are_frozen() -> None:
    with pytest.raises(PatternError):
        Block(0, 2)
    with pytest.raises(PatternError):
        NM(3, 2)
    with pytest.raises(AttributeError):
        Block(2, 2).rows = 3  # type: ignore[misc]


# --- statistics ----------------------------------------------------------------------------


def test_density_and_block_occupancy() -> None:
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[4, 6] = True  # lone entry in the partial bottom-right block
    mask[0, 0] = True
    assert density(mask) == pytest.approx(2 / 35)
    assert block_occupancy(mask, 4, 4) == pytest.approx(2 / 4)
    assert block_occupancy(mask, 1, 1) == pytest.approx(2 / 35)
    assert block_occupancy(mask, 5, 7) == 1.0
    assert block_occupancy(mask.numpy(), 4, 4) == pytest.approx(0.5)
    assert density(np.ones((2, 3), dtype=bool)) == 1.0
    with pytest.raises(ValueError, match="block rows"):
        block_occupancy(mask, 0, 4)


@FAST
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    r=st.integers(1, 4),
    c=st.integers(1, 4),
    sparsity=sparsities,
    seed=st.integers(0, 2**16),
)
def test_block_pruned_occupancy_matches_kept_groups(rows, cols, r, c, sparsity, seed) -> None:
    w = weight_of((rows, cols), seed) + 10.0  # no zero weights, so kept blocks are occupied
    mask = Block(r, c).compute_mask(w, sparsity)
    n_groups = len(naive_groups((rows, cols), r, c))
    expected = 1 - n_pruned(sparsity, n_groups) / n_groups
    assert block_occupancy(mask, r, c) == pytest.approx(expected)
