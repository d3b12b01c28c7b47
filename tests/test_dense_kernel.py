"""The numba fold kernel against its pure-Python twin and against closed forms."""

from __future__ import annotations

import math

from hypothesis import given, settings

from accel_sim.kernels import fold_memory as fm
from tests.gemm_cases import gemm_case, naive_args, run_kernel
from tests.gemm_cases import gemm_cases as cases
from tests.naive.dense_folds import naive_dense_gemm


@settings(max_examples=300, deadline=None)
@given(cases)
def test_kernel_equals_naive_twin(case):
    stats = run_kernel(case)
    twin = naive_dense_gemm(case["dataflow"], *naive_args(case))
    assert stats[fm.COMPUTE_CYCLES] == twin["compute_cycles"]
    assert stats[fm.TOTAL_CYCLES] == twin["total_cycles"]
    assert stats[fm.FOLDS] == twin["folds"]
    assert stats[fm.IFMAP_SRAM_READS] == twin["ifmap_sram"]
    assert stats[fm.FILTER_SRAM_READS] == twin["filter_sram"]
    assert stats[fm.OFMAP_SRAM_WRITES] == twin["ofmap_sram_w"]
    assert stats[fm.OFMAP_SRAM_READS] == twin["ofmap_sram_r"]
    assert stats[fm.IFMAP_DRAM_BYTES] == twin["ifmap_dram"]
    assert stats[fm.FILTER_DRAM_BYTES] == twin["filter_dram"]
    assert stats[fm.OFMAP_DRAM_READ_BYTES] == twin["ofmap_dram_r"]
    assert stats[fm.OFMAP_DRAM_WRITE_BYTES] == twin["ofmap_dram_w"]
    assert math.isclose(stats[fm.SRAM_LIMITED_CYCLES], twin["sram_extra"], abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(cases)
def test_dram_traffic_is_exactly_compulsory_when_everything_fits(case):
    case = {**case, "cap_ifmap": 1e12, "cap_filter": 1e12, "cap_ofmap": 1e12}
    stats = run_kernel(case)
    m, k, n, word = case["m"], case["k"], case["n"], case["word"]
    assert stats[fm.IFMAP_DRAM_BYTES] == m * k * word
    assert stats[fm.FILTER_DRAM_BYTES] == k * n * word
    assert stats[fm.OFMAP_DRAM_WRITE_BYTES] == m * n * word
    assert stats[fm.OFMAP_DRAM_READ_BYTES] == 0


def test_weight_stationary_closed_form():
    """SCALE-Sim's WS formula: ceil(K/R) ceil(N/C) folds of 2R + C + M - 2 cycles, minus one."""
    stats = run_kernel(gemm_case(rows=32, cols=32, m=128, k=768, n=3072))
    assert stats[fm.COMPUTE_CYCLES] == 24 * 96 * (64 + 32 + 128 - 2) - 1
    assert stats[fm.TOTAL_CYCLES] - stats[fm.COMPUTE_CYCLES] <= 1


def test_slow_dram_makes_a_gemm_memory_bound():
    """With DRAM far slower than the array, cycles approach bytes / bandwidth."""
    stats = run_kernel(gemm_case(dram_bpc=0.01))
    compulsory = 3 * 64 * 64
    assert stats[fm.TOTAL_CYCLES] >= compulsory / 0.01
    assert stats[fm.TOTAL_CYCLES] <= compulsory / 0.01 + stats[fm.COMPUTE_CYCLES] + 1


def test_without_double_buffering_transfers_do_not_overlap():
    overlapped = run_kernel(gemm_case(dataflow="os", dram_bpc=2.0, double_buffered=True))
    serial = run_kernel(gemm_case(dataflow="os", dram_bpc=2.0, double_buffered=False))
    assert serial[fm.TOTAL_CYCLES] > overlapped[fm.TOTAL_CYCLES]
    transfer = 3 * 64 * 64 / 2.0
    assert serial[fm.TOTAL_CYCLES] == serial[fm.COMPUTE_CYCLES] + transfer


def test_narrow_sram_port_slows_the_fold():
    wide = run_kernel(gemm_case(bpc=1e6))
    narrow = run_kernel(gemm_case(bpc=1.0))
    assert narrow[fm.SRAM_LIMITED_CYCLES] > 0
    assert narrow[fm.TOTAL_CYCLES] > wide[fm.TOTAL_CYCLES]
