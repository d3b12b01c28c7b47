"""Block skipping and N:M mode on the compacting systolic array
(accel_sim.datapaths.systolic.compacting).

The issue's properties: never slower than dense where no bank conflict can arise, monotone
in nested masks where packing cannot create conflicts, exactly N/M under N:M, free all-zero
strips, block shape against array shape, all-ones == dense, compressed weight traffic, and
the fast engine == the cycle-stepping reference == the pure-Python twins. The output- and
input-stationary section checks the same for their compaction (no bank conflicts there, so
never slower than dense and monotone in nested masks unconditionally).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim.datapaths.systolic import compacting as ss
from accel_sim.kernels import dense_folds as dk
from accel_sim.kernels import fold_memory as fm
from accel_sim.kernels import sparse_folds as sk
from accel_sim.kernels import sparse_stepping as stepping
from accel_sim.spec import hardware_from_dict
from tests.conftest import hardware_dict
from tests.gemm_cases import (
    gemm_cases,
    memory,
    naive_args,
    run_kernel,
    scalesim_plan,
    shape_args,
)
from tests.naive.dense_folds import naive_dense_gemm
from tests.naive.sparse_folds import (
    naive_sparse_gemm,
    naive_stepping,
    naive_stream_gemm,
    naive_stream_stepping,
)

BIG = 1e12


# kernel statistic -> the pure-Python twin's key, compared exactly
TWIN_KEYS = {
    fm.COMPUTE_CYCLES: "compute_cycles",
    fm.TOTAL_CYCLES: "total_cycles",
    fm.FOLDS: "folds",
    fm.IFMAP_SRAM_READS: "ifmap_sram",
    fm.FILTER_SRAM_READS: "filter_sram",
    fm.OFMAP_SRAM_WRITES: "ofmap_sram_w",
    fm.OFMAP_SRAM_READS: "ofmap_sram_r",
    fm.IFMAP_DRAM_BYTES: "ifmap_dram",
    fm.OFMAP_DRAM_READ_BYTES: "ofmap_dram_r",
    fm.OFMAP_DRAM_WRITE_BYTES: "ofmap_dram_w",
    sk.COMPACTED_WEIGHTS: "compacted_weights",
    sk.BANK_CONFLICT_CYCLES: "conflict_cycles",
}


def assert_equals_twin(stats, twin):
    """A sparse kernel's statistics vector equals its naive twin's dict (float sums: close)."""
    for index, key in TWIN_KEYS.items():
        assert stats[index] == twin[key], key
    assert math.isclose(stats[fm.FILTER_DRAM_BYTES], twin["filter_dram"], rel_tol=1e-12)
    assert math.isclose(stats[fm.SRAM_LIMITED_CYCLES], twin["sram_extra"], abs_tol=1e-6)


def sparse_hw(rows=8, cols=8, dataflow="ws", dram_bytes_per_s=16e9, **sparse):
    spec = hardware_dict(rows=rows, cols=cols, dataflow=dataflow, dram_bytes_per_s=dram_bytes_per_s)
    spec["sparse"] = {"zero_handling": "skipping", **sparse}
    return hardware_from_dict(spec)


def compute_bound_hw(rows, cols, dataflow="ws", **sparse):
    """Unlimited buffers, ports and DRAM: total cycles == compute cycles."""
    spec = hardware_dict(
        rows=rows, cols=cols, dataflow=dataflow, sram_bytes=1 << 40, dram_bytes_per_s=1e21
    )
    for buf in ("ifmap", "filter", "ofmap"):
        spec["sram"][buf]["bytes_per_cycle"] = 1e9
    spec["sparse"] = {"zero_handling": "skipping", **sparse}
    return hardware_from_dict(spec)


def cycles(mask, m, rows, cols, granularity=1, banks=None):
    """Compute cycles and folds of skipping (fast engine, kernel level)."""
    banks = banks or rows
    strip, _, conflict, _, _ = sk.skipping_folds(mask, rows, cols, granularity, banks)
    return int(sk.fold_cycles_fast(conflict, rows, cols, m).sum()) - 1, len(strip)


def dense_cycles(m, k, n, rows, cols):
    return (-(-k // rows)) * (-(-n // cols)) * (2 * rows + cols - 2 + m) - 1


def block_mask(rng, n, k, block, density):
    """[n, k] mask of (br x bc) blocks, each kept with probability ``density``."""
    br, bc = block
    blocks = rng.random((-(-n // br), -(-k // bc))) < density
    return np.kron(blocks, np.ones((br, bc), dtype=bool))[:n, :k].astype(bool)


def nm_mask(rng, n, k, nm_n, nm_m):
    """Random [n, k] mask with at most nm_n kept in every nm_m-group along k."""
    keep = rng.random((n, k // nm_m, nm_m)).argsort(axis=2) < rng.integers(0, nm_n + 1)
    return keep.reshape(n, k)


@st.composite
def masks(draw, max_n=24, max_k=24):
    n, k = draw(st.integers(1, max_n)), draw(st.integers(1, max_k))
    kind = draw(st.sampled_from(["random", "block", "zeros", "ones", "rows"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.05, 0.2, 0.5, 0.9]))
    if kind == "random":
        return rng.random((n, k)) < density
    if kind == "block":
        block = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        return block_mask(rng, n, k, block, density)
    if kind == "rows":  # whole K-rows dead or alive: compaction without conflicts inside
        return np.repeat(rng.random((1, k)) < density, n, axis=0)
    return np.full((n, k), kind == "ones")


# ---- fast engine == cycle-stepping reference == pure-Python twins -------------------------

small_arrays = st.fixed_dictionaries(
    {
        "m": st.integers(1, 8),
        "rows": st.integers(1, 6),
        "cols": st.integers(1, 6),
        "banks": st.integers(1, 8),
        "granularity": st.integers(1, 4),
    }
)


@settings(max_examples=120, deadline=None)
@given(masks(), small_arrays)
def test_skipping_fast_engine_equals_cycle_stepping(mask, a):
    _, _, conflict, _, _ = sk.skipping_folds(
        mask, a["rows"], a["cols"], a["granularity"], a["banks"]
    )
    fast = sk.fold_cycles_fast(conflict, a["rows"], a["cols"], a["m"])
    stepped, macs = stepping.fold_cycles_stepping(
        mask, a["m"], a["rows"], a["cols"], a["granularity"], a["banks"], 1, 2, False
    )
    assert fast.tolist() == stepped.tolist()
    hw = compute_bound_hw(
        a["rows"], a["cols"], skip_granularity=a["granularity"], ifmap_banks=a["banks"]
    )
    st_fast = ss.sparse_gemm_stats(mask, a["m"], hw)
    st_step = ss.sparse_gemm_stats(mask, a["m"], hw, engine="cycle_stepping")
    assert st_fast.compute_cycles == st_step.compute_cycles
    assert st_fast.total_cycles == st_step.total_cycles
    assert macs == st_fast.performed_macs


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 4), (2, 8)]),
    st.integers(1, 24),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
    small_arrays,
)
def test_nm_fast_engine_equals_cycle_stepping(nm, n, groups, seed, a):
    nm_n, nm_m = nm
    mask = nm_mask(np.random.default_rng(seed), n, groups * nm_m, nm_n, nm_m)
    hw = compute_bound_hw(a["rows"], a["cols"], zero_handling="nm", nm=nm)
    fast = ss.sparse_gemm_stats(mask, a["m"], hw)
    stepped = ss.sparse_gemm_stats(mask, a["m"], hw, engine="cycle_stepping")
    assert fast.compute_cycles == stepped.compute_cycles
    assert fast.mean_bank_conflict == 1.0


TWIN_CASES = [
    # mask kind, n, k, m, rows, cols, granularity, banks, caps, double_buffered, dram_bpc, nm
    ("random", 13, 17, 3, 4, 3, 1, 3, (BIG, BIG, BIG), True, 64.0, None),
    ("block", 20, 24, 5, 4, 4, 2, 4, (64.0, 64.0, 16.0), True, 0.5, None),
    ("random", 9, 22, 7, 5, 2, 3, 2, (256.0, 16.0, 4096.0), False, 4.0, None),
    ("zeros", 6, 10, 4, 3, 3, 1, 2, (BIG, BIG, BIG), True, 1.0, None),
    ("striped", 16, 12, 2, 3, 4, 1, 8, (32.0, BIG, 8.0), True, 0.25, None),
    ("nm", 10, 16, 4, 3, 4, 1, 2, (128.0, BIG, 64.0), True, 2.0, (2, 4)),
]


@pytest.mark.parametrize("case", TWIN_CASES)
def test_kernels_equal_naive_twins(case):
    kind, n, k, m, rows, cols, g, banks, caps, dbuf, dram_bpc, nm = case
    rng = np.random.default_rng(7)
    mask = {
        "random": lambda: rng.random((n, k)) < 0.3,
        "block": lambda: block_mask(rng, n, k, (4, 4), 0.4),
        "zeros": lambda: np.zeros((n, k), dtype=bool),
        "striped": lambda: np.repeat(np.arange(n)[:, None] // cols % 2 == 0, k, axis=1),
        "nm": lambda: nm_mask(rng, n, k, 2, 4),
    }[kind]()
    word, acc, bpc, scale = 2, 4, 6.0, 0.625
    if nm is None:
        folds = sk.skipping_folds(mask, rows, cols, g, banks)
    else:
        folds = sk.nm_folds(n, k, rows, cols, *nm)
    fold_cycles = sk.fold_cycles_fast(folds.conflict, rows, cols, m)
    mem = fm.MemoryParams(word, acc, *caps, dbuf, dram_bpc, bpc, bpc, bpc, scale)
    stats = sk.sparse_gemm_folds(folds, fold_cycles, cols, m, k, n, mem, scalesim_plan("ws"))
    twin = naive_sparse_gemm(
        mask.tolist(), m, rows, cols, g, banks, word, acc, *caps, dbuf, dram_bpc, bpc, scale, nm
    )
    assert_equals_twin(stats, twin)

    stepped, macs = stepping.fold_cycles_stepping(
        mask, m, rows, cols, g, banks, *(nm or (1, 2)), nm is not None
    )
    twin_cycles, twin_macs = naive_stepping(mask.tolist(), m, rows, cols, g, banks, nm)
    assert stepped.tolist() == twin_cycles == fold_cycles.tolist()
    assert macs == twin_macs == stats[sk.COMPACTED_WEIGHTS] * m


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(gemm_cases, st.integers(1, 5), st.integers(0, 8), st.sampled_from([1.0, 0.3, 1.25]))
def test_all_ones_mask_equals_dense_kernel_every_stat(case, granularity, extra_banks, scale):
    """All-ones, any granularity, banks >= rows: exactly the dense kernel's statistics."""
    case = {**case, "dataflow": "ws"}
    rows, cols, m, k, n = shape_args(case)[:5]
    mask = np.ones((n, k), dtype=bool)
    folds = sk.skipping_folds(mask, rows, cols, granularity, rows + extra_banks)
    fold_cycles = sk.fold_cycles_fast(folds.conflict, rows, cols, m)
    plan = scalesim_plan("ws")
    sparse = sk.sparse_gemm_folds(folds, fold_cycles, cols, m, k, n, memory(case, scale), plan)
    dense = run_kernel(case, scale)
    assert sparse[: fm.N_STATS].tolist() == dense.tolist()
    assert sparse[sk.CONFLICT_SUM] == sparse[fm.FOLDS]  # conflict 1 everywhere


@settings(max_examples=150, deadline=None)
@given(gemm_cases, st.sampled_from([1.0, 0.5, 0.37, 1.5]))
def test_dense_kernel_weight_dram_bytes_scale_with_compression(case, scale):
    """WS fetches each weight once: its DRAM bytes are scale x K x N x word; at scale 1 the
    kernel (and its twin) are unchanged; other dataflows scale their weight traffic too."""
    plain = run_kernel(case)
    scaled = run_kernel(case, scale)
    k, n, word = case["k"], case["n"], case["word"]
    if case["dataflow"] == "ws":
        assert math.isclose(scaled[fm.FILTER_DRAM_BYTES], scale * k * n * word, rel_tol=1e-12)
    assert math.isclose(scaled[fm.FILTER_DRAM_BYTES], scale * plain[fm.FILTER_DRAM_BYTES])
    twin = naive_dense_gemm(case["dataflow"], *naive_args(case), scale)
    assert scaled[fm.TOTAL_CYCLES] == twin["total_cycles"]
    assert math.isclose(scaled[fm.FILTER_DRAM_BYTES], twin["filter_dram"], rel_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(masks(), small_arrays, st.sampled_from([0.2, 0.9, 1.1]))
def test_sparse_weight_dram_bytes_are_the_compressed_size(mask, a, scale):
    hw = sparse_hw(a["rows"], a["cols"], skip_granularity=a["granularity"])
    cost = ss.sparse_gemm_stats(mask, a["m"], hw, filter_dram_scale=scale)
    n, k = mask.shape
    expected = scale * k * n * hw.word_bytes if mask.any() else 0.0
    assert math.isclose(cost.raw[fm.FILTER_DRAM_BYTES], expected, rel_tol=1e-12)


@settings(max_examples=150, deadline=None)
@given(masks(), small_arrays, st.booleans())
def test_skipping_never_costs_more_than_dense_without_bank_conflicts(mask, a, aligned):
    """No conflict can arise when every K index has its own bank (banks >= K), or when each
    fold lies inside one aligned group (granularity a multiple of R) of contiguous rows and
    banks >= R. Then skipping never costs more compute cycles than dense, and never more
    folds in any case. (With fewer banks it can: see the counterexample below.)"""
    n, k = mask.shape
    rows = a["rows"]
    g, banks = (rows * a["granularity"], rows) if aligned else (a["granularity"], k)
    skip, _ = cycles(mask, a["m"], rows, a["cols"], g, banks)
    assert skip <= dense_cycles(a["m"], k, n, rows, a["cols"])
    _, any_bank_folds = cycles(mask, a["m"], rows, a["cols"], a["granularity"], a["banks"])
    assert any_bank_folds <= -(-k // rows) * -(-n // a["cols"])


def test_bank_conflicts_can_make_skipping_slower_than_dense():
    """K=8 on 4 rows with 4 banks: live rows {0,1,2,4,5,6,7} pack as {0,1,2,4} (0 and 4 share
    bank 0: 2 cycles per token) + {5,6,7}: the same two folds as dense, one twice as long."""
    mask = np.ones((4, 8), dtype=bool)
    mask[:, 3] = False
    skip, folds = cycles(mask, 16, 4, 4, 1, 4)
    assert folds == 2
    assert skip == (8 + 4 - 2 + 2 * 16) + (8 + 4 - 2 + 16) - 1 > dense_cycles(16, 8, 4, 4, 4)


@settings(max_examples=150, deadline=None)
@given(masks(), small_arrays, st.integers(0, 2**32 - 1), st.booleans())
def test_nested_masks_never_cost_more(mask, a, seed, aligned):
    """Removing kept weights never adds folds. Compute cycles are monotone too wherever
    packing cannot create bank conflicts (banks >= K, or granularity a multiple of R with
    banks >= R); in general they are not: see the counterexample below."""
    rng = np.random.default_rng(seed)
    sub = mask & (rng.random(mask.shape) < rng.random())
    rows, cols, m = a["rows"], a["cols"], a["m"]
    _, folds_big = cycles(mask, m, rows, cols, a["granularity"], a["banks"])
    _, folds_sub = cycles(sub, m, rows, cols, a["granularity"], a["banks"])
    assert folds_sub <= folds_big
    g, banks = (rows * a["granularity"], rows) if aligned else (a["granularity"], mask.shape[1])
    assert cycles(sub, m, rows, cols, g, banks)[0] <= cycles(mask, m, rows, cols, g, banks)[0]


def test_removing_a_row_can_add_bank_conflicts():
    """K=8, 4 rows, 4 banks: all rows live pack as {0..3} + {4..7}, conflict-free; drop row 1
    and they pack as {0,2,3,4} (0 and 4 share a bank) + {5,6,7}: fewer weights, more cycles."""
    full = np.ones((4, 8), dtype=bool)
    sub = full.copy()
    sub[:, 1] = False
    big, big_folds = cycles(full, 16, 4, 4, 1, 4)
    small, small_folds = cycles(sub, 16, 4, 4, 1, 4)
    assert small_folds == big_folds == 2
    assert small > big


@pytest.mark.parametrize("nm", [(1, 2), (2, 4), (1, 4), (3, 4), (2, 8), (4, 8)])
@pytest.mark.parametrize(("rows", "cols", "m"), [(4, 4, 16), (8, 3, 5), (3, 8, 40)])
def test_nm_mode_takes_exactly_n_over_m_of_dense_fold_cycles(nm, rows, cols, m):
    """K a multiple of R x M, so both K/R and (K N/M)/R are whole: fold-cycle sums (compute
    cycles + 1) are exactly N/M of dense on the same array, m and n."""
    nm_n, nm_m = nm
    k, n = 2 * rows * nm_m, 2 * cols + 1
    mask = nm_mask(np.random.default_rng(3), n, k, nm_n, nm_m)
    hw = compute_bound_hw(rows, cols, zero_handling="nm", nm=nm)
    sparse = ss.sparse_gemm_cost(mask, m, 1, hw)
    dense = dense_cycles(m, k, n, rows, cols)
    assert (sparse.compute_cycles + 1) * nm_m == (dense + 1) * nm_n
    assert sparse.stall_cycles == 0


def test_all_zero_strips_and_masks_cost_no_compute_cycles():
    rng = np.random.default_rng(1)
    rows, cols, m = 4, 4, 10
    live = rng.random((cols, 20)) < 0.4
    mask = np.zeros((4 * cols, 20), dtype=bool)
    mask[2 * cols : 3 * cols] = live  # only strip 2 holds weights
    assert cycles(mask, m, rows, cols) == cycles(live, m, rows, cols)
    hw = sparse_hw(rows, cols)
    empty = ss.sparse_gemm_cost(np.zeros((16, 20), dtype=bool), m, 3, hw)
    assert (empty.compute_cycles, empty.folds, empty.counts.macs) == (0, 0, 0)
    # the zero outputs still reach DRAM, and nothing else moves
    assert empty.counts.dram_write_bytes == 3 * m * 16 * hw.word_bytes
    assert empty.counts.dram_read_bytes == 0


def test_block_shape_against_array_shape():
    """At the same density on a 32x32 array, 32x32 blocks compact into whole conflict-free
    folds; 4x4 blocks leave nearly every K-row of a 32-wide strip live."""
    rng = np.random.default_rng(0)
    k = n = 256
    keep = 0.25
    coarse = block_mask(rng, n, k, (32, 32), 1.0)
    coarse[:] = False
    picks = rng.choice(64, size=16, replace=False)  # exactly 25% of the 8x8 blocks
    for p in picks:
        coarse[p // 8 * 32 : p // 8 * 32 + 32, p % 8 * 32 : p % 8 * 32 + 32] = True
    fine = np.zeros((n, k), dtype=bool)
    picks = rng.choice(64 * 64, size=int(keep * 64 * 64), replace=False)
    for p in picks:
        fine[p // 64 * 4 : p // 64 * 4 + 4, p % 64 * 4 : p % 64 * 4 + 4] = True
    assert fine.sum() == coarse.sum() == keep * n * k
    hw = compute_bound_hw(32, 32, ifmap_banks=32)
    big = ss.sparse_gemm_stats(coarse, 128, hw)
    small = ss.sparse_gemm_stats(fine, 128, hw)
    message = (
        f"32x32 blocks: {big.folds} folds, {big.compute_cycles} cycles, conflict "
        f"{big.mean_bank_conflict:.2f}; 4x4 blocks: {small.folds} folds, "
        f"{small.compute_cycles} cycles, conflict {small.mean_bank_conflict:.2f}; "
        f"dense: {big.dense_folds} folds, {dense_cycles(128, k, n, 32, 32)} cycles"
    )
    assert big.folds < small.folds, message
    assert big.compute_cycles < small.compute_cycles, message
    assert big.mean_bank_conflict == 1.0, message


# ---- API ----------------------------------------------------------------------------------


def test_cost_bookkeeping_and_engines():
    mask = np.random.default_rng(2).random((12, 20)) < 0.3
    hw = sparse_hw(4, 4, skip_granularity=2, ifmap_banks=3)
    fast = ss.sparse_gemm_cost(mask, 6, 2, hw, filter_dram_scale=0.5)
    slow = ss.sparse_gemm_cost(mask, 6, 2, hw, filter_dram_scale=0.5, engine="cycle_stepping")
    assert fast == slow
    stats = ss.sparse_gemm_stats(mask, 6, hw, filter_dram_scale=0.5)
    assert fast.mode == "skipping"
    assert fast.folds == 2 * stats.folds
    assert fast.counts.macs == 2 * stats.performed_macs >= fast.useful_macs
    assert fast.useful_macs == 2 * int(mask.sum()) * 6
    assert fast.bank_conflict == stats.mean_bank_conflict >= 1.0
    assert fast.compute_cycles == 2 * stats.compute_cycles


def test_nm_constraint_is_checked():
    mask = np.zeros((3, 8), dtype=bool)
    mask[2, 4:7] = True  # row 2, group 1 keeps 3 > 2
    hw = sparse_hw(zero_handling="nm", nm=(2, 4))
    assert not ss.satisfies_nm(mask, 2, 4)
    assert ss.satisfies_nm(mask, 3, 4)
    assert not ss.satisfies_nm(np.zeros((2, 6), dtype=bool), 2, 4)  # 4 does not divide 6
    with pytest.raises(ValueError, match=r"row 2, group 1 \(inputs 4..7\) keeps 3 > 2"):
        ss.sparse_gemm_cost(mask, 4, 1, hw)
    with pytest.raises(ValueError, match="K=6 inputs, not a multiple of M=4"):
        ss.sparse_gemm_cost(np.zeros((2, 6), dtype=bool), 4, 1, hw)


def test_invalid_arguments_are_named():
    hw = sparse_hw()
    ok = np.ones((4, 4), dtype=bool)
    with pytest.raises(ValueError, match="mask"):
        ss.sparse_gemm_cost(np.ones(4, dtype=bool), 4, 1, hw)
    with pytest.raises(ValueError, match="mask"):
        ss.sparse_gemm_cost(np.full((2, 2), 0.5), 4, 1, hw)
    with pytest.raises(ValueError, match="m must be"):
        ss.sparse_gemm_cost(ok, 0, 1, hw)
    with pytest.raises(ValueError, match="count must be"):
        ss.sparse_gemm_cost(ok, 4, 0, hw)
    with pytest.raises(ValueError, match="filter_dram_scale"):
        ss.sparse_gemm_cost(ok, 4, 1, hw, filter_dram_scale=0.0)
    with pytest.raises(ValueError, match="engine"):
        ss.sparse_gemm_cost(ok, 4, 1, hw, engine="slow")
    with pytest.raises(ValueError, match="zero_handling"):
        ss.sparse_gemm_cost(ok, 4, 1, sparse_hw(zero_handling="gating"))
    assert ss.sparse_gemm_cost(ok.astype(np.int8), 4, 1, hw) == ss.sparse_gemm_cost(ok, 4, 1, hw)


@pytest.mark.parametrize("dataflow", ["os", "is"])
@pytest.mark.parametrize(("nm_n", "nm_m"), [(2, 4), (1, 4), (2, 8)])
def test_nm_mode_on_output_and_input_stationary_is_exact_n_over_m(dataflow, nm_n, nm_m):
    """N:M on OS and IS: the compacted K N / M slots stream (OS) or sit (IS) on the array; the
    compute is exactly N/M of dense where shapes divide (OS: the streamed cycles of every fold,
    IS: the K folds), the inputs move as many bytes as dense and the weight its compressed
    bytes."""
    rows = cols = 8
    m, k, n = 16, 8 * nm_m * 2, 24  # K a multiple of R * M
    mask = nm_mask(np.random.default_rng(nm_m), n, k, nm_n, nm_m)
    hw = compute_bound_hw(rows, cols, dataflow, zero_handling="nm", nm=(nm_n, nm_m))
    scale = 0.6
    st_nm = ss.sparse_gemm_stats(mask, m, hw, filter_dram_scale=scale)
    code = dk.OS if dataflow == "os" else dk.IS
    plan = fm.FoldPlan(dataflow == "os", False, False, False, False)
    mem = ss.memory_params(hw, 1.0)
    dense = dk.dense_gemm_folds(code, rows, cols, m, k, n, mem, plan)
    overhead = dk.fold_overhead(code, rows, cols)
    dense_compute = dense[fm.COMPUTE_CYCLES] + 1  # the kernel subtracts SCALE-Sim's last index
    if dataflow == "os":
        assert st_nm.folds == dense[fm.FOLDS] == st_nm.dense_folds
        streamed = st_nm.compute_cycles + 1 - st_nm.folds * overhead
        assert streamed * nm_m == (dense_compute - dense[fm.FOLDS] * overhead) * nm_n
    else:
        assert st_nm.folds * nm_m == dense[fm.FOLDS] * nm_n
        assert st_nm.dense_folds == dense[fm.FOLDS]
        assert (st_nm.compute_cycles + 1) * nm_m == dense_compute * nm_n
    raw, word = st_nm.raw, hw.word_bytes
    assert raw[fm.IFMAP_DRAM_BYTES] == pytest.approx(dense[fm.IFMAP_DRAM_BYTES])
    assert raw[fm.FILTER_DRAM_BYTES] == pytest.approx(scale * k * n * word)
    assert st_nm.performed_macs == m * n * k * nm_n // nm_m
    assert st_nm.useful_macs == int(mask.sum()) * m
    assert st_nm.mean_bank_conflict == 1.0 and st_nm.bank_conflict_cycles == 0
    cost = ss.sparse_gemm_cost(mask, m, 1, hw, filter_dram_scale=scale)
    assert cost.mode == "nm" and cost.note is None
    assert cost.compute_cycles == st_nm.compute_cycles


def test_nm_mode_on_output_stationary_needs_m_over_n_ifmap_words_a_cycle():
    """The row's window takes a group of M inputs per N slots: a narrow ifmap port, not the
    MACs, sets the time of an OS N:M GEMM, as it does under WS."""
    mask = nm_mask(np.random.default_rng(0), 32, 64, 1, 4)
    wide = compute_bound_hw(8, 8, "os", zero_handling="nm", nm=(1, 4))
    spec = wide.model_dump()
    spec["sram"]["ifmap"]["bytes_per_cycle"] = 8  # one word a row a cycle at int8
    narrow = hardware_from_dict(spec)
    fast = ss.sparse_gemm_stats(mask, 32, wide)
    slow = ss.sparse_gemm_stats(mask, 32, narrow)
    assert fast.raw[fm.SRAM_LIMITED_CYCLES] == 0
    assert slow.compute_cycles == fast.compute_cycles
    # 8 rows x 4 words a cycle wanted; the 8-byte port delivers one a row: the port sets the
    # time (every input word of every column fold through it) where dense at the full K would
    # have hidden the same reads behind its 4x longer streams
    assert slow.raw[fm.IFMAP_SRAM_READS] == 64 * 32 * 4
    assert slow.total_cycles == slow.raw[fm.IFMAP_SRAM_READS] // 8 > 2 * fast.total_cycles
    assert slow.raw[fm.SRAM_LIMITED_CYCLES] > 0


# ---- output- and input-stationary skipping ------------------------------------------------

STREAM = ("os", "is")


def stream_overhead(dataflow, rows, cols):
    return rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2


def stream_folds(mask, m, rows, cols, granularity, dataflow):
    """(fold_tile, fold_strip, fold_t, strip_ptr, strip_idx) of OS/IS skipping."""
    if dataflow == "os":
        ptr, idx = sk.live_strips(mask, cols, granularity)
        tiles = -(-m // rows)
    else:
        ptr, idx = sk.live_strips(np.ascontiguousarray(mask.T), rows, granularity)
        tiles = -(-m // cols)
    return sk.stream_folds(ptr, idx, tiles)


def stream_cycles(mask, m, rows, cols, granularity, dataflow):
    """Compute cycles and folds of OS/IS skipping (fast engine, kernel level)."""
    folds = stream_folds(mask, m, rows, cols, granularity, dataflow)
    per_fold = sk.streamed_fold_cycles(folds.t, stream_overhead(dataflow, rows, cols))
    return max(int(per_fold.sum()) - 1, 0), len(per_fold)


def stream_dense(dataflow, m, k, n, rows, cols):
    """(compute cycles, folds) of the dense schedule."""
    if dataflow == "os":
        folds, t = -(-m // rows) * -(-n // cols), k
    else:
        folds, t = -(-k // rows) * -(-m // cols), n
    return folds * (stream_overhead(dataflow, rows, cols) + t) - 1, folds


@settings(max_examples=120, deadline=None)
@given(masks(), small_arrays, st.sampled_from(STREAM))
def test_stream_fast_engine_equals_cycle_stepping_and_twin(mask, a, dataflow):
    rows, cols, m, g = a["rows"], a["cols"], a["m"], a["granularity"]
    folds = stream_folds(mask, m, rows, cols, g, dataflow)
    fast = sk.streamed_fold_cycles(folds.t, stream_overhead(dataflow, rows, cols))
    step = (
        stepping.fold_cycles_stepping_os if dataflow == "os" else stepping.fold_cycles_stepping_is
    )
    stepped, macs = step(mask, m, rows, cols, g)
    assert fast.tolist() == stepped.tolist()
    hw = compute_bound_hw(rows, cols, dataflow, skip_granularity=g)
    st_fast = ss.sparse_gemm_stats(mask, m, hw)
    st_step = ss.sparse_gemm_stats(mask, m, hw, engine="cycle_stepping")
    assert st_fast.dataflow == dataflow
    assert st_fast.compute_cycles == st_step.compute_cycles == st_fast.total_cycles
    assert st_fast.mean_bank_conflict == 1.0 and st_fast.bank_conflict_cycles == 0
    assert macs == st_fast.performed_macs >= st_fast.useful_macs
    if min(rows, cols) <= 4 and mask.size <= 200:  # the pure-Python grid is slow
        twin_cycles, twin_macs = naive_stream_stepping(mask.tolist(), m, rows, cols, g, dataflow)
        assert twin_cycles == fast.tolist()
        assert twin_macs == macs


STREAM_TWIN_CASES = [
    # mask kind, n, k, m, rows, cols, granularity, caps, double_buffered, dram_bpc
    ("random", 13, 17, 9, 4, 3, 1, (BIG, BIG, BIG), True, 64.0),
    ("block", 20, 24, 11, 4, 4, 2, (64.0, 64.0, 16.0), True, 0.5),
    ("random", 9, 22, 7, 5, 2, 3, (256.0, 16.0, 4096.0), False, 4.0),
    ("zeros", 6, 10, 4, 3, 3, 1, (BIG, BIG, BIG), True, 1.0),
    ("striped", 16, 12, 6, 3, 4, 1, (32.0, BIG, 8.0), True, 0.25),
    ("block", 24, 20, 13, 3, 5, 1, (48.0, 200.0, 40.0), False, 0.5),
]


@pytest.mark.parametrize("dataflow", STREAM)
@pytest.mark.parametrize("case", STREAM_TWIN_CASES)
def test_stream_kernels_equal_naive_twins(case, dataflow):
    kind, n, k, m, rows, cols, g, caps, dbuf, dram_bpc = case
    rng = np.random.default_rng(11)
    mask = {
        "random": lambda: rng.random((n, k)) < 0.3,
        "block": lambda: block_mask(rng, n, k, (4, 4), 0.4),
        "zeros": lambda: np.zeros((n, k), dtype=bool),
        "striped": lambda: (
            np.repeat(np.arange(n)[:, None] // cols % 2 == 0, k, axis=1)
            & (np.arange(k)[None, :] // rows % 2 == 1)
        ),
    }[kind]()
    word, acc, bpc, scale = 2, 4, 6.0, 0.625
    folds = stream_folds(mask, m, rows, cols, g, dataflow)
    fold_cycles = sk.streamed_fold_cycles(folds.t, stream_overhead(dataflow, rows, cols))
    code = dk.OS if dataflow == "os" else dk.IS
    mem = fm.MemoryParams(word, acc, *caps, dbuf, dram_bpc, bpc, bpc, bpc, scale)
    plan = scalesim_plan(dataflow)
    stats = sk.stream_gemm_folds(code, folds, fold_cycles, rows, cols, m, k, n, mem, plan)
    twin = naive_stream_gemm(
        mask.tolist(), m, rows, cols, g, dataflow, word, acc, *caps, dbuf, dram_bpc, bpc, scale
    )
    assert_equals_twin(stats, twin)
    # every output reaches DRAM exactly once, whichever strips were skipped (IS: each
    # spilled partial sum is read back exactly once)
    spill_io = stats[fm.OFMAP_DRAM_WRITE_BYTES] - stats[fm.OFMAP_DRAM_READ_BYTES]
    assert spill_io == m * n * word
    assert dataflow == "is" or stats[fm.OFMAP_DRAM_READ_BYTES] == 0


@settings(max_examples=150, deadline=None)
@given(gemm_cases, st.integers(1, 5), st.sampled_from([1.0, 0.3, 1.25]))
def test_stream_all_ones_mask_equals_dense_kernel_every_stat(case, granularity, scale):
    """All-ones, any granularity: exactly the dense OS / IS kernel's statistics."""
    dataflow = "os" if case["dataflow"] == "ws" else case["dataflow"]
    rows, cols, m, k, n = shape_args(case)[:5]
    mask = np.ones((n, k), dtype=bool)
    folds = stream_folds(mask, m, rows, cols, granularity, dataflow)
    fold_cycles = sk.streamed_fold_cycles(folds.t, stream_overhead(dataflow, rows, cols))
    code = dk.OS if dataflow == "os" else dk.IS
    plan = scalesim_plan(dataflow)
    mem = memory(case, scale)
    sparse = sk.stream_gemm_folds(code, folds, fold_cycles, *shape_args(case), mem, plan)
    dense = dk.dense_gemm_folds(code, *shape_args(case), mem, plan)
    assert sparse[: fm.N_STATS].tolist() == dense.tolist()
    assert sparse[sk.CONFLICT_SUM] == sparse[fm.FOLDS]
    assert sparse[sk.COMPACTED_WEIGHTS] == k * n


@settings(max_examples=150, deadline=None)
@given(masks(), small_arrays, st.sampled_from(STREAM), st.integers(0, 2**32 - 1))
def test_stream_never_costs_more_than_dense_and_nested_masks_never_cost_more(
    mask, a, dataflow, seed
):
    """No bank conflict can arise under OS/IS compaction (conflict is 1 by construction), so
    skipping never takes more compute cycles or folds than dense, and removing kept weights
    never adds folds or compute cycles (live sets only shrink)."""
    n, k = mask.shape
    rows, cols, m, g = a["rows"], a["cols"], a["m"], a["granularity"]
    skip, folds = stream_cycles(mask, m, rows, cols, g, dataflow)
    dense, dense_folds = stream_dense(dataflow, m, k, n, rows, cols)
    assert skip <= dense and folds <= dense_folds
    rng = np.random.default_rng(seed)
    sub = mask & (rng.random(mask.shape) < rng.random())
    sub_skip, sub_folds = stream_cycles(sub, m, rows, cols, g, dataflow)
    assert sub_skip <= skip and sub_folds <= folds


@pytest.mark.parametrize("dataflow", STREAM)
def test_stream_all_zero_strips_and_masks_cost_nothing(dataflow):
    rng = np.random.default_rng(1)
    rows, cols, m = 4, 4, 10
    live = rng.random((4, 4)) < 0.6
    live[0, 0] = True
    mask = np.zeros((16, 16), dtype=bool)
    mask[8:12, 8:12] = live  # only output strip 2 (OS) / K strip 2 (IS) holds weights
    alone = live if dataflow == "os" else np.zeros((16, 4), dtype=bool)
    if dataflow == "is":
        alone[8:12] = live
    assert stream_cycles(mask, m, rows, cols, 1, dataflow) == stream_cycles(
        alone, m, rows, cols, 1, dataflow
    )
    hw = sparse_hw(rows, cols, dataflow=dataflow)
    empty = ss.sparse_gemm_cost(np.zeros((16, 20), dtype=bool), m, 3, hw)
    assert (empty.compute_cycles, empty.folds, empty.counts.macs) == (0, 0, 0)
    assert empty.counts.dram_write_bytes == 3 * m * 16 * hw.word_bytes
    assert empty.counts.dram_read_bytes == 0
    assert empty.note is None and empty.mode == "skipping"


@settings(max_examples=60, deadline=None)
@given(masks(), small_arrays, st.sampled_from(STREAM), st.sampled_from([0.2, 0.9, 1.1]))
def test_stream_weight_dram_bytes_are_the_compressed_size(mask, a, dataflow, scale):
    """Default buffers hold these small compacted weights: each is fetched once, and the
    weight's DRAM bytes are the compressed size."""
    hw = sparse_hw(a["rows"], a["cols"], dataflow=dataflow, skip_granularity=a["granularity"])
    cost = ss.sparse_gemm_stats(mask, a["m"], hw, filter_dram_scale=scale)
    n, k = mask.shape
    expected = scale * k * n * hw.word_bytes if mask.any() else 0.0
    assert math.isclose(cost.raw[fm.FILTER_DRAM_BYTES], expected, rel_tol=1e-12)


@pytest.mark.parametrize("dataflow", STREAM)
def test_stream_block_mask_saves_cycles_and_runs_compacted(dataflow):
    """A 25 % 8x8-block mask on an 8x8 array: compaction runs (no dense note), in fewer
    cycles than the dense schedule, and both engines agree through ``sparse_gemm_cost``."""
    mask = block_mask(np.random.default_rng(5), 64, 64, (8, 8), 0.25)
    hw = compute_bound_hw(8, 8, dataflow)
    cost = ss.sparse_gemm_cost(mask, 32, 2, hw)
    assert cost == ss.sparse_gemm_cost(mask, 32, 2, hw, engine="cycle_stepping")
    dense, _ = stream_dense(dataflow, 32, 64, 64, 8, 8)
    assert cost.note is None and cost.mode == "skipping"
    assert cost.compute_cycles < 2 * dense
    assert cost.counts.macs < 2 * 32 * 64 * 64


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 9), min_size=0, max_size=40), st.integers(1, 16), st.integers(1, 16),
    st.integers(1, 300), st.booleans(),
)  # fmt: skip
def test_plain_tuple_entries_equal_the_record_kernels(conflicts, rows, cols, m, overlapped):
    """The one-call WS fold cycles equal ``fold_cycles_fast`` then ``overlapped_cycles`` (and
    ``ws_compute_cycles`` their sum), and the plain-tuple entries (``ws_schedule_plain``,
    ``dense_gemm_schedule_plain``) return what the record-taking kernels return."""
    conflict = np.asarray(conflicts, dtype=np.int64)
    expected = sk.fold_cycles_fast(conflict, rows, cols, m)
    if overlapped and expected.shape[0]:
        expected = fm.overlapped_cycles(expected, 2 * rows + cols - 2, rows)
    assert np.array_equal(sk.ws_fold_cycles(conflict, rows, cols, m, overlapped), expected)
    # their sum without the array (the mapper's compute floor), and as its formula in Python
    overhead = 2 * rows + cols - 2
    twin = sum(overhead + m * c if f == 0 or not overlapped else max(m * c, rows)
               for f, c in enumerate(conflicts))  # fmt: skip
    assert sk.ws_compute_cycles(conflict, rows, cols, m, overlapped) == int(expected.sum()) == twin

    rng = np.random.default_rng(len(conflicts) + 7 * m)
    mask = rng.random((3 * cols + 1, 2 * rows + 3)) < 0.4
    folds = sk.skipping_folds(mask, rows, cols, 1, max(rows, 2))
    k, n = mask.shape[1], mask.shape[0]
    reuse = sk.ws_reuse(folds, cols, k, n)
    cycles = sk.fold_cycles_fast(folds.conflict, rows, cols, m)
    mem = fm.MemoryParams(1, 4, 512.0, 256.0, 128.0, overlapped, 2.0, 8.0, 8.0, 16.0, 0.5)
    plan = fm.FoldPlan(False, overlapped, False, m % 2 == 0, False)
    for got, want in (
        (sk.ws_schedule_plain(tuple(folds), tuple(reuse), cycles, cols, m, k, n, tuple(mem),
                              tuple(plan)),
         sk.ws_schedule(folds, reuse, cycles, cols, m, k, n, mem, plan)),
        (dk.dense_gemm_schedule_plain(dk.WS, rows, cols, m, k, n, tuple(mem), tuple(plan)),
         dk.dense_gemm_schedule(dk.WS, rows, cols, m, k, n, mem, plan)),
    ):  # fmt: skip
        assert np.array_equal(got[0], want[0])
        assert all(np.array_equal(a, b) for a, b in zip(got[1], want[1], strict=True))
        assert got[2:] == want[2:]
