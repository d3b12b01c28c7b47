"""The numba fold kernel against its pure-Python twin and against closed forms."""

from __future__ import annotations

import math

from hypothesis import given, settings

from accel_sim.kernels import dense_folds as kernel
from tests.gemm_cases import gemm_case, run_kernel, shape_args, timing_args
from tests.gemm_cases import gemm_cases as cases
from tests.naive.dense_folds import naive_dense_gemm


@settings(max_examples=300, deadline=None)
@given(cases)
def test_kernel_equals_naive_twin(case):
    stats = run_kernel(case)
    twin = naive_dense_gemm(case["dataflow"], *shape_args(case), *timing_args(case))
    assert stats[kernel.COMPUTE_CYCLES] == twin["compute_cycles"]
    assert stats[kernel.TOTAL_CYCLES] == twin["total_cycles"]
    assert stats[kernel.FOLDS] == twin["folds"]
    assert stats[kernel.IFMAP_SRAM_READS] == twin["ifmap_sram"]
    assert stats[kernel.FILTER_SRAM_READS] == twin["filter_sram"]
    assert stats[kernel.OFMAP_SRAM_WRITES] == twin["ofmap_sram_w"]
    assert stats[kernel.OFMAP_SRAM_READS] == twin["ofmap_sram_r"]
    assert stats[kernel.IFMAP_DRAM_BYTES] == twin["ifmap_dram"]
    assert stats[kernel.FILTER_DRAM_BYTES] == twin["filter_dram"]
    assert stats[kernel.OFMAP_DRAM_READ_BYTES] == twin["ofmap_dram_r"]
    assert stats[kernel.OFMAP_DRAM_WRITE_BYTES] == twin["ofmap_dram_w"]
    assert math.isclose(stats[kernel.SRAM_LIMITED_CYCLES], twin["sram_extra"], abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(cases)
def test_dram_traffic_is_exactly_compulsory_when_everything_fits(case):
    case = {**case, "cap_ifmap": 1e12, "cap_filter": 1e12, "cap_ofmap": 1e12}
    stats = run_kernel(case)
    m, k, n, word = case["m"], case["k"], case["n"], case["word"]
    assert stats[kernel.IFMAP_DRAM_BYTES] == m * k * word
    assert stats[kernel.FILTER_DRAM_BYTES] == k * n * word
    assert stats[kernel.OFMAP_DRAM_WRITE_BYTES] == m * n * word
    assert stats[kernel.OFMAP_DRAM_READ_BYTES] == 0


def test_weight_stationary_closed_form():
    """SCALE-Sim's WS formula: ceil(K/R) ceil(N/C) folds of 2R + C + M - 2 cycles, minus one."""
    stats = run_kernel(gemm_case(rows=32, cols=32, m=128, k=768, n=3072))
    assert stats[kernel.COMPUTE_CYCLES] == 24 * 96 * (64 + 32 + 128 - 2) - 1
    assert stats[kernel.TOTAL_CYCLES] - stats[kernel.COMPUTE_CYCLES] <= 1


def test_slow_dram_makes_a_gemm_memory_bound():
    """With DRAM far slower than the array, cycles approach bytes / bandwidth."""
    stats = run_kernel(gemm_case(dram_bpc=0.01))
    compulsory = 3 * 64 * 64
    assert stats[kernel.TOTAL_CYCLES] >= compulsory / 0.01
    assert stats[kernel.TOTAL_CYCLES] <= compulsory / 0.01 + stats[kernel.COMPUTE_CYCLES] + 1


def test_without_double_buffering_transfers_do_not_overlap():
    overlapped = run_kernel(gemm_case(dataflow="os", dram_bpc=2.0, double_buffered=True))
    serial = run_kernel(gemm_case(dataflow="os", dram_bpc=2.0, double_buffered=False))
    assert serial[kernel.TOTAL_CYCLES] > overlapped[kernel.TOTAL_CYCLES]
    transfer = 3 * 64 * 64 / 2.0
    assert serial[kernel.TOTAL_CYCLES] == serial[kernel.COMPUTE_CYCLES] + transfer


def test_narrow_sram_port_slows_the_fold():
    wide = run_kernel(gemm_case(bpc=1e6))
    narrow = run_kernel(gemm_case(bpc=1.0))
    assert narrow[kernel.SRAM_LIMITED_CYCLES] > 0
    assert narrow[kernel.TOTAL_CYCLES] > wide[kernel.TOTAL_CYCLES]
