"""The dual-side sparse outer-product array (``datapath: outer-product``): the fast engine
against its cycle-stepping twin, hand-worked timings, the spec section, the sparse bound
against its own dense baseline, and traffic as stored."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim import simulate
from accel_sim.activations import activation_mask
from accel_sim.datapaths import datapath_for
from accel_sim.datapaths.outer_product.model import (
    OuterProductGeometry,
    simulate_outer_product,
)
from accel_sim.spec import HardwareConfigError, derive, hardware_from_dict, load_hardware
from tests.naive.outer_product import naive_outer_product
from workloads import GemmOp, GemmRole, Workload

DENSITIES = (0.0, 0.1, 0.3, 0.6, 0.9, 1.0)


@st.composite
def cases(draw):
    m, n, k = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.random((m, k)) < draw(st.sampled_from(DENSITIES))
    w = rng.random((n, k)) < draw(st.sampled_from(DENSITIES))
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    tile_m = rows * draw(st.integers(1, 3))
    tile_n = cols * draw(st.integers(1, 3))
    geometry = OuterProductGeometry(
        rows=rows,
        cols=cols,
        tile_m=tile_m,
        tile_n=tile_n,
        merge_width=draw(st.integers(1, 2 * rows * cols)),
        bank_rows=draw(st.integers(1, tile_m)),
        bank_cols=draw(st.integers(1, tile_n)),
        gather_bits=draw(st.integers(1, tile_m + tile_n)),
        bitmaps=draw(st.booleans()),
        word_bytes=draw(st.sampled_from((1, 2, 4))),
        ifmap_bytes_per_cycle=float(draw(st.integers(1, 16))),
        filter_bytes_per_cycle=float(draw(st.integers(1, 16))),
        ofmap_bytes_per_cycle=float(draw(st.integers(1, 64))),
        cores=draw(st.integers(1, 3)),
    )
    return x, w, m, n, k, geometry


@settings(max_examples=300, deadline=None)
@given(cases())
def test_fast_engine_equals_cycle_stepping_twin(case):
    x, w, m, n, k, geometry = case
    fast = simulate_outer_product(x, w, m, n, k, geometry)
    twin = naive_outer_product(x.tolist(), w.tolist(), m, n, k, geometry)
    assert {key: getattr(fast, key) for key in twin} == twin


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(2, 14), st.booleans())
def test_periods_of_alike_activation_tiles_added_in_one_step_equal_the_twin(case, tiles, dense):
    """Many activation tiles alike (a dense operand, or one tile's pattern repeated, with an
    edge tile that may differ): the fast engine adds a core's repeating periods in one step;
    the twin steps through every item."""
    x, w, _, n, k, geometry = case
    pattern = x[: geometry.tile_m] if x.shape[0] >= geometry.tile_m else np.ones(
        (geometry.tile_m, k), dtype=bool)  # fmt: skip
    m = geometry.tile_m * tiles + (x.shape[0] % geometry.tile_m)
    rows = np.concatenate([np.tile(pattern, (tiles, 1)), x[: m - geometry.tile_m * tiles]])
    x = None if dense else rows
    fast = simulate_outer_product(x, w, m, n, k, geometry)
    twin = naive_outer_product(
        (np.ones((m, k), dtype=bool) if x is None else x).tolist(), w.tolist(), m, n, k, geometry
    )
    assert {key: getattr(fast, key) for key in twin} == twin


def geometry(**changes) -> OuterProductGeometry:
    base = dict(rows=2, cols=2, tile_m=4, tile_n=4, merge_width=4, bank_rows=4, bank_cols=4,
                gather_bits=8, bitmaps=True, word_bytes=1, ifmap_bytes_per_cycle=64.0,
                filter_bytes_per_cycle=64.0, ofmap_bytes_per_cycle=64.0)  # fmt: skip
    return OuterProductGeometry(**{**base, **changes})


def test_hand_worked_dense_tile():
    """One 4x4 tile on a 2x2 array, K = 3, ports wide: each k is 2 x 2 steps (4 cycles), its
    gather 1 cycle ahead, then one drain cycle: 1 + 3 x 4 + 1 = 14 cycles; dense mode the
    same (no bitmaps, the same steps)."""
    stats = simulate_outer_product(None, None, 4, 4, 3, geometry())
    assert (stats.cycles, stats.steps, stats.pairs, stats.merge_cycles) == (14, 12, 48, 12)
    dense = simulate_outer_product(None, None, 4, 4, 3, geometry(bitmaps=False))
    assert dense.cycles == 14 and dense.bitmap_bits == 0 and stats.bitmap_bits == 3 * 8


def test_hand_worked_sparse_column_and_bank_conflict():
    """Activations nonzero in rows 0 and 2 only, weights in column 1 only: one step of 2 x 1
    pairs per k. With one bank per tile entry it takes 1 cycle; with a 2 x 4 bank grid rows 0
    and 2 share bank row 0, so the k takes 2 cycles."""
    x = np.zeros((4, 2), dtype=bool)
    x[[0, 2], :] = True
    w = np.zeros((4, 2), dtype=bool)
    w[1, :] = True
    free = simulate_outer_product(x, w, 4, 4, 2, geometry())
    assert (free.steps, free.pairs, free.merge_cycles, free.bank_limited) == (2, 4, 2, 0)
    assert free.cycles == 1 + 1 + 1 + 1  # gather k0, merge k0 (gather k1 overlapped), k1, drain
    banked = simulate_outer_product(x, w, 4, 4, 2, geometry(bank_rows=2))
    assert (banked.merge_cycles, banked.bank_limited) == (4, 2)
    assert banked.cycles == 1 + 2 + 2 + 1


def test_empty_operand_costs_only_gathers_and_drain():
    x = np.zeros((4, 5), dtype=bool)
    stats = simulate_outer_product(x, None, 4, 4, 5, geometry())
    assert (stats.pairs, stats.steps, stats.merge_cycles, stats.values_a) == (0, 0, 0, 0)
    assert stats.cycles == 5 + 1


def test_narrow_merge_stage_sets_the_time():
    """A merge stage of one partial sum per cycle makes every pair a cycle."""
    stats = simulate_outer_product(None, None, 4, 4, 3, geometry(merge_width=1))
    assert stats.merge_cycles == 48 and stats.cycles == 1 + 48 + 1


# --- the spec ---------------------------------------------------------------------------


def test_preset_and_spec_section():
    hw = load_hardware("dual-side-32x32")
    assert datapath_for(hw).name == "outer-product"
    assert hw.pe_count == 1024
    geometry = datapath_for(hw).geometry()
    assert (geometry.tile_m, geometry.tile_n, geometry.merge_width) == (64, 128, 1024)
    data = hw.model_dump(mode="json")
    with pytest.raises(HardwareConfigError, match="outer_product"):
        hardware_from_dict({**data, "datapath": "pe-array"})
    with pytest.raises(HardwareConfigError, match="weight_format"):
        derive(hw, {"sparse.weight_format": "csr"})
    with pytest.raises(HardwareConfigError, match="tile_steps"):
        derive(hw, {"outer_product.tile_steps": [0, 2]})
    systolic = load_hardware("systolic-32x32-ws")
    assert "outer_product" not in systolic.model_dump(mode="json")  # other dumps unchanged
    dense = datapath_for(hw).dense_baseline()
    assert dense.name == "outer-product" and not dense.exploits_sparsity
    assert dense.hw.outer_product == hw.outer_product


# --- against its own dense baseline -----------------------------------------------------


def _chip(rows: int, cols: int, steps: tuple[int, int], **outer):
    hw = load_hardware("dual-side-32x32")
    changes = {
        "pe_array.rows": rows,
        "pe_array.cols": cols,
        "outer_product.tile_steps": list(steps),
        "dram.bandwidth_bytes_per_s": 1e15,  # compute-bound: the bound is about the array
        "sram.ifmap.bytes_per_cycle": 1e6,
        "sram.filter.bytes_per_cycle": 1e6,
        "sram.ofmap.bytes_per_cycle": 1e6,
    }
    changes.update({f"outer_product.{key}": value for key, value in outer.items()})
    return derive(hw, changes)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 40), st.integers(1, 24),
    st.sampled_from([1.0, 0.9, 0.6, 0.4, 0.1]), st.sampled_from([1.0, 0.7, 0.5, 0.3, 0.05]),
    st.sampled_from([2, 4, 8]), st.sampled_from([2, 4, 8]),
    st.sampled_from([(1, 1), (2, 2), (2, 4)]), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_speedup_never_beats_the_pair_density_bound(m, n, k, dw, da, rows, cols, steps, seed):
    """Against its own dense baseline, speedup <= g / d, d the fraction of (m, n, k) triples
    with a nonzero activation and a nonzero weight (about weight x activation density) and
    g = dense cycles x multipliers / MACs >= 1 the dense array's padding."""
    hw = _chip(rows, cols, steps)
    mask = np.random.default_rng(seed).random((n, k)) < dw
    op = GemmOp("w", GemmRole.FFN_IN, m=m, k=k, n=n, weight_name="w", mask=mask,
                activation_density=da)  # fmt: skip
    result = simulate(Workload("t", 1, m, (op,)), hw, baseline=True)
    act = activation_mask(op)
    act = np.ones((m, k), dtype=bool) if act is None else act
    pairs = int((act.astype(np.int64) @ mask.T.astype(np.int64)).sum())
    assert result.ops[0].useful_macs == result.ops[0].macs == pairs
    dense = result.baseline
    padding = dense.cycles * dense.pe_count / (m * n * k)
    assert padding >= 1.0
    assert result.cycles * result.pe_count >= pairs
    if pairs:
        assert result.speedup <= padding * (m * n * k) / pairs * (1 + 1e-12)


def test_latency_is_not_proportional_to_the_density_product():
    """1024^3 at weight density 0.4 and activation density 0.3: the product is 0.12, the
    normalised latency is far above it (chunks of 32 out of a 64 x 128 tile round up, and the
    gather reads both bitmaps every k)."""
    hw = load_hardware("dual-side-32x32")
    mask = np.random.default_rng(0).random((1024, 1024)) < 0.4
    op = GemmOp("w", GemmRole.FFN_IN, m=1024, k=1024, n=1024, weight_name="w", mask=mask,
                activation_density=0.3)  # fmt: skip
    result = simulate(Workload("t", 1, 1024, (op,)), hw, baseline=True)
    normalised = result.cycles / result.baseline.cycles
    assert 0.12 * 1.5 < normalised < 1.0


def test_traffic_is_bitmap_coded_and_residency_is_honoured():
    hw = load_hardware("dual-side-32x32")
    dp = datapath_for(hw)
    mask = np.random.default_rng(1).random((64, 96)) < 0.25
    op = GemmOp("w", GemmRole.FFN_IN, m=32, k=96, n=64, weight_name="w", mask=mask,
                activation_density=0.5, reads=("x",), writes="y")  # fmt: skip
    cost = dp.gemm_cost(op)
    nnz_x = round(0.5 * 32 * 96)
    inputs = nnz_x + math.ceil(32 * 96 / 8)
    weights = int(mask.sum()) + math.ceil(64 * 96 / 8)
    outputs = 32 * 64 + math.ceil(32 * 64 / 8)
    assert cost.counts.dram_read_bytes == pytest.approx(inputs + weights)
    assert cost.counts.dram_write_bytes == pytest.approx(outputs)
    assert dp.compulsory_dram_bytes(op) <= inputs + weights + outputs
    from accel_sim.mapping.residency import OpResidency

    kept = dp.gemm_cost(op, OpResidency(frozenset({"x"}), output_on_chip=True))
    assert kept.counts.dram_read_bytes == pytest.approx(weights)
    assert kept.counts.dram_write_bytes == 0
    assert kept.dram_bytes_avoided == pytest.approx(inputs + outputs)
    dense = dp.dense_baseline().gemm_cost(op)
    assert dense.counts.macs == 32 * 96 * 64
    assert "ignored" in dense.note  # the dense baseline multiplies zero activations


def test_energy_adds_accumulator_merge_and_bitmap_actions():
    hw = load_hardware("dual-side-32x32")
    op = GemmOp("w", GemmRole.FFN_IN, m=16, k=32, n=16, weight_name="w")
    result = simulate(Workload("t", 1, 16, (op,)), hw, baseline=True)
    spec = hw.outer_product
    sparse_register = result.ops[0].energy_breakdown_j["register"]
    pairs = 16 * 32 * 16
    floor = pairs * (2 * 1 * hw.energy.register_j_per_byte + 8 * spec.accumulator_j_per_byte)
    assert sparse_register >= floor
    dense_register = result.baseline.ops[0].energy_breakdown_j["register"]
    assert sparse_register > dense_register  # bitmaps and scatter cost energy when dense


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 70), st.integers(1, 9), st.integers(1, 12),
    st.sampled_from(DENSITIES), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_column_loads_count_nonzeros_and_the_busiest_bank(rows, k, tile, banks, density, seed):
    """The kernel against a plain count: per tile and k, the nonzeros and, over the banks
    (local row i in bank i % banks), the most nonzeros one bank holds."""
    from accel_sim.kernels.outer_product import column_loads

    mask = np.random.default_rng(seed).random((rows, k)) < density
    nnz, most = column_loads(mask, tile, banks)
    for t in range(-(-rows // tile)):
        part = mask[t * tile : (t + 1) * tile]
        bank = np.arange(part.shape[0]) % banks
        per_bank = np.stack([part[bank == b].sum(0) for b in range(banks)])
        assert np.array_equal(nnz[t], part.sum(0))
        assert np.array_equal(most[t], per_bank.max(0))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 70), st.integers(1, 9), st.integers(1, 12))
def test_a_dense_operands_loads_come_from_its_shape(rows, k, tile, banks):
    """A dense operand (no mask: the dense baseline, dense activations) is counted from its
    shape; the counts equal the kernel's over an all-ones mask."""
    from accel_sim.kernels.outer_product import column_loads, dense_column_loads

    nnz, most = dense_column_loads(rows, k, tile, banks)
    ones_nnz, ones_most = column_loads(np.ones((rows, k), dtype=bool), tile, banks)
    assert nnz.dtype == ones_nnz.dtype and most.dtype == ones_most.dtype
    assert np.array_equal(nnz, ones_nnz) and np.array_equal(most, ones_most)


def test_tiles_too_large_for_the_merge_table_are_timed_per_item():
    """Counts of up to 300 per tile side make an (a, b) table of over ``MERGE_TABLE_ENTRIES``:
    the kernel then works out each item's merge cycles itself, equal to the twin's."""
    from accel_sim.kernels.outer_product import MERGE_TABLE_ENTRIES

    rng = np.random.default_rng(7)
    m = n = 300
    x = rng.random((m, 3)) < 0.95
    w = rng.random((n, 3)) < 0.9
    assert (m + 1) * (n + 1) > MERGE_TABLE_ENTRIES
    g = geometry(rows=64, cols=64, tile_m=512, tile_n=512, merge_width=1000, bank_rows=512,
                 bank_cols=512)  # fmt: skip
    fast = simulate_outer_product(x, w, m, n, 3, g)
    twin = naive_outer_product(x.tolist(), w.tolist(), m, n, 3, g)
    assert {key: getattr(fast, key) for key in twin} == twin
