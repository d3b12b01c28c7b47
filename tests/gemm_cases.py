"""Random small dense-GEMM cases for the fold kernel, shared by the twin and event tests."""

from __future__ import annotations

from hypothesis import strategies as st

from accel_sim.kernels import dense_folds as kernel
from accel_sim.kernels import fold_memory as fm

DATAFLOW_CODES = {"ws": kernel.WS, "os": kernel.OS, "is": kernel.IS}
ACCUMULATOR_BYTES = 4

gemm_cases = st.fixed_dictionaries(
    {
        "dataflow": st.sampled_from(["ws", "os", "is"]),
        "rows": st.integers(1, 16),
        "cols": st.integers(1, 16),
        "m": st.integers(1, 70),
        "k": st.integers(1, 70),
        "n": st.integers(1, 70),
        "word": st.sampled_from([1, 2, 4]),
        "cap_ifmap": st.sampled_from([16.0, 256.0, 4096.0, 1e9]),
        "cap_filter": st.sampled_from([16.0, 256.0, 4096.0, 1e9]),
        "cap_ofmap": st.sampled_from([16.0, 256.0, 4096.0, 1e9]),
        "double_buffered": st.booleans(),
        "dram_bpc": st.sampled_from([0.25, 0.5, 4.0, 64.0]),
        "bpc": st.sampled_from([1.0, 8.0, 1e6]),
    }
)


def gemm_case(**overrides) -> dict:
    """A 64x64x64 WS GEMM on an 8x8 array with unlimited buffers and ports, then overrides."""
    case = {
        "dataflow": "ws",
        "rows": 8,
        "cols": 8,
        "m": 64,
        "k": 64,
        "n": 64,
        "word": 1,
        "cap_ifmap": 1e12,
        "cap_filter": 1e12,
        "cap_ofmap": 1e12,
        "double_buffered": True,
        "dram_bpc": 1e9,
        "bpc": 1e9,
    }
    return {**case, **overrides}


def shape_args(case: dict) -> tuple:
    """Array and GEMM arguments, in the kernels' order (dataflow excluded)."""
    return (case["rows"], case["cols"], case["m"], case["k"], case["n"])


def memory(case: dict, filter_dram_scale: float = 1.0) -> fm.MemoryParams:
    """The case's buffers, double buffering and bandwidths as the kernels take them."""
    return fm.MemoryParams(
        word_bytes=case["word"],
        acc_bytes=ACCUMULATOR_BYTES,
        ifmap_capacity_bytes=case["cap_ifmap"],
        filter_capacity_bytes=case["cap_filter"],
        ofmap_capacity_bytes=case["cap_ofmap"],
        double_buffered=case["double_buffered"],
        dram_bytes_per_cycle=case["dram_bpc"],
        ifmap_sram_bytes_per_cycle=case["bpc"],
        filter_sram_bytes_per_cycle=case["bpc"],
        ofmap_sram_bytes_per_cycle=case["bpc"],
        filter_dram_scale=filter_dram_scale,
    )


def naive_args(case: dict) -> tuple:
    """The case as the naive twins (``tests/naive``) take it, positionally: array and GEMM,
    word and accumulator bytes, buffer capacities, double buffering, DRAM and SRAM-port
    bandwidths."""
    return (
        *shape_args(case),
        case["word"],
        ACCUMULATOR_BYTES,
        case["cap_ifmap"],
        case["cap_filter"],
        case["cap_ofmap"],
        case["double_buffered"],
        case["dram_bpc"],
        case["bpc"],
        case["bpc"],
        case["bpc"],
    )


def run_kernel(case: dict, filter_dram_scale: float = 1.0):
    return kernel.dense_gemm_folds(
        DATAFLOW_CODES[case["dataflow"]], *shape_args(case), memory(case, filter_dram_scale)
    )


def run_schedule(case: dict):
    """(stats, prefetch, inflight, writeback, busy) of the case's fold schedule."""
    stats, log, _ = kernel.dense_gemm_schedule(
        DATAFLOW_CODES[case["dataflow"]], *shape_args(case), memory(case)
    )
    return stats, log.prefetch, log.inflight, log.writeback, log.busy
